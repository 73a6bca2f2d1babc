"""`routemate status rebuild` replays the topics into an empty read model that matches the live one."""

import asyncio
import json
import subprocess
import uuid

import psycopg
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.rebuild_compare import compare
from services.status.adapters.queries import JobQueries
from services.status.settings import StatusSettings
from services.status.subscribers import GROUP, TOPICS
from services.status.views import job_view
from shared.channels import JobHead, jobhead_key
from shared.db import make_engine
from shared.testing.stack import REDIS_URL
from shared.testing.waiting import async_wait_until
from tests.conftest import ROOT, Tenant, routemate
from tests.e2e.test_path import wait_for


async def live_read_model_has_every_event() -> bool:
    """The live status consumer committed every record of its topics: it applied them all."""
    bootstrap = StatusSettings().kafka_bootstrap_servers
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="test-rebuild-lag")
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await admin.start()
    await reader.start()
    try:
        committed = await admin.list_consumer_group_offsets(GROUP)
        cluster = await reader._client.fetch_all_metadata()  # as shared.topic_reader: no public call for this
        partitions = [TopicPartition(t, p) for t in TOPICS for p in cluster.partitions_for_topic(t) or ()]
        ends = await reader.end_offsets(partitions)
        done = {tp: meta.offset for tp, meta in committed.items()}
        return bool(partitions) and all(done.get(tp, 0) >= end for tp, end in ends.items())
    finally:
        await reader.stop()
        await admin.close()


async def test_a_rebuilt_read_model_is_identical_to_the_live_one(tenant: Tenant, tmp_path):
    jobs = [(await tenant.import_job()).json() for _ in range(3)]
    first = jobs[0]
    for outcome, stop in zip(("completed", "failed"), first["stops"], strict=False):
        await tenant.http.post(
            f"/v1/integration-jobs/{first['job_id']}/stops/{stop['external_stop_id']}/status",
            headers=tenant.auth,
            json={"status": outcome, "reason": "rebuild test"},
        )
    await wait_for(tenant, first["job_id"], {"in_progress"})
    await async_wait_until(live_read_model_has_every_event, what="the live status consumer to apply every event")
    # The rebuild replays every event the topics hold: on a platform whose var/ has kept earlier
    # runs' events (a developer's machine) that is many thousands, hence the generous bound.
    dry = await asyncio.to_thread(routemate, "status", "rebuild", "--dry-run", timeout=600)
    for url in (f"sqlite:///{tmp_path / 'rebuilt.db'}", fresh_postgres_database()):
        report = await asyncio.to_thread(routemate, "status", "rebuild", "--database-url", url, timeout=600)
        assert report["events_applied"] >= dry["events_applied"] > 0 and dry["database_url"] is None
        assert set(report["phases"]) == {"read", "decode", "open", "apply"}
        rebuilt = JobQueries(make_engine(url))
        for job in jobs:
            live = (await tenant.get_job(job["job_id"])).json()
            found = rebuilt.job(tenant.creds["org_id"], job_id=job["job_id"])
            assert found is not None, url
            assert json.loads(json.dumps(job_view(*found))) == live, url
        rebuilt.engine.dispose()
        if url.startswith("postgresql"):
            drop_postgres_database(url)


async def test_a_rebuild_of_a_history_of_drivers_erasures_and_cancellations_equals_the_live_one_job_for_job(
    tenant: Tenant, tmp_path
):
    """Issue 20: on a long-lived platform rebuilt jobs differed from the live ones. Here a history
    with what a long one is full of (drivers registered between job events, one of them taking
    over jobs that waited for them, erasures, a cancellation, stop reports) is rebuilt, and every
    job of the organization is compared with the live read model: the public view, every row
    column, and the version the live head in Redis names (which the rebuild aligns to)."""
    late = f"late-{uuid.uuid4().hex[:6]}@example.com"
    waiting = [(await tenant.import_job(tenant.job(driver_email=late))).json() for _ in range(2)]
    jobs = [(await tenant.import_job()).json() for _ in range(4)]
    for job in [*waiting, *jobs]:
        await wait_for(tenant, job["job_id"], {"assigned", "unassigned"})
    reported, cancelled, erased, untouched = jobs
    for outcome, stop in zip(("completed", "failed", "completed"), reported["stops"], strict=False):
        url = f"/v1/integration-jobs/{reported['job_id']}/stops/{stop['external_stop_id']}/status"
        answer = await tenant.http.post(url, headers=tenant.auth, json={"status": outcome, "reason": "rebuild test"})
        assert answer.status_code < 300, answer.text
    await asyncio.to_thread(routemate, "driver", "add", "--org", tenant.org, "--email", "x@example.com", "--name", "X")
    answer = await tenant.http.post(f"/v1/integration-jobs/{cancelled['job_id']}/cancel", headers=tenant.auth, json={})
    assert answer.status_code == 202, answer.text
    assert (
        await tenant.http.delete(f"/v1/integration-jobs/{erased['job_id']}", headers=tenant.auth)
    ).status_code == 204
    await asyncio.to_thread(routemate, "driver", "add", "--org", tenant.org, "--email", late, "--name", "Late")
    for job in waiting:
        await wait_for(tenant, job["job_id"], {"assigned"})  # the late driver took them over
    await wait_for(tenant, cancelled["job_id"], {"cancelled"})
    await async_wait_until(live_read_model_has_every_event, what="the live status consumer to apply every event")

    url = f"sqlite:///{tmp_path / 'rebuilt.db'}"
    await asyncio.to_thread(routemate, "status", "rebuild", "--from-scratch", "--database-url", url, timeout=600)
    org_id = tenant.creds["org_id"]
    found = compare(url, org_id=org_id)
    assert found["live_jobs"] == found["rebuilt_jobs"] == 5  # the erased one is in neither
    assert found["different"] == 0 and not found["only_live"] and not found["only_rebuilt"], found
    assert [k for k, v in found.items() if k.endswith(("_only_live", "_only_rebuilt")) and v] == [], found
    assert found["erased_jobs_only_live"] == found["erased_jobs_only_rebuilt"] == []
    redis = aioredis.Redis.from_url(REDIS_URL)
    try:
        for job in [*waiting, reported, cancelled, untouched]:
            live = await tenant.get_job(job["job_id"])
            head = JobHead.model_validate_json(await redis.get(jobhead_key(job["job_id"])))
            assert live.headers["etag"] == f'"{head.version}"', job["job_id"]  # what the rebuild aligns to
    finally:
        await redis.aclose()


def fresh_postgres_database() -> str:
    """An empty database on the test PostgreSQL (deploy/local/postgres.sh, started if need be)."""
    script = ROOT / "deploy/local/postgres.sh"
    subprocess.run(["bash", str(script), "start"], check=True, stdout=subprocess.DEVNULL)
    admin = subprocess.run(["bash", str(script), "url"], check=True, capture_output=True, text=True).stdout.strip()
    name = f"rebuilt_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return admin.rsplit("/", 1)[0] + f"/{name}"


def drop_postgres_database(url: str) -> None:
    admin = url.rsplit("/", 1)[0] + "/routemate"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
