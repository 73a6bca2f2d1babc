"""The producer every service gets from make_broker: acks=all, idempotent, linger and batch size tunable."""

from shared.broker import make_broker
from shared.settings import PlatformSettings


def test_by_default_each_record_is_sent_at_once_since_every_stage_awaits_its_ack():
    broker = make_broker(PlatformSettings(), "test")
    assert broker._connection_kwargs["linger_ms"] == 0
    assert broker._connection_kwargs["acks"] == "all" and broker._connection_kwargs["enable_idempotence"]


def test_kafka_linger_ms_lets_a_deployment_batch_produce_requests(monkeypatch):
    monkeypatch.setenv("KAFKA_LINGER_MS", "5")
    assert make_broker(PlatformSettings(), "test")._connection_kwargs["linger_ms"] == 5


def test_concurrent_sends_to_a_partition_fit_one_batch_not_aiokafkas_16_kib():
    """aiokafka's default batch (16 KiB) holds one 8 KB sealed import: a burst then went to Kafka
    one import per partition per round trip. The default lets a burst share the batch."""
    assert make_broker(PlatformSettings(), "test")._connection_kwargs["max_batch_size"] == 1024 * 1024


def test_the_batch_is_tunable_but_never_over_the_largest_message_the_topics_take(monkeypatch):
    monkeypatch.setenv("KAFKA_MAX_BATCH_BYTES", str(64 * 1024))
    assert make_broker(PlatformSettings(), "test")._connection_kwargs["max_batch_size"] == 64 * 1024
    monkeypatch.setenv("KAFKA_MAX_BATCH_BYTES", str(16 * 1024 * 1024))
    monkeypatch.setenv("KAFKA_MAX_MESSAGE_BYTES", str(2 * 1024 * 1024))
    assert make_broker(PlatformSettings(), "test")._connection_kwargs["max_batch_size"] == 2 * 1024 * 1024
