"""The producer every service gets from make_broker: acks=all, idempotent, linger tunable."""

from shared.broker import make_broker
from shared.settings import PlatformSettings


def test_by_default_each_record_is_sent_at_once_since_every_stage_awaits_its_ack():
    broker = make_broker(PlatformSettings(), "test")
    assert broker._connection_kwargs["linger_ms"] == 0
    assert broker._connection_kwargs["acks"] == "all" and broker._connection_kwargs["enable_idempotence"]


def test_kafka_linger_ms_lets_a_deployment_batch_produce_requests(monkeypatch):
    monkeypatch.setenv("KAFKA_LINGER_MS", "5")
    assert make_broker(PlatformSettings(), "test")._connection_kwargs["linger_ms"] == 5
