"""Retention and offboarding over the real stack.

Retention: `routemate org retention ORG DAYS` (auth admin API -> OrgRetentionSet on the auth topic
-> the status read model) with a seconds-scale number of days; a second status replica (the
platform's consumer group and database, its retention task every half second) erases the finished
job the same way DELETE does. It is a replica, not a read model of its own: one with its own
database replayed the whole log and wrote its own version counts into the jobs' heads in the
shared Redis, which a later `routemate status rebuild` took for the live ETags (issue 20).
Offboarding: `routemate org erase ORG --yes` leaves nothing of the organization readable.
"""

import asyncio
import sqlite3

import httpx
import redis.asyncio as aioredis
from sqlalchemy import select

from services.auth.settings import LOCAL_ADMIN_TOKEN
from services.status.adapters.tables import JobRow
from services.status.settings import StatusSettings
from shared import pii
from shared.channels import JobHead, jobhead_key
from shared.db import make_engine
from shared.testing.stack import ADMIN_URL, REDIS_URL, extra_port
from shared.testing.waiting import async_wait_until
from tests.conftest import Tenant, extra_process, routemate
from tests.e2e.test_path import wait_for


def live_versions() -> dict[str, int]:
    """Every job of the platform's read model, with its version (its ETag)."""
    engine = make_engine(StatusSettings().status_database_url)
    try:
        with engine.connect() as connection:
            table = JobRow.__table__  # type: ignore[attr-defined]
            return dict(connection.execute(select(table.c.job_id, table.c.version)).all())
    finally:
        engine.dispose()


async def live_heads() -> dict[str, JobHead]:
    """The heads in Redis of the read model's jobs (those that have one)."""
    job_ids = sorted(live_versions())
    durable = aioredis.Redis.from_url(REDIS_URL)
    try:
        raws = await durable.mget([jobhead_key(job_id) for job_id in job_ids]) if job_ids else []
    finally:
        await durable.aclose()
    return {job_id: JobHead.model_validate_json(raw) for job_id, raw in zip(job_ids, raws, strict=True) if raw}


async def test_a_finished_job_past_its_organizations_retention_is_erased_and_a_running_one_is_kept(
    tenant: Tenant, http, tmp_path
):
    finished, running = (await tenant.import_job()).json(), (await tenant.import_job()).json()
    cancel = await http.post(f"/v1/integration-jobs/{finished['job_id']}/cancel", headers=tenant.auth, json={})
    assert cancel.status_code == 202, cancel.text
    await wait_for(tenant, finished["job_id"], {"cancelled"})
    set_to = await asyncio.to_thread(routemate, "org", "retention", tenant.org, "0.00002")  # 1.7 seconds
    assert set_to["job_retention_days"] == 0.00002
    heads_before = await live_heads()
    env = {"VAR_DIR": str(tmp_path), "DATABASE_URL": StatusSettings().status_database_url}
    with extra_process("status", extra_port("status"), JOB_RETENTION_CHECK_SECONDS="0.5", **env):

        async def erased() -> bool:
            return (await tenant.get_job(finished["job_id"])).status_code == 404

        await async_wait_until(erased, seconds=60, what="the retention task to erase the finished job")
    assert (await tenant.get_job(running["job_id"])).status_code == 200
    # The replica left every job's head naming its live version (the ETag a client holds), which
    # is what `routemate status rebuild` aligns the rebuilt versions to.
    moved = {job_id: head for job_id, head in (await live_heads()).items() if heads_before.get(job_id) != head}
    assert {job_id: head.version for job_id, head in moved.items()} == {
        job_id: version for job_id, version in live_versions().items() if job_id in moved
    }
    durable = aioredis.Redis.from_url(REDIS_URL)
    assert await durable.get(pii.data_key_name(finished["job_id"])) == pii.ERASED_MARK
    assert await durable.get(pii.data_key_name(running["job_id"])) not in (None, pii.ERASED_MARK)
    await durable.aclose()


async def test_erasing_an_organization_leaves_nothing_of_it(tenant: Tenant, http):
    job = (await tenant.import_job()).json()
    await wait_for(tenant, job["job_id"], {"assigned"})
    done = await asyncio.to_thread(routemate, "org", "erase", tenant.org, "--yes")
    assert done["integrations"] == 1 and done["drivers"] == 1 and done["tokens_revoked"] >= 1
    assert (await tenant.get_job(job["job_id"])).status_code == 401  # its tokens ended with it
    org_id = tenant.creds["org_id"]
    path = StatusSettings().status_database_url.removeprefix("sqlite:///")

    def rows_left() -> int:
        with sqlite3.connect(path) as db:
            jobs = db.execute("select count(*) from status_jobs where org_id = ?", (org_id,)).fetchone()[0]
            drivers = db.execute("select count(*) from status_drivers where org_id = ?", (org_id,)).fetchone()[0]
            return jobs + drivers

    async def gone() -> bool:
        return await asyncio.to_thread(rows_left) == 0

    await async_wait_until(gone, what="the status service to erase the organization's jobs and drivers")
    durable = aioredis.Redis.from_url(REDIS_URL)

    async def keys_destroyed() -> bool:  # right after the rows' transaction
        names = [pii.data_key_name(job["job_id"]), pii.data_key_name(pii.org_subject(org_id))]
        return await durable.mget(names) == [pii.ERASED_MARK] * 2

    await async_wait_until(keys_destroyed, what="the job's and the organization's data keys to be destroyed")
    await durable.aclose()
    async with httpx.AsyncClient(base_url=ADMIN_URL, headers={"Authorization": f"Bearer {LOCAL_ADMIN_TOKEN}"}) as admin:
        assert (await admin.get("/admin/v1/integrations", params={"org": tenant.org})).json()["integrations"] == []
        assert (await admin.get("/admin/v1/drivers", params={"org": tenant.org})).json()["drivers"] == []
