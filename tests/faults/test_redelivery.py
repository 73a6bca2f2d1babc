"""The same events delivered twice (a consumer that restarts before it commits): nothing changes."""

import asyncio

import httpx
from aiokafka import AIOKafkaProducer

from shared.events import JOBS_GEOCODED, JOBS_OPTIMIZED, JOBS_REQUESTED, STOPS_STATUS
from shared.testing.stack import BOOTSTRAP
from shared.topic_reader import read_to_end
from tests.conftest import Tenant
from tests.e2e.test_path import wait_for

TOPICS = (JOBS_REQUESTED, JOBS_GEOCODED, JOBS_OPTIMIZED, STOPS_STATUS)


async def records_of(job_id: str) -> list:
    """Every record of the job's topics that carries this job's key."""
    return await read_to_end(BOOTSTRAP, TOPICS, keep=lambda record: record.key == job_id.encode())


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
