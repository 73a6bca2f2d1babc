"""The rebuild's ordered read on the real broker: small fetches, so the merge refills partitions
many times; the order of a full sort by timestamp; nothing written after the reader opened. And
the platform's topics stamp records with the broker's append time, which rises with the offsets."""

import contextlib
import random
import uuid
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic, RecordsToDelete
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from shared.events import ALL_TOPICS
from shared.events.jobs import JOBS_GEOCODED, JOBS_REQUESTED
from shared.settings import PlatformSettings
from shared.testing.stack import BOOTSTRAP
from shared.topic_reader import TopicReader, read_to_end
from shared.topic_reader import time_order as key
from tests.conftest import Tenant

LOG_APPEND_TIME = 1  # a record's timestamp_type: the broker's clock, not the producer's

PARTITIONS, RECORDS = 4, 400


@contextlib.asynccontextmanager
async def scratch_topic(
    partitions: int, **configs: str
) -> AsyncIterator[tuple[str, AIOKafkaProducer, AIOKafkaAdminClient]]:
    """A topic of its own for one test (deleted after it), a producer waiting for every replica,
    and the admin client that made it."""
    settings = PlatformSettings()
    topic = f"routemate.test.reader.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, client_id="test-reader")
    await admin.start()
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    try:
        configs = {"min.insync.replicas": str(settings.topic_min_insync_replicas), **configs}
        await admin.create_topics([NewTopic(topic, partitions, settings.topic_replication, topic_configs=configs)])
        await producer.start()
        yield topic, producer, admin
    finally:
        await producer.stop()
        await admin.delete_topics([topic])
        await admin.close()


async def test_an_ordered_read_in_small_fetches_is_a_full_sort_of_what_was_there_when_it_opened():
    settings = PlatformSettings()
    # The records carry their own (2023) timestamps: without retention.ms=-1 the broker's
    # retention check (every 5 minutes, a week's retention) could delete them mid-read.
    async with scratch_topic(PARTITIONS, **{"retention.ms": "-1"}) as (topic, producer, _):
        rng, stamp = random.Random(5), 1_700_000_000_000
        for n in range(RECORDS):  # partitions interleaved in time, ties included; a batch each
            stamp += rng.choice((0, 1, 7))
            value = f"{n:04d}".encode() + b"x" * 300
            await producer.send_and_wait(topic, value, partition=rng.randrange(PARTITIONS), timestamp_ms=stamp)

        async with TopicReader(settings.kafka_bootstrap_servers, [topic], partition_bytes=2048) as reader:
            assert reader.total == RECORDS
            fetch, fetches = reader._fetch, []

            async def counted(partitions):
                fetches.append(len(partitions))
                return await fetch(partitions)

            reader._fetch = counted  # type: ignore[method-assign]
            for n in range(20):  # after the reader opened: not part of what it reads
                await producer.send_and_wait(topic, b"late" + b"x" * 300, partition=n % PARTITIONS)
            chunks = [chunk async for chunk in reader.in_order(key, 50)]
        async with TopicReader(settings.kafka_bootstrap_servers, [topic]) as everything:
            written = await everything.to_end()

        merged = [record for chunk in chunks for record in chunk]
        assert len(fetches) >= RECORDS * 310 // 2048 // 2  # refilled again and again, a few records each
        assert [len(chunk) for chunk in chunks] == [50] * (RECORDS // 50)
        assert len(written) == RECORDS + 20
        assert merged == sorted((r for r in written if not r.value.startswith(b"late")), key=key)


async def test_records_deleted_under_a_read_are_a_gap_and_the_read_goes_on_from_the_logs_new_start():
    """Retention (or a DeleteRecords) moving a partition's start past the reader's position: the
    reader says which offsets it lost and reads the rest. It used to take the partition for read
    to its end (the consumer's default reset jumped to the log's end) and the read stopped short."""
    settings = PlatformSettings()
    async with scratch_topic(2) as (topic, producer, admin):
        for n in range(200):  # a batch each, partitions alternating, offsets 0..99 in each
            await producer.send_and_wait(topic, f"{n:04d}".encode() + b"x" * 300, partition=n % 2)
        gaps: list[str] = []
        async with TopicReader(settings.kafka_bootstrap_servers, [topic], partition_bytes=2048, gaps=gaps) as reader:
            chunks = aiter(reader.in_order(key, 10))
            merged = list(await anext(chunks))
            deleted = TopicPartition(topic, 0)
            assert await reader.consumer.position(deleted) < 60  # the reader has not reached it yet
            await admin.delete_records({deleted: RecordsToDelete(60)})
            merged += [record async for chunk in chunks for record in chunk]

        kept = [(r.partition, r.offset) for r in merged]
        assert len(kept) == len(set(kept))
        assert {(1, offset) for offset in range(100)} <= set(kept)  # the other partition whole
        assert {(0, offset) for offset in range(60, 100)} <= set(kept)  # and all this one still has
        lost = {(0, offset) for offset in range(100)} - set(kept)
        assert lost and max(lost)[1] < 60  # only deleted records are missing
        assert len(gaps) == 1, gaps
        assert gaps[0].startswith(f"{topic}[0] offsets ") and gaps[0].endswith(" to 59 deleted unread")
        assert merged == sorted(merged, key=key)


async def test_a_snapshot_offset_past_a_partitions_end_is_a_gap_not_a_silent_skip():
    """A snapshot taken before its topic was recreated (or truncated) asks for offsets the log
    no longer reaches: the reader says so."""
    settings = PlatformSettings()
    async with scratch_topic(2) as (topic, producer, _):
        for n in range(10):
            await producer.send_and_wait(topic, b"%d" % n, partition=0)
        gaps: list[str] = []
        start = {(topic, 0): 50, (topic, 1): 0}
        async with TopicReader(settings.kafka_bootstrap_servers, [topic], start=start, gaps=gaps) as reader:
            assert await reader.to_end() == []
        assert gaps == [f"{topic}[0] ends at 10, before the snapshot's 50"]


async def test_the_platforms_topics_stamp_each_record_with_the_brokers_append_time(tenant: Tenant):
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP, client_id="test-reader-configs")
    await admin.start()
    try:
        described = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in ALL_TOPICS]
        )
    finally:
        await admin.close()
    stamped = {
        resource[3]: dict(entry[:2] for entry in resource[4])["message.timestamp.type"]
        for response in described
        for resource in response.resources
    }
    assert stamped == dict.fromkeys(ALL_TOPICS, "LogAppendTime")

    imported = await tenant.import_job()
    assert imported.status_code == 201, imported.text
    job_id = imported.json()["job_id"]
    records = await read_to_end(BOOTSTRAP, [JOBS_REQUESTED, JOBS_GEOCODED], keep=lambda r: r.key == job_id.encode())
    assert sorted(r.topic for r in records) == [JOBS_GEOCODED, JOBS_REQUESTED]
    assert {r.timestamp_type for r in records} == {LOG_APPEND_TIME}
