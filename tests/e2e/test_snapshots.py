"""The event log forgets old segments; the read model does not: `routemate status snapshot`, then
the records before it are deleted from every topic (as retention or a lost segment would), and
`routemate status rebuild` (the newest snapshot, then the topics from its offsets) still equals the
live read model, versions included, with erased jobs still erased."""

import asyncio
import json
import sqlite3
import uuid

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

from services.status.adapters.queries import JobQueries
from services.status.subscribers import TOPICS
from services.status.views import job_view
from shared.db import make_engine
from shared.testing.stack import BOOTSTRAP
from shared.testing.waiting import async_wait_until
from tests.conftest import Tenant, routemate
from tests.e2e.test_erasure import personal_job
from tests.e2e.test_path import wait_for
from tests.e2e.test_rebuild import live_read_model_has_every_event


async def delete_records_before(offsets: list[dict]) -> None:
    """Every record before the snapshot's offsets, gone from the topics (DeleteRecords moves each
    partition's log start, as retention deleting old segments does)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP, client_id="test-forget-segments")
    await admin.start()
    try:
        wanted = {TopicPartition(o["topic"], o["partition"]): RecordsToDelete(o["offset"]) for o in offsets}
        await admin.delete_records(wanted, timeout_ms=10_000)
    finally:
        await admin.close()


async def erase(tenant: Tenant, job_id: str) -> None:
    assert (await tenant.http.delete(f"/v1/integration-jobs/{job_id}", headers=tenant.auth)).status_code == 204


async def test_a_rebuild_from_a_snapshot_after_old_segments_are_gone_equals_the_live_read_model(
    tenant: Tenant, tmp_path
):
    marker = f"snap{uuid.uuid4().hex[:10]}"
    kept, erased_before, erased_after = [
        (await tenant.import_job(personal_job(tenant, marker))).json() for _ in range(3)
    ]
    stop = kept["stops"][0]["external_stop_id"]
    await tenant.http.post(
        f"/v1/integration-jobs/{kept['job_id']}/stops/{stop}/status",
        headers=tenant.auth,
        json={"status": "failed", "reason": "closed", "notes": f"note {marker}"},
    )
    await wait_for(tenant, kept["job_id"], {"in_progress"})
    await erase(tenant, erased_before["job_id"])
    await async_wait_until(live_read_model_has_every_event, what="the live projection to apply every event")
    snapshot = await asyncio.to_thread(routemate, "status", "snapshot")
    assert snapshot["rows"] > 0 and snapshot["offsets"]

    later = (await tenant.import_job()).json()  # after the snapshot: only the topics have it
    await erase(tenant, erased_after["job_id"])  # after the snapshot: the snapshot still holds its rows, sealed
    await async_wait_until(live_read_model_has_every_event, what="the live projection to apply every event")
    await delete_records_before(snapshot["offsets"])

    url = f"sqlite:///{tmp_path / 'rebuilt.db'}"
    report = await asyncio.to_thread(routemate, "status", "rebuild", "--database-url", url, timeout=300)
    print(f"\nrebuild: {json.dumps(report)}")
    assert report["snapshot"] == snapshot["path"] and report["gaps"] == [] and report["rows_restored"] > 0
    rebuilt = JobQueries(make_engine(url))
    for job in (kept, later):
        live = (await tenant.get_job(job["job_id"])).json()
        found = rebuilt.job(tenant.creds["org_id"], job_id=job["job_id"])
        assert found is not None, job["job_id"]
        assert json.loads(json.dumps(job_view(*found))) == live  # the version (ETag) included
    for job in (erased_before, erased_after):
        assert rebuilt.job(tenant.creds["org_id"], job_id=job["job_id"]) is None
    with sqlite3.connect(tmp_path / "rebuilt.db") as db:
        stops = [row[0] for row in db.execute("select notes from status_stops where job_id = ?", (kept["job_id"],))]
        assert f"note {marker}" in stops  # the kept job's personal data came back from the sealed snapshot
        for job in (erased_before, erased_after):
            assert not db.execute("select 1 from status_stops where job_id = ?", (job["job_id"],)).fetchall()
            assert not db.execute("select 1 from status_jobs where job_id = ?", (job["job_id"],)).fetchall()
    assert set(TOPICS) >= {o["topic"] for o in snapshot["offsets"]}
