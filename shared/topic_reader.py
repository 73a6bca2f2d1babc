"""Reading topics from their beginning to their current end: the rebuild and the tests use it."""

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

READ_PARTITION_BYTES = 8 * 1024 * 1024  # per partition and fetch
READ_FETCH_BYTES = 64 * 1024 * 1024  # per fetch, all partitions


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
    the call, oldest first per partition; from `start`'s offset where it names the partition (a
    snapshot's), else from the beginning. No consumer group: nothing is committed. `security`:
    the settings' `kafka_client_security()` where Kafka wants SASL. `gaps` collects the partitions
    whose log now starts after the offset asked for (records deleted before they were read)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        client_id=client_id,
        # Reading whole topics, not keeping up with a live one: large fetches, fewer round trips
        # (the default is 1 MiB a partition, about 100 routes of a 20-stop job).
        max_partition_fetch_bytes=READ_PARTITION_BYTES,
        fetch_max_bytes=READ_FETCH_BYTES,
        **(security or {}),
    )
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()  # aiokafka has no public call for this
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(cluster.partitions_for_topic(t) or ())]
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        firsts = await consumer.beginning_offsets(partitions)
        for tp in partitions:
            wanted = (start or {}).get((tp.topic, tp.partition))
            if wanted is not None and wanted > firsts[tp]:
                consumer.seek(tp, wanted)
            elif wanted is not None and wanted < firsts[tp] and gaps is not None:
                gaps.append(f"{tp.topic}[{tp.partition}] starts at {firsts[tp]}, after {wanted}")
            elif wanted is None and firsts[tp] > 0 and gaps is not None:
                gaps.append(f"{tp.topic}[{tp.partition}] starts at {firsts[tp]}, not in the snapshot")
        ends = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord] = []
        remaining = {
            tp for tp, end in ends.items() if end > max(firsts[tp], (start or {}).get((tp.topic, tp.partition), 0))
        }
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)  # all that the fetches brought
            for tp, rows in batch.items():
                records += [r for r in rows if r.offset < ends[tp] and keep(r)]
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return records
    finally:
        await consumer.stop()
