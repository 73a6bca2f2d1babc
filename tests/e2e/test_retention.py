"""Retention and offboarding over the real stack.

Retention: `routemate org retention ORG DAYS` (auth admin API -> OrgRetentionSet on the auth topic
-> the status read model) with a seconds-scale number of days; a second status process (its own
consumer group and database, its retention task every half second) erases the finished job the
same way DELETE does, and the platform's status applies the JobErased it publishes.
Offboarding: `routemate org erase ORG --yes` leaves nothing of the organization readable.
"""

import asyncio
import sqlite3
import uuid

import httpx
import redis.asyncio as aioredis

from services.auth.settings import LOCAL_ADMIN_TOKEN
from services.status.settings import StatusSettings
from shared import pii
from shared.testing.stack import ADMIN_URL, REDIS_URL, extra_port
from shared.testing.waiting import async_wait_until
from tests.conftest import Tenant, extra_process, routemate
from tests.e2e.test_path import wait_for


async def test_a_finished_job_past_its_organizations_retention_is_erased_and_a_running_one_is_kept(
    tenant: Tenant, http, tmp_path
):
    finished, running = (await tenant.import_job()).json(), (await tenant.import_job()).json()
    cancel = await http.post(f"/v1/integration-jobs/{finished['job_id']}/cancel", headers=tenant.auth, json={})
    assert cancel.status_code == 202, cancel.text
    await wait_for(tenant, finished["job_id"], {"cancelled"})
    set_to = await asyncio.to_thread(routemate, "org", "retention", tenant.org, "0.00002")  # 1.7 seconds
    assert set_to["job_retention_days"] == 0.00002
    env = {"STATUS_GROUP": f"e2e-retention-{uuid.uuid4().hex[:6]}", "VAR_DIR": str(tmp_path)}
    with extra_process("status", extra_port("status"), JOB_RETENTION_CHECK_SECONDS="0.5", **env):

        async def erased() -> bool:
            return (await tenant.get_job(finished["job_id"])).status_code == 404

        await async_wait_until(erased, seconds=60, what="the retention task to erase the finished job")
    assert (await tenant.get_job(running["job_id"])).status_code == 200
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
