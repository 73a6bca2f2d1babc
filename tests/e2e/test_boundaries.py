"""Tenant safety at the edges, over the real stack: the largest valid import fits through every
stage; times far out are refused at the edge; a poison event that passes decoding is parked at
once instead of stalling its partition; deep JSON and NUL give 400s, never 500s."""

import asyncio
import time
import uuid

import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

from shared.events import ImportRequested
from shared.settings import PlatformSettings
from shared.testing.builders import spec, stop
from shared.testing.stack import BOOTSTRAP
from tests.conftest import Tenant

PARTITIONS = PlatformSettings().topic_partitions


def largest_import(tenant: Tenant) -> dict:
    """500 stops with every text field near its limit in multi-byte UTF-8: about 4.6 MiB of body,
    four times what Kafka's default one-message limit takes."""
    body = tenant.job(title="T" * 500)
    body["stops"] = [
        {
            "external_stop_id": f"BIG-{i}",
            "lat": -27.47 + (i % 25) / 200,
            "lng": 153.02 + (i // 25) / 200,
            "address": f"{i} Queen St " + "é" * 900,
            "label": "📦" * 400,
            "notes": "🚚" * 1500,
            "phone": "+61 7 0000 0000",
        }
        for i in range(500)
    ]
    return body


async def test_the_largest_valid_import_is_routed_through_every_stage(http: httpx.AsyncClient, tenant: Tenant):
    body = largest_import(tenant)
    raw = httpx.Request("POST", "/", json=body).content
    assert 4 * 1024 * 1024 < len(raw) < 5 * 1024 * 1024
    answer = await http.post(
        "/v1/integration-import", content=raw, headers={**tenant.auth, "Content-Type": "application/json"}
    )
    assert answer.status_code in (201, 202), answer.text[:500]
    job = await settled(tenant, answer.json()["job_id"])
    assert job["stop_count"] == 500 and len(job["stops"]) == 500
    assert job["stops"][0]["label"] == "📦" * 400 and job["stops"][0]["address"].endswith("é" * 900)


async def test_times_far_from_now_are_refused_at_the_edge(http: httpx.AsyncClient, tenant: Tenant):
    for start in ("9999-12-31T00:00:00Z", "1970-01-01T00:00:00Z"):
        answer = await tenant.import_job(tenant.job(start_time=start))
        assert answer.status_code == 422, answer.text
        assert [e["pointer"] for e in answer.json()["errors"]] == ["/start_time"]
    job = (await tenant.import_job()).json()
    stop_url = f"/v1/integration-jobs/{job['job_id']}/stops/{job['stops'][0]['external_stop_id']}/status"
    far = await http.post(
        stop_url, json={"status": "completed", "occurred_at": "9999-12-31T00:00:00Z"}, headers=tenant.auth
    )
    assert far.status_code == 422 and far.json()["errors"][0]["pointer"] == "/occurred_at"
    assert (await tenant.get_job(job["job_id"])).json()["stops"][0]["status"] == "pending"


async def settled(tenant: Tenant, job_id: str, seconds: float = 120) -> dict:
    """The job once assigned, polled each second (its view is megabytes)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        answer = await tenant.get_job(job_id)
        if answer.status_code == 200 and answer.json()["status"] == "assigned":
            return answer.json()
        await asyncio.sleep(1)
    raise AssertionError(f"job {job_id} never got its route: {answer.status_code} {answer.text[:300]}")


def one_id_per_partition(tag: str) -> list[str]:
    wanted, ids = set(range(PARTITIONS)), []
    while wanted:
        job_id = str(uuid.uuid4())
        partition = (murmur2(job_id.encode()) & 0x7FFFFFFF) % PARTITIONS
        if partition in wanted:
            wanted.discard(partition)
            ids.append(job_id)
    return ids


async def test_a_poison_event_on_every_partition_does_not_stall_anyone(tenant: Tenant):
    """ImportRequested events that decode but make a stage fail (a year-9999 start that
    overflows ETAs), one on every partition: each is parked at once, and a tenant's import right
    behind them is routed as fast as ever. Before, every stage retried each 5 times with sleeps."""
    poison_start = "9999-12-31T23:59:00Z"  # adding any ETA offset overflows
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    await producer.start()
    try:
        for job_id in one_id_per_partition("poison"):
            job = spec(
                stop(1, lat=-27.47, lng=153.02, job_id=job_id),
                stop(2, lat=-27.48, lng=153.03, job_id=job_id),
                start_time=poison_start,
                driver_email=tenant.driver,
            )
            event = ImportRequested(org_id=tenant.creds["org_id"], job_id=job_id, integration_id="poison", job=job)
            await producer.send_and_wait(event.TOPIC, event.to_bytes(), key=event.key)
    finally:
        await producer.stop()
    started = time.monotonic()
    answer = await tenant.import_job()
    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "assigned"
    assert time.monotonic() - started < 10


async def test_deep_json_and_nul_characters_get_400_problems_not_500s(http: httpx.AsyncClient, tenant: Tenant):
    json_type = {"Content-Type": "application/json"}
    deep = b"[" * 3000 + b"]" * 3000
    token = await http.post("/v1/integration-token", content=deep, headers=json_type)
    assert token.status_code == 400 and token.json()["error"] == "invalid_request"
    imported = await http.post("/v1/integration-import", content=deep, headers={**tenant.auth, **json_type})
    assert imported.status_code == 400 and imported.json()["code"] == "json_too_deep"
    for query in ("cursor=%00", "job_id=%00", "external_job_id=a%00b", "driver_email=%00"):
        listed = await http.get(f"/v1/integration-jobs?{query}", headers=tenant.auth)
        assert listed.status_code == 400, (query, listed.text)
        assert listed.headers["content-type"] == "application/problem+json"
    body = tenant.job()
    body["stops"][0]["label"] = "nul\u0000label"
    nul = await http.post("/v1/integration-import", json=body, headers=tenant.auth)
    assert nul.status_code == 400 and nul.json()["errors"][0]["pointer"] == "/stops/0/label"
