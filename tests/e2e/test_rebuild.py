"""`routemate status rebuild` replays the topics into an empty read model that matches the live one."""

import asyncio
import json
import subprocess
import uuid

import psycopg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.status.adapters.queries import JobQueries
from services.status.settings import StatusSettings
from services.status.subscribers import GROUP, TOPICS
from services.status.views import job_view
from shared.db import make_engine
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
