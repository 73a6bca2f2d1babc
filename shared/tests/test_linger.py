"""`lingering`: a batch consumer that, once a poll brought records, collects for a few ms more, so a
burst's events share one batch (transaction, commit) instead of one batch each."""

import asyncio
from types import SimpleNamespace

from shared.broker import lingering

TOPIC = "routemate.jobs.optimized"


def record(offset: int, partition: int = 0):
    return SimpleNamespace(topic=TOPIC, partition=partition, offset=offset)


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


async def first_poll(consumer):  # FastStream's poll: what one getmany brought
    found = await consumer.getmany(timeout_ms=20, max_records=200)
    return tuple(r for rs in found.values() for r in rs)


async def test_a_trickle_of_events_is_handed_over_as_one_batch_in_order():
    records = [record(i, partition=i % 2) for i in range(10)]
    poll = lingering(first_poll, linger_ms=100, max_records=200)
    batch = await poll(TrickleConsumer(records, every_s=0.002))
    assert batch == tuple(records)  # one batch, each partition's records in order
    plain = await first_poll(TrickleConsumer(records, every_s=0.002))
    assert len(plain) == 1  # what each batch held before


async def test_a_batch_stops_at_max_records_and_a_lone_event_waits_at_most_the_linger():
    poll = lingering(first_poll, linger_ms=50, max_records=3)
    assert len(await poll(TrickleConsumer([record(i) for i in range(10)], every_s=0.001))) == 3
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert len(await poll(TrickleConsumer([record(0)], every_s=0.001))) == 1
    assert loop.time() - started < 0.05 + 0.1  # the linger, and scheduling slack on a busy machine


async def test_nothing_polled_returns_at_once_without_lingering():
    consumer = TrickleConsumer([], every_s=0.001)
    assert await lingering(first_poll, linger_ms=1000, max_records=10)(consumer) == ()
    assert consumer.calls == 1
