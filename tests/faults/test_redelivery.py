"""The same events delivered twice (a consumer that restarts before it commits): nothing changes."""

import asyncio

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.events import JOBS_GEOCODED, JOBS_OPTIMIZED, JOBS_REQUESTED, STOPS_STATUS
from shared.testing.stack import BOOTSTRAP
from tests.conftest import Tenant
from tests.e2e.test_path import wait_for

TOPICS = (JOBS_REQUESTED, JOBS_GEOCODED, JOBS_OPTIMIZED, STOPS_STATUS)


async def records_of(job_id: str) -> list:
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        partitions = [TopicPartition(t, p) for t in TOPICS for p in cluster.partitions_for_topic(t)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found, remaining = [], {tp for tp, end in ends.items() if end}
        while remaining:
            for tp, rows in (await consumer.getmany(*remaining, timeout_ms=1000)).items():
                found += [r for r in rows if r.key == job_id.encode()]
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return found
    finally:
        await consumer.stop()


async def test_redelivered_events_change_nothing(http: httpx.AsyncClient, tenant: Tenant):
    job = (await tenant.import_job()).json()
    stop = job["stops"][0]["external_stop_id"]
    await http.post(
        f"/v1/integration-jobs/{job['job_id']}/stops/{stop}/status", headers=tenant.auth, json={"status": "completed"}
    )
    before = await wait_for(tenant, job["job_id"], {"in_progress"})
    records = await records_of(job["job_id"])
    assert {r.topic for r in records} == set(TOPICS)
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP)
    await producer.start()
    try:
        for record in records:  # the very same bytes, key and topic, once more
            await producer.send_and_wait(record.topic, record.value, key=record.key)
    finally:
        await producer.stop()
    for _ in range(30):  # give every stage time to see them again
        await asyncio.sleep(0.3)
        assert (await tenant.get_job(job["job_id"])).json() == before
    again = await records_of(job["job_id"])
    assert len(again) >= 2 * len(records)  # they were really delivered (and re-derived) again
    listed = (
        await http.get("/v1/integration-jobs", params={"external_job_id": job["external_job_id"]}, headers=tenant.auth)
    ).json()
    assert listed["job_id"] == job["job_id"]
