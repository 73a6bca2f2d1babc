"""The producer every service gets from make_broker: batched a little under bursts, tunable."""

from shared.broker import make_broker
from shared.settings import PlatformSettings


def test_the_producer_lingers_a_few_milliseconds_by_default_so_a_burst_shares_produce_requests():
    broker = make_broker(PlatformSettings(), "test")
    assert broker._connection_kwargs["linger_ms"] == 5
    assert broker._connection_kwargs["acks"] == "all" and broker._connection_kwargs["enable_idempotence"]


def test_kafka_linger_ms_sets_it_and_zero_sends_each_record_at_once(monkeypatch):
    monkeypatch.setenv("KAFKA_LINGER_MS", "0")
    assert make_broker(PlatformSettings(), "test")._connection_kwargs["linger_ms"] == 0
