"""Erasing a job over the real stack: DELETE -> 204, and nothing of its personal data can be read
any more: not through the API, not in the read model's database, not in Kafka as read back, not
in the geocode cache or Redis."""

import random
import sqlite3
import time
import uuid

import redis.asyncio as aioredis

from services.status.settings import StatusSettings
from shared import pii
from shared.events import ALL_TOPICS, UndecodableEvent, decode_event
from shared.testing.stack import BOOTSTRAP, CACHE_REDIS_URL, REDIS_URL
from shared.testing.waiting import async_wait_until
from shared.topic_reader import read_to_end
from tests.conftest import Tenant
from tests.e2e.test_path import wait_for


def personal_job(tenant: Tenant, marker: str) -> dict:
    """The example job with personal data that only this test uses (and addresses nobody cached)."""
    body = tenant.job(title=f"Round of {marker}")
    for n, stop in enumerate(body["stops"]):
        number, rest = stop["address"].split(" ", 1)
        stop.update(
            address=f"{random.randint(1000, 9999)} {rest}",  # a new address: its cache entry is this job's
            label=f"{marker} label {n}",
            notes=f"gate code {marker}",
            phone=f"+61 7 {marker[:4]}",
            email=f"{marker}-{n}@example.com",
        )
    return body


async def report(tenant: Tenant, job: dict, marker: str) -> None:
    stop = job["stops"][0]["external_stop_id"]
    answer = await tenant.http.post(
        f"/v1/integration-jobs/{job['job_id']}/stops/{stop}/status",
        headers=tenant.auth,
        json={"status": "completed", "notes": f"left with {marker}", "recipient_name": f"Mr {marker}"},
    )
    assert answer.status_code == 202, answer.text


def database_text() -> str:
    """Every row of every table of the live read model, as text."""
    path = StatusSettings().status_database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        tables = [row[0] for row in db.execute("select name from sqlite_master where type = 'table'")]
        return "\n".join(str(row) for table in tables for row in db.execute(f'select * from "{table}"'))


async def log_of(job_id: str) -> tuple[list[bytes], list]:
    """Every record of every topic (raw values), and the decoded events of the job."""
    records = await read_to_end(BOOTSTRAP, ALL_TOPICS, client_id="test-erasure")
    events = []
    for record in records:
        if record.key == job_id.encode():
            try:
                events.append(decode_event(record.value))
            except UndecodableEvent:
                pass
    return [record.value or b"" for record in records], events


async def test_an_erased_job_is_gone_from_the_api_the_database_the_log_and_the_caches(tenant: Tenant, http):
    marker = f"pii{uuid.uuid4().hex[:12]}"
    body = personal_job(tenant, marker)
    addresses = [stop["address"] for stop in body["stops"]]
    answer = await tenant.import_job(body)
    assert answer.status_code == 201, answer.text
    job = answer.json()
    job_id = job["job_id"]
    await report(tenant, job, marker)
    await wait_for(tenant, job_id, {"in_progress"})
    assert marker in database_text()  # the read model has it in clear, for the API to answer
    raw, events = await log_of(job_id)
    assert events and not any(marker.encode() in v or addresses[0].encode() in v for v in raw)  # never in clear
    cache = aioredis.Redis.from_url(CACHE_REDIS_URL)
    durable = aioredis.Redis.from_url(REDIS_URL)
    entries = [name.decode() for name in await cache.smembers(f"rm:geojob:{job_id}")]
    assert len(entries) == len(job["stops"]) and await cache.exists(*entries) == len(entries)

    started = time.perf_counter()
    erased = await http.delete(f"/v1/integration-jobs/{job_id}", headers=tenant.auth)
    gone = await tenant.get_job(job_id)
    latency_ms = (time.perf_counter() - started) * 1000
    assert erased.status_code == 204 and gone.status_code == 404, erased.text
    print(f"\nerase latency (DELETE -> GET 404): {latency_ms:.1f} ms")

    assert (await http.delete(f"/v1/integration-jobs/{job_id}", headers=tenant.auth)).status_code == 204
    listed = (await http.get("/v1/integration-jobs", headers=tenant.auth)).json()["jobs"]
    assert job_id not in [j["job_id"] for j in listed]
    text = database_text()
    assert marker not in text and not any(address in text for address in addresses)
    assert await durable.get(pii.data_key_name(job_id)) == pii.ERASED_MARK
    assert not await durable.exists(f"rm:jobhead:{job_id}", f"rm:outcome:{job_id}")

    async def cache_cleared() -> bool:
        return not await cache.exists(*entries, f"rm:geojob:{job_id}")

    await async_wait_until(cache_cleared, what="the geocoder to delete the job's cache entries")
    raw, events = await log_of(job_id)
    assert not any(marker.encode() in value or addresses[0].encode() in value for value in raw)
    keys = pii.DataKeys(durable, StatusSettings().kek_material)
    opened = await keys.open_all(events)
    for event in opened:
        assert not any(marker in str(value) for value in pii.personal_values(event)), event.event_type
    assert any(v == pii.ERASED for e in opened for v in pii.personal_values(e))
    await cache.aclose()
    await durable.aclose()


async def test_another_organizations_job_cannot_be_erased_and_an_unknown_one_is_404(tenant: Tenant, http):
    other = await Tenant(http).login()
    job = (await tenant.import_job()).json()
    assert (await http.delete(f"/v1/integration-jobs/{job['job_id']}", headers=other.auth)).status_code == 404
    assert (await http.delete(f"/v1/integration-jobs/{uuid.uuid4()}", headers=tenant.auth)).status_code == 404
    assert (await tenant.get_job(job["job_id"])).status_code == 200
