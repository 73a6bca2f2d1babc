"""Reading topics from their beginning to their current end: the rebuild and the tests use it."""

import heapq
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import OffsetOutOfRangeError

READ_PARTITION_BYTES = 8 * 1024 * 1024  # per partition and fetch
READ_FETCH_BYTES = 64 * 1024 * 1024  # per fetch, all partitions
# Reading in order (`TopicReader.in_order`) holds up to two fetches per partition: the merge's,
# and the next one aiokafka fetches meanwhile. Smaller fetches than a whole-log read's keep that
# low with many partitions (the rebuild reads 8 topics of 12). Smaller still cost time: aiokafka
# waits 0.1 s before fetching from a broker while records it fetched are not taken yet.
ORDERED_PARTITION_BYTES = 1024 * 1024

Fetch = Callable[[list[TopicPartition]], Awaitable[dict[TopicPartition, list[ConsumerRecord]]]]


def time_order(record: ConsumerRecord) -> tuple:
    """Records of several topics interleaved in time, as the live consumers saw them (the
    rebuild's replay order); ties by where they are, so the order is total."""
    return (record.timestamp, record.topic, record.partition, record.offset)


class TopicReader:
    """`topics` from the beginning (or from `start`'s offsets, a snapshot's) to each partition's end
    at the moment the reader opens. No consumer group: nothing is committed. `security`: the
    settings' `kafka_client_security()` where Kafka wants SASL. `gaps` collects the partitions
    whose log now starts after the offset asked for (records deleted before they were read),
    at the start or while reading (retention deleting a segment the reader had not reached yet:
    the read goes on from the log's new start, never jumps to its end).

        async with TopicReader(servers, topics) as reader:
            async for chunk in reader.in_order(key, 2000): ...
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topics: Iterable[str],
        *,
        client_id: str = "routemate-reader",
        security: Mapping[str, Any] | None = None,
        start: Mapping[tuple[str, int], int] | None = None,
        gaps: list[str] | None = None,
        partition_bytes: int = READ_PARTITION_BYTES,
    ) -> None:
        self.topics, self.start, self.gaps = tuple(topics), start or {}, gaps
        self.total = 0  # offsets to read: the records, or more than them where a topic is compacted
        self.ends: dict[TopicPartition, int] = {}
        self.remaining: set[TopicPartition] = set()
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            client_id=client_id,
            # Reading whole topics, not keeping up with a live one: large fetches, fewer round trips
            # (the default is 1 MiB a partition, about 100 routes of a 20-stop job).
            max_partition_fetch_bytes=partition_bytes,
            fetch_max_bytes=max(READ_FETCH_BYTES, partition_bytes),
            # Out of range (the log's start moved past the position: retention deleted records not
            # read yet) raises, so `_fetch` goes on from the new start and says what was lost. The
            # default ("latest") would move the position to the log's end, and the reader would
            # take the partition for read to its end with the rest of its records unread.
            auto_offset_reset="none",
            **(security or {}),
        )

    async def __aenter__(self) -> "TopicReader":
        consumer = self.consumer
        await consumer.start()
        try:
            cluster = await consumer._client.fetch_all_metadata()  # aiokafka has no public call for this
            partitions = [
                TopicPartition(t, p) for t in self.topics for p in sorted(cluster.partitions_for_topic(t) or ())
            ]
            if not partitions:
                return self
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            firsts = await consumer.beginning_offsets(partitions)
            for tp in partitions:
                wanted = self.start.get((tp.topic, tp.partition))
                if wanted is not None and wanted > firsts[tp]:
                    consumer.seek(tp, wanted)
                elif wanted is not None and wanted < firsts[tp] and self.gaps is not None:
                    self.gaps.append(f"{tp.topic}[{tp.partition}] starts at {firsts[tp]}, after {wanted}")
                elif wanted is None and firsts[tp] > 0 and self.gaps is not None:
                    self.gaps.append(f"{tp.topic}[{tp.partition}] starts at {firsts[tp]}, not in the snapshot")
            self.ends = await consumer.end_offsets(partitions)
            for tp, end in self.ends.items():
                wanted = self.start.get((tp.topic, tp.partition))
                if wanted is not None and wanted > end and self.gaps is not None:  # recreated, or truncated
                    self.gaps.append(f"{tp.topic}[{tp.partition}] ends at {end}, before the snapshot's {wanted}")
                begin = max(firsts[tp], wanted or 0)
                if end > begin:
                    self.remaining.add(tp)
                    self.total += end - begin
        except BaseException:
            await consumer.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()

    async def _fetch(self, partitions: list[TopicPartition]) -> dict[TopicPartition, list[ConsumerRecord]]:
        """What the fetches brought for `partitions`, up to their ends; the partitions read to
        their end leave `remaining`."""
        try:
            batch = await self.consumer.getmany(*partitions, timeout_ms=1000)
        except OffsetOutOfRangeError as error:
            if not (error.args and isinstance(error.args[0], dict) and error.args[0]):
                raise  # not aiokafka's {partition: offset}: nothing to skip, and the same error again
            await self._skip_deleted(error.args[0])
            batch = {}
        got = {tp: [r for r in rows if r.offset < self.ends[tp]] for tp, rows in batch.items()}
        for tp in partitions:
            if await self.consumer.position(tp) >= self.ends[tp]:
                self.remaining.discard(tp)
                self.consumer.pause(tp)  # out of the fetches: nothing more is wanted from it
        return got

    async def _skip_deleted(self, out_of_range: Mapping[TopicPartition, int]) -> None:
        """Partitions whose position fell out of their log: the log's start moved past it, so read
        on from the new start (the records between were deleted unread: a gap); a log now ending
        before the position (truncated) has nothing more to give."""
        consumer = self.consumer
        firsts = await consumer.beginning_offsets(list(out_of_range))
        for tp, offset in out_of_range.items():
            first = firsts[tp]
            if self.gaps is not None:
                self.gaps.append(
                    f"{tp.topic}[{tp.partition}] offsets {offset} to {min(first, self.ends[tp]) - 1} deleted unread"
                    if first > offset
                    else f"{tp.topic}[{tp.partition}] ends before offset {offset}: truncated while read"
                )
            if first > offset and first < self.ends[tp]:
                consumer.seek(tp, first)
            else:
                self.remaining.discard(tp)
                consumer.pause(tp)

    async def to_end(self, keep: Callable[[ConsumerRecord], bool] = lambda record: True) -> list[ConsumerRecord]:
        """Every record (that `keep` accepts), oldest first per partition, in memory at once."""
        records: list[ConsumerRecord] = []
        while self.remaining:
            for rows in (await self._fetch(list(self.remaining))).values():
                records += [r for r in rows if keep(r)]
        return records

    def in_order(self, key: Callable[[ConsumerRecord], Any], chunk: int) -> AsyncGenerator[list[ConsumerRecord]]:
        """Every record in `key` order across partitions, in lists of `chunk`, holding up to two
        fetches per partition at a time however long the topics are (see `merge`)."""
        return merge(self._fetch, self.remaining, key, chunk)


async def merge(
    fetch: Fetch, remaining: set[TopicPartition], key: Callable[[ConsumerRecord], Any], chunk: int
) -> AsyncGenerator[list[ConsumerRecord]]:
    """A k-way merge of the partitions' records by `key`, each partition's in its offset order:
    the smallest head goes next, and a partition that runs out of records in hand (with more to
    read) is fetched again before anything else goes. `fetch` brings what it can for the partitions
    it is given and takes those read to their end out of `remaining`. Where a partition's keys
    rise with its offsets (the platform's topics take the broker's append time: shared/topics.py),
    the order is a full sort's. Where they do not, each partition still comes in the order it was
    written, and a record stamped ahead holds back the rest of its partition until the others
    reach its time (a sort would move it alone)."""
    buffers: dict[TopicPartition, deque[ConsumerRecord]] = {}
    heads: list[tuple[Any, TopicPartition]] = []
    out: list[ConsumerRecord] = []
    while True:
        needy = [tp for tp in remaining if not buffers.get(tp)]
        while needy:
            for tp, rows in (await fetch(needy)).items():
                if rows:
                    buffer = buffers.setdefault(tp, deque())
                    if not buffer:
                        heapq.heappush(heads, (key(rows[0]), tp))
                    buffer.extend(rows)
            needy = [tp for tp in remaining if not buffers.get(tp)]
        if not heads:
            break
        while heads:  # until the merge is done or a partition with more to read runs out
            _, tp = heapq.heappop(heads)
            buffer = buffers[tp]
            out.append(buffer.popleft())
            if buffer:
                heapq.heappush(heads, (key(buffer[0]), tp))
            if len(out) >= chunk:
                yield out
                out = []
            if not buffer and tp in remaining:
                break
    if out:
        yield out


async def read_to_end(
    bootstrap_servers: str,
    topics: Iterable[str],
    *,
    keep: Callable[[ConsumerRecord], bool] = lambda record: True,
    client_id: str = "routemate-reader",
    security: Mapping[str, Any] | None = None,
    start: Mapping[tuple[str, int], int] | None = None,
    gaps: list[str] | None = None,
) -> list[ConsumerRecord]:
    """Every record of `topics` (that `keep` accepts) up to each partition's end at the start of
    the call, oldest first per partition, in memory at once (`TopicReader`)."""
    async with TopicReader(
        bootstrap_servers, topics, client_id=client_id, security=security, start=start, gaps=gaps
    ) as reader:
        return await reader.to_end(keep)
