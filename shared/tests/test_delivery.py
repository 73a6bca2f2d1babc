import asyncio
from types import SimpleNamespace

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
)
from faststream.exceptions import IncorrectState
from pydantic import ValidationError

from shared.broker import DeliveryGuard, EventBus, EventTooLarge, TransientError, is_transient
from shared.testing.builders import import_requested, stop


def record(offset: int = 7):
    return SimpleNamespace(topic="routemate.jobs.geocoded", partition=3, offset=offset)


@pytest.mark.parametrize(
    "exc", [ValueError("bad"), OverflowError("date value out of range"), KeyError("x"), MessageSizeTooLargeError()]
)
def test_a_failure_caused_by_the_message_is_dead_lettered_at_once(exc):
    """No retries, no sleeps: a poison message must not hold its partition for anyone behind it."""
    assert DeliveryGuard().failed(record(), exc) == (False, 0.0)


def test_an_outage_is_retried_forever_with_capped_backoff():
    guard = DeliveryGuard(backoff_s=0.5, max_backoff_s=4)
    for exc in (TransientError("db down"), KafkaConnectionError(), ConnectionError(), KafkaTimeoutError()):
        waits = [guard.failed(record(), exc) for _ in range(8)]
        assert all(retry for retry, _ in waits) and [w for _, w in waits][:4] == [0.5, 1.0, 2.0, 4.0]
        assert max(w for _, w in waits) == 4
        guard.done(record())


def test_backoff_is_counted_per_message():
    guard = DeliveryGuard(backoff_s=1, max_backoff_s=60)
    assert guard.failed(record(1), TransientError())[1] == 1
    assert guard.failed(record(1), TransientError())[1] == 2
    assert guard.failed(record(2), TransientError())[1] == 1


def test_broker_errors_are_outages_unless_the_message_itself_is_the_problem():
    assert is_transient(NotLeaderForPartitionError()) and is_transient(KafkaTimeoutError())
    assert not is_transient(MessageSizeTooLargeError())
    assert not is_transient(EventTooLarge("ImportRequested", 10, 5))
    with pytest.raises(ValidationError) as err:
        import_requested(stop(1, "x")).job.__class__.model_validate({})
    assert not is_transient(err.value)


class RecordingBroker:
    def __init__(self) -> None:
        self.sent: list[tuple] = []

    async def publish(self, payload, topic, **kwargs):
        self.sent.append((payload, topic, kwargs))


async def test_an_event_over_the_budget_is_refused_before_it_reaches_kafka():
    broker = RecordingBroker()
    bus = EventBus(broker, "test", budget_bytes=2000)  # type: ignore[arg-type]
    await bus.publish(import_requested(stop(1, "1 Queen St")))
    with pytest.raises(EventTooLarge) as err:
        await bus.publish(import_requested(*(stop(i, "x" * 100) for i in range(40))))
    assert err.value.size > 2000 and len(broker.sent) == 1


async def test_a_dead_letter_keeps_the_original_bytes_and_says_why_in_headers():
    broker = RecordingBroker()
    bad = SimpleNamespace(topic="routemate.jobs.requested", partition=2, offset=9, key=b"job_1", value=b"\\xff" * 5000)
    await EventBus(broker, "geocoder").deadletter(bad, "not JSON")  # type: ignore[arg-type]
    payload, topic, kwargs = broker.sent[0]
    assert topic == "routemate.deadletter" and payload == bad.value and kwargs["key"] == b"job_1"
    assert kwargs["headers"]["reason"] == "not JSON" and kwargs["headers"]["source_topic"] == "routemate.jobs.requested"
    assert kwargs["headers"]["source_offset"] == "9" and kwargs["headers"]["service"] == "geocoder"


def test_a_log_file_is_rotated_at_its_size_cap(tmp_path):
    import logging

    from shared.logs import configure_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("test", "INFO", "json", tmp_path / "svc.log", max_bytes=64 * 1024, backups=2)
        for i in range(5000):
            logging.getLogger("rotation").info(f"line {i} " + "x" * 100)  # distinct: repeats are filtered
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["svc.log", "svc.log.1", "svc.log.2"]
    assert all((tmp_path / f).stat().st_size <= 64 * 1024 + 1024 for f in files)


class BrokenSessionBroker:
    """A broker whose producer's idempotent session broke: every send on the old producer fails
    with OutOfOrderSequenceNumber, as after a broker restart under load; a new producer works."""

    def __init__(self) -> None:
        self.generation, self.sent, self.connects, self.refuse_connects = 0, [], 0, 0
        self.connected = True
        self._connection_kwargs = {"bootstrap_servers": "127.0.0.1:1"}
        self.config = SimpleNamespace(
            producer=SimpleNamespace(disconnect=self._disconnect, connect=self._connect),
            fd_config=SimpleNamespace(_serializer=None),
            broker_codec=None,
        )

    async def publish(self, payload, topic, **kwargs):
        from aiokafka.errors import OutOfOrderSequenceNumber

        await asyncio.sleep(0)  # a burst's sends are in flight together
        if not self.connected:  # as FastStream's producer between a disconnect and a connect
            raise IncorrectState("You can't use producer here, please connect broker first.")
        if self.generation == 0:
            raise OutOfOrderSequenceNumber()
        self.sent.append(payload)

    async def _disconnect(self) -> None:
        await asyncio.sleep(0)
        self.connected = False

    async def _connect(self, producer, **kwargs) -> None:
        self.connects += 1
        if self.refuse_connects:
            self.refuse_connects -= 1
            raise KafkaConnectionError()
        self.generation += 1
        self.connected = True


async def test_a_broken_producer_session_is_replaced_once_for_a_burst_and_each_event_is_sent_on_the_new_one():
    broker = BrokenSessionBroker()
    bus = EventBus(broker, "test")  # type: ignore[arg-type]
    events = [import_requested(stop(0), job_id=f"job_{n}") for n in range(8)]
    await asyncio.gather(*(bus.publish(event) for event in events))
    assert broker.connects == 1  # one new producer for the burst, not one per failed send
    assert sorted(broker.sent) == sorted(event.to_bytes() for event in events)


async def test_a_new_producer_that_cannot_connect_is_connected_again_by_the_next_publish():
    """The broker is still down when the broken producer is replaced: that publish fails with a
    transient error (retried by its caller), and the next one connects a producer and goes out,
    instead of every later publish failing on a bus left without one."""
    broker = BrokenSessionBroker()
    broker.refuse_connects = 1
    bus = EventBus(broker, "test")  # type: ignore[arg-type]
    first, second = (import_requested(stop(0), job_id=f"job_{n}") for n in range(2))
    with pytest.raises(KafkaConnectionError) as failed:
        await bus.publish(first)
    assert is_transient(failed.value)
    await bus.publish(second)
    assert broker.connects == 2 and broker.sent == [second.to_bytes()]


async def test_a_dead_letter_takes_the_same_way_past_a_broken_producer_session():
    broker = BrokenSessionBroker()
    bad = SimpleNamespace(topic="routemate.jobs.geocoded", partition=0, offset=3, key=b"job_1", value=b"{")
    await EventBus(broker, "geocoder").deadletter(bad, "not JSON")  # type: ignore[arg-type]
    assert broker.connects == 1 and broker.sent == [b"{"]
