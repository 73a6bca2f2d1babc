// Kafka's own count of the requests it has served, by type, read through JMX from a running
// broker: attaches to the JVM by pid (same user), starts its local management agent if needed,
// prints "<request> <count>" per line for kafka.network:type=RequestMetrics,name=RequestsPerSec.
// Run with the JDK's single-file launcher: java bench/KafkaRequests.java PID
import com.sun.tools.attach.VirtualMachine;
import javax.management.MBeanServerConnection;
import javax.management.ObjectName;
import javax.management.remote.JMXConnector;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;
import java.util.TreeMap;

public class KafkaRequests {
    public static void main(String[] args) throws Exception {
        VirtualMachine vm = VirtualMachine.attach(args[0]);
        String address;
        try {
            address = vm.startLocalManagementAgent();
        } finally {
            vm.detach();
        }
        try (JMXConnector jmx = JMXConnectorFactory.connect(new JMXServiceURL(address))) {
            MBeanServerConnection server = jmx.getMBeanServerConnection();
            TreeMap<String, Long> counts = new TreeMap<>();
            for (ObjectName name : server.queryNames(
                    new ObjectName("kafka.network:type=RequestMetrics,name=RequestsPerSec,*"), null)) {
                String request = name.getKeyProperty("request");
                long count = ((Number) server.getAttribute(name, "Count")).longValue();
                counts.merge(request, count, Long::sum);  // one bean per request version
            }
            counts.forEach((request, count) -> System.out.println(request + " " + count));
        }
    }
}
