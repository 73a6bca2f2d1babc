"""The ordered read's merge: the order of a full sort, a bounded number of records in hand."""

import random
from collections import deque

from aiokafka.structs import ConsumerRecord, TopicPartition

from shared.topic_reader import merge
from shared.topic_reader import time_order as key


def record(topic: str, partition: int, offset: int, timestamp: int) -> ConsumerRecord:
    return ConsumerRecord(topic, partition, offset, timestamp, 0, b"k", b"{}", None, 1, 2, ())


class Log:
    """Partitions of records; each fetch brings 1 to `most` records of each partition asked for,
    and remembers how many records the merge held between fetches."""

    def __init__(self, parts: dict[TopicPartition, list[ConsumerRecord]], most: int, rng: random.Random) -> None:
        self.parts = {tp: deque(rows) for tp, rows in parts.items()}
        self.remaining = {tp for tp, rows in parts.items() if rows}
        self.most, self.rng = most, rng
        self.fetched, self.asked = 0, []

    async def fetch(self, partitions: list[TopicPartition]) -> dict[TopicPartition, list[ConsumerRecord]]:
        self.asked.append(set(partitions))
        got = {}
        for tp in partitions:
            n = min(self.rng.randint(0, self.most), len(self.parts[tp]))  # 0: that fetch brought nothing yet
            if n:  # as getmany, a partition with nothing new is not in the answer
                got[tp] = [self.parts[tp].popleft() for _ in range(n)]
                self.fetched += n
            if not self.parts[tp]:  # read to its end (an empty answer can be the last one)
                self.remaining.discard(tp)
        return got


def topics(rng: random.Random, skew: int = 0) -> dict[TopicPartition, list[ConsumerRecord]]:
    """Three topics of four partitions, a few hundred records with rising timestamps (ties
    included), some partitions empty; `skew` lets a timestamp fall back that far (producers' clocks)."""
    parts = {}
    for topic in ("a", "b", "c"):
        for p in range(4):
            n = rng.choice((0, 1, 5, 40, 120))
            stamp, rows = 0, []
            for offset in range(n):
                stamp += rng.randint(0, 3)
                rows.append(record(topic, p, offset, max(0, stamp - rng.randint(0, skew))))
            parts[TopicPartition(topic, p)] = rows
    return parts


async def collect(log: Log, chunk: int) -> list[list[ConsumerRecord]]:
    return [c async for c in merge(log.fetch, log.remaining, key, chunk)]


async def test_the_merge_gives_a_full_sorts_order_in_chunks_fetching_only_partitions_run_dry():
    for seed in range(30):
        rng = random.Random(seed)
        parts = topics(rng)
        everything = [r for rows in parts.values() for r in rows]
        log = Log(parts, most=rng.choice((1, 3, 50)), rng=rng)
        size = rng.choice((1, 7, 100, 10_000))
        chunks = await collect(log, chunk=size)
        merged = [r for c in chunks for r in c]
        assert merged == sorted(everything, key=key), seed
        assert all(len(c) == size for c in chunks[:-1]) and 0 < len(chunks[-1]) <= size


async def test_a_partition_whose_timestamps_fall_back_still_comes_in_its_offset_order():
    rng = random.Random(7)
    parts = topics(rng, skew=5)
    log = Log(parts, most=4, rng=rng)
    merged = [r for c in await collect(log, chunk=16) for r in c]
    assert sorted(merged, key=key) == sorted((r for rows in parts.values() for r in rows), key=key)
    for tp, rows in parts.items():  # nothing lost or doubled, and each partition as written
        assert [r.offset for r in merged if (r.topic, r.partition) == tp] == [r.offset for r in rows]


async def test_the_merge_holds_about_one_fetch_per_partition_however_long_the_log():
    """It asks again only for partitions it has nothing of, so what it holds is bounded by one
    fetch per partition, not by the log's length."""
    rng = random.Random(3)
    parts = {TopicPartition("t", p): [record("t", p, o, o) for o in range(2_000)] for p in range(6)}
    log = Log(parts, most=10, rng=rng)
    held, total = 0, 0
    async for chunk in merge(log.fetch, log.remaining, key, 5):
        held = max(held, log.fetched)  # in its buffers, and the chunk it hands on
        log.fetched -= len(chunk)
        total += len(chunk)
    assert total == 6 * 2_000
    assert held <= 6 * 10 + 5
    assert all(asked for asked in log.asked)


async def test_a_partition_with_nothing_to_give_ends_the_merge_empty():
    """As the reader's partitions whose records all lie beyond the end it took: asked for, they
    bring nothing and leave `remaining`."""
    log = Log({TopicPartition("t", 0): []}, most=3, rng=random.Random(1))
    log.remaining.add(TopicPartition("t", 0))
    assert await collect(log, chunk=10) == []
    assert log.asked == [{TopicPartition("t", 0)}]
