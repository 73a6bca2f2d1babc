"""`lingering`: a batch consumer that, once a poll brought records, collects for a few ms more, so a
burst's events share one batch (transaction, commit) instead of one batch each; a lone event on an
idle consumer goes at once."""

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import CorruptRecordException, IllegalStateError

from shared.broker import lingering, rewind

TOPIC = "routemate.jobs.optimized"


def record(offset: int, partition: int = 0, job: str | None = None):
    """A record of job `job` (its key), by default a job of its own."""
    return SimpleNamespace(topic=TOPIC, partition=partition, offset=offset, key=(job or f"job-{offset}").encode())


class TrickleConsumer:
    """Hands out one record per `every_s` (a burst as the projection sees it), per getmany call."""

    def __init__(self, records: list, every_s: float) -> None:
        self.records, self.every_s, self.calls = list(records), every_s, 0

    async def getmany(self, timeout_ms: int, max_records: int):
        self.calls += 1
        if not self.records:
            await asyncio.sleep(timeout_ms / 1000)
            return {}
        await asyncio.sleep(min(self.every_s, timeout_ms / 1000))
        if self.every_s > timeout_ms / 1000:
            return {}
        taken, self.records = self.records[:1], self.records[1:]
        return {(taken[0].topic, taken[0].partition): taken}


class AllAtOnce:
    """Hands out every record in the first getmany, then nothing."""

    def __init__(self, records: list) -> None:
        self.records = list(records)

    async def getmany(self, timeout_ms: int, max_records: int):
        if not self.records:
            await asyncio.sleep(timeout_ms / 1000)
            return {}
        taken, self.records = self.records, []
        return {(taken[0].topic, taken[0].partition): taken}


async def first_poll(consumer):  # FastStream's poll: what one getmany brought
    found = await consumer.getmany(timeout_ms=20, max_records=200)
    return tuple(r for rs in found.values() for r in rs)


async def test_a_trickle_of_events_is_handed_over_as_one_batch_in_order():
    records = [record(i, partition=i % 2) for i in range(11)]
    poll = lingering(first_poll, linger_ms=100, max_records=200)
    consumer = TrickleConsumer(records, every_s=0.002)
    assert await poll(consumer) == tuple(records[:1])  # the first, on an idle consumer: at once
    assert await poll(consumer) == tuple(records[1:])  # then a stream: one batch, each partition in order
    plain = await first_poll(TrickleConsumer(records, every_s=0.002))
    assert len(plain) == 1  # what each batch held before


async def test_a_lone_jobs_events_are_handed_over_without_lingering_and_another_jobs_event_lingers():
    loop = asyncio.get_running_loop()
    poll = lingering(first_poll, linger_ms=300, max_records=200)
    assert await poll(TrickleConsumer([], every_s=0.001)) == ()  # idle: an empty poll
    for offset in range(3):  # one job's events, one per stage: nothing says more is coming
        started = loop.time()
        assert len(await poll(TrickleConsumer([record(offset, job="job-a")], every_s=0.001))) == 1
        assert loop.time() - started < 0.3
    # Two records of that one job in one poll (a stop's updates): at once too.
    both = [record(3, job="job-a"), record(4, job="job-a")]
    started = loop.time()
    assert await poll(AllAtOnce(both)) == tuple(both)
    assert loop.time() - started < 0.3
    started = loop.time()  # another job's event after job-a's: several jobs in flight, so it lingers
    assert len(await poll(TrickleConsumer([record(5, job="job-b")], every_s=0.001))) == 1
    assert loop.time() - started >= 0.3
    assert await poll(TrickleConsumer([], every_s=0.001)) == ()  # idle again: the next job's goes at once
    started = loop.time()
    assert len(await poll(TrickleConsumer([record(6, job="job-c")], every_s=0.001))) == 1
    assert loop.time() - started < 0.3


async def test_a_batch_stops_at_max_records_and_a_lone_event_in_a_stream_waits_at_most_the_linger():
    poll = lingering(first_poll, linger_ms=50, max_records=3)
    consumer = TrickleConsumer([record(i) for i in range(10)], every_s=0.001)
    assert len(await poll(consumer)) == 1  # the stream's first record, on an idle consumer
    assert len(await poll(consumer)) == 3
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert len(await poll(TrickleConsumer([record(0)], every_s=0.001))) == 1
    assert loop.time() - started < 0.05 + 0.1  # the linger, and scheduling slack on a busy machine


async def test_nothing_polled_returns_at_once_without_lingering():
    consumer = TrickleConsumer([], every_s=0.001)
    assert await lingering(first_poll, linger_ms=1000, max_records=10)(consumer) == ()
    assert consumer.calls == 1


class Seeking:
    """Owns `owned` partitions of TOPIC and records its seeks; `revoked_under` is revoked between
    `assignment()` and its seek (a rebalance racing the rewind)."""

    def __init__(self, *owned: int, revoked_under: int | None = None) -> None:
        self.owned = {TopicPartition(TOPIC, p) for p in owned}
        self.revoked_under = revoked_under
        self.seeks: dict[TopicPartition, int] = {}

    def assignment(self):
        return set(self.owned)

    def seek(self, tp, offset):
        if tp.partition == self.revoked_under:
            raise IllegalStateError(f"{tp} is not assigned")
        self.seeks[tp] = offset


def test_a_rewind_seeks_each_owned_partition_to_its_earliest_record_past_one_it_lost():
    consumer = Seeking(0, 1, 3, revoked_under=1)
    batch = [record(5, partition=2), record(3), record(1), record(9, partition=1), record(7, partition=3)]
    rewind(consumer, batch)  # partition 2 went to another process; 1 went while rewinding
    assert consumer.seeks == {TopicPartition(TOPIC, 0): 1, TopicPartition(TOPIC, 3): 7}


class FailsOnSecondPoll(Seeking):
    def __init__(self, error: BaseException) -> None:
        super().__init__(0, 1)
        self.polls, self.error = 0, error

    async def getmany(self, timeout_ms: int, max_records: int):
        self.polls += 1
        if self.polls == 1:
            return {(TOPIC, 0): [record(4), record(5)], (TOPIC, 1): [record(8, partition=1)]}
        raise self.error


async def test_a_kafka_error_while_lingering_hands_over_what_was_collected():
    consumer = FailsOnSecondPoll(CorruptRecordException("bad batch"))
    poll = lingering(first_poll, linger_ms=100, max_records=200)
    assert [(r.partition, r.offset) for r in await poll(consumer)] == [(0, 4), (0, 5), (1, 8)]
    assert consumer.seeks == {}  # handed over, not polled again: the error meets the next poll


async def test_a_poll_cancelled_while_lingering_rewinds_what_it_had_collected():
    consumer = FailsOnSecondPoll(asyncio.CancelledError())
    poll = lingering(first_poll, linger_ms=100, max_records=200)
    with pytest.raises(asyncio.CancelledError):
        await poll(consumer)
    # the positions had moved past these three: the next poll must bring them again
    assert consumer.seeks == {TopicPartition(TOPIC, 0): 4, TopicPartition(TOPIC, 1): 8}


def test_a_consumer_without_an_assignment_is_not_rewound():
    rewind(SimpleNamespace(), [record(1)])  # FastStream's in-memory consumer: a failed handler's own error stays
