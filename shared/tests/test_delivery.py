from types import SimpleNamespace

from aiokafka.errors import KafkaConnectionError

from shared.broker import DeliveryGuard, TransientError


def record(offset: int = 7):
    return SimpleNamespace(topic="routemate.jobs.geocoded", partition=3, offset=offset)


def test_a_failing_handler_is_retried_with_backoff_then_dead_lettered():
    guard = DeliveryGuard(max_attempts=3, backoff_s=0.5, max_backoff_s=10)
    decisions = [guard.failed(record(), ValueError("bug")) for _ in range(3)]
    assert decisions == [(True, 0.5), (True, 1.0), (False, 0.0)]


def test_an_outage_is_retried_forever_with_capped_backoff():
    guard = DeliveryGuard(max_attempts=3, backoff_s=0.5, max_backoff_s=4)
    for exc in (TransientError("db down"), KafkaConnectionError(), ConnectionError()):
        waits = [guard.failed(record(), exc) for _ in range(8)]
        assert all(retry for retry, _ in waits) and max(w for _, w in waits) == 4
        guard.done(record())


def test_attempts_are_counted_per_message():
    guard = DeliveryGuard(max_attempts=2)
    assert guard.failed(record(1), ValueError())[0]
    assert guard.failed(record(2), ValueError())[0]
    assert not guard.failed(record(1), ValueError())[0]
