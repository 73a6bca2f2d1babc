"""Settings for a Kafka cluster of several nodes: every node is a bootstrap address, and topics
carry the min.insync.replicas that goes with their replication."""

import pytest
from pydantic import ValidationError

from shared.broker import make_broker
from shared.settings import PlatformSettings
from shared.topics import topic_configs


def test_every_bootstrap_server_is_its_own_address():
    servers = "127.0.0.1:9092, 127.0.0.1:9094,127.0.0.1:9095"
    broker = make_broker(PlatformSettings(kafka_bootstrap_servers=servers), "test")
    assert broker._connection_kwargs["bootstrap_servers"] == ["127.0.0.1:9092", "127.0.0.1:9094", "127.0.0.1:9095"]


def test_topics_carry_the_min_insync_replicas_of_their_replication():
    three = PlatformSettings(topic_replication=3, topic_min_insync_replicas=2)
    assert topic_configs(three, "routemate.jobs.requested")["min.insync.replicas"] == "2"
    assert topic_configs(PlatformSettings(), "routemate.jobs.requested")["min.insync.replicas"] == "1"


def test_a_min_insync_above_the_replication_is_refused_at_start():
    with pytest.raises(ValidationError, match="TOPIC_MIN_INSYNC_REPLICAS"):
        PlatformSettings(topic_replication=1, topic_min_insync_replicas=2)


def test_every_topic_takes_the_brokers_append_time_so_a_partitions_times_rise_with_its_offsets():
    from shared.events import ALL_TOPICS

    assert {topic_configs(PlatformSettings(), name)["message.timestamp.type"] for name in ALL_TOPICS} == {
        "LogAppendTime"
    }
