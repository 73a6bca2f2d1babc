"""Scaling the optimizer stage: a second process in the consumer group finishes a CPU-bound burst sooner.

The burst goes straight onto `routemate.jobs.geocoded` over the real broker, and the clock stops
when the last `RouteOptimized` of it is on `routemate.jobs.optimized`, so what is timed is the
optimizer stage. Job ids are picked so that every partition carries the same number of jobs:
the group spreads partitions evenly, and each process then gets half of the burst. Random ids
can split a burst 10:2, and that measures the hashing, not the scaling.
"""

import asyncio
import random
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2

from services.optimizer.settings import OptimizerSettings
from services.optimizer.subscribers import GROUP
from shared.events import JOBS_GEOCODED, JOBS_GEOCODED_BULK, JOBS_OPTIMIZED, StopsGeocoded, decode_event
from shared.events.jobs import JobSpec, Location, RequestedStop
from shared.lanes import bulk_group
from shared.settings import PlatformSettings
from shared.testing.stack import BOOTSTRAP, extra_port
from shared.testing.waiting import async_wait_until
from tests.conftest import consumer_group, extra_process, group_partitions

PARTITIONS = PlatformSettings().topic_partitions
IN_HAND = OptimizerSettings().solver_in_hand
PER_PARTITION, STOPS = 2, 300  # 24 jobs of most of a second of solving each: a CPU-bound burst


def balanced_job_ids(tag: str) -> list[str]:
    """Job ids that Kafka's default partitioner spreads evenly, PER_PARTITION on each partition."""
    wanted = {p: PER_PARTITION for p in range(PARTITIONS)}
    ids = []
    while any(wanted.values()):
        job_id = f"job_scale_{tag}_{uuid.uuid4().hex[:12]}"
        partition = (murmur2(job_id.encode()) & 0x7FFFFFFF) % PARTITIONS
        if wanted[partition]:
            wanted[partition] -= 1
            ids.append(job_id)
    return ids


def geocoded(job_id: str, seed: int) -> StopsGeocoded:
    rng = random.Random(seed)
    stops = tuple(RequestedStop(stop_id=f"{job_id}.{i}", external_stop_id=f"S{i}") for i in range(STOPS))
    locations = tuple(
        Location(
            stop_id=s.stop_id,
            external_stop_id=s.external_stop_id,
            precision="provided",
            provider="client",
            lat=-27.47 + rng.uniform(-0.13, 0.13),
            lng=153.02 + rng.uniform(-0.15, 0.15),
        )
        for s in stops
    )
    job = JobSpec(external_job_id=job_id, title="scale-out burst", stops=stops, payload_hash="scale")
    return StopsGeocoded(org_id="org_scaleout", job_id=job_id, job=job, locations=locations)


async def burst_seconds(tag: str) -> float:
    """Seconds from publishing the burst to the last of its routes on the optimized topic."""
    events = [geocoded(job_id, seed) for seed, job_id in enumerate(balanced_job_ids(tag))]
    pending = {e.job_id for e in events}
    consumer = AIOKafkaConsumer(
        JOBS_OPTIMIZED, bootstrap_servers=BOOTSTRAP, auto_offset_reset="latest", group_id=None, enable_auto_commit=False
    )
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    await consumer.start()
    await producer.start()
    try:
        await consumer.seek_to_end()
        for tp in consumer.assignment():
            await consumer.position(tp)  # resolve "latest" now, before the burst is published
        started = time.perf_counter()
        await asyncio.gather(*(producer.send_and_wait(JOBS_GEOCODED, e.to_bytes(), key=e.key) for e in events))
        while pending and time.perf_counter() - started < 180:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    pending.discard(decode_event(record.value).job_id)
        assert not pending, f"{len(pending)} jobs of the burst never got their route"
        return time.perf_counter() - started
    finally:
        await producer.stop()
        await consumer.stop()


async def test_two_optimizer_processes_finish_a_burst_faster_than_one(platform):
    one = await burst_seconds("one")
    with extra_process("optimizer", extra_port("optimizer")):
        # The group rebalances partitions over both processes: the burst goes once both hold theirs
        # (a fixed wait of a few seconds could start it mid-rebalance on a loaded machine).
        async def both_assigned() -> bool:
            try:
                state, members = await consumer_group(GROUP)
            except KafkaError:  # the coordinator not reachable this moment: ask again
                return False
            return state == "Stable" and len(members) == 2 * IN_HAND  # a consumer per job in hand

        await async_wait_until(both_assigned, seconds=90, every=0.5, what="two optimizers sharing the partitions")
        two = await burst_seconds("two")
    jobs = PER_PARTITION * PARTITIONS
    print(f"{jobs} jobs of {STOPS} stops: one optimizer {one:.1f} s, two {two:.1f} s, speed-up {one / two:.2f}")
    assert two < one * 0.8


async def settled_partitions(group: str) -> dict[str, list[TopicPartition]]:
    """Each member's partitions, once the group is stable with IN_HAND members that all hold some."""
    seen: dict[str, list[TopicPartition]] = {}

    async def settled() -> bool:
        try:
            state, owned = await group_partitions(group)
        except KafkaError:  # the coordinator not reachable this moment: ask again
            return False
        seen.clear()
        seen.update(owned)
        return state == "Stable" and len(owned) == IN_HAND and all(owned.values())

    await async_wait_until(settled, seconds=90, every=0.5, what=f"{IN_HAND} consumers in {group}")
    return seen


async def test_one_optimizer_keeps_jobs_in_hand_a_consumer_each_every_partition_owned_by_one(platform):
    """SOLVER_IN_HAND consumers per lane in the one optimizer process, over the real broker: the
    group gives each its own partitions (a partition's jobs stay in order, each consumer commits
    its own), and together they hold all of them."""
    assert IN_HAND > 1  # the default: the solver thread solves the next job while one is published
    for group, topic in ((GROUP, JOBS_GEOCODED), (bulk_group(GROUP), JOBS_GEOCODED_BULK)):
        owned = await settled_partitions(group)
        held = [tp for partitions in owned.values() for tp in partitions]
        assert sorted(held) == sorted(TopicPartition(topic, p) for p in range(PARTITIONS)), owned
