"""`routemate status rebuild` replays the topics into an empty read model that matches the live one."""

import asyncio
import json

from services.status.adapters.queries import JobQueries
from services.status.views import job_view
from shared.db import make_engine
from tests.conftest import Tenant, routemate
from tests.e2e.test_path import wait_for


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
    await asyncio.sleep(0.5)
    url = f"sqlite:///{tmp_path / 'rebuilt.db'}"
    report = await asyncio.to_thread(routemate, "status", "rebuild", "--database-url", url)
    assert report["events_applied"] > 0
    rebuilt = JobQueries(make_engine(url))
    for job in jobs:
        live = (await tenant.get_job(job["job_id"])).json()
        found = rebuilt.job(tenant.creds["org_id"], job_id=job["job_id"])
        assert found is not None
        assert json.loads(json.dumps(job_view(*found))) == live
