#!/usr/bin/env bash
# Compose's Kafka (apache/kafka image): KRaft single node whose client listener wants
# SASL/SCRAM-SHA-512, as deploy/kafka/server-sasl.properties.tmpl (tested by
# tests/e2e/test_transport_auth.py) does on loopback. One SCRAM user per service plus `admin`
# (inter-broker, topic bootstrap) is created when the storage is first formatted.
set -euo pipefail
SERVICES=(auth ingest status geocoder optimizer)
: "${KAFKA_ADMIN_PASSWORD:?}"
for svc in "${SERVICES[@]}"; do var="KAFKA_${svc^^}_PASSWORD"; : "${!var:?set $var}"; done
CONF=/tmp/routemate-server.properties
DATA=/var/lib/kafka/data
umask 077
cat > "$CONF" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@localhost:9093
listeners=SASL_PLAINTEXT://:9092,CONTROLLER://localhost:9093
advertised.listeners=SASL_PLAINTEXT://kafka:9092
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$KAFKA_ADMIN_PASSWORD";
log.dirs=$DATA
auto.create.topics.enable=false
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
message.max.bytes=16777216
replica.fetch.max.bytes=16777216
EOF
# The healthcheck's client config (admin credentials, readable by this container only).
cat > /tmp/routemate-client.properties <<EOF
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$KAFKA_ADMIN_PASSWORD";
EOF
scram=(--add-scram "SCRAM-SHA-512=[name=admin,password=$KAFKA_ADMIN_PASSWORD]")
for svc in "${SERVICES[@]}"; do
  var="KAFKA_${svc^^}_PASSWORD"
  scram+=(--add-scram "SCRAM-SHA-512=[name=$svc,password=${!var}]")
done
mkdir -p "$DATA"
if [ ! -f "$DATA/meta.properties" ]; then
  /opt/kafka/bin/kafka-storage.sh format -t "$(/opt/kafka/bin/kafka-storage.sh random-uuid)" -c "$CONF" "${scram[@]}"
fi
exec /opt/kafka/bin/kafka-server-start.sh "$CONF"
