"""kill -9 of a consumer stage mid-burst, then restart: every accepted job reaches its route once."""

import asyncio
import os
import signal
import subprocess

import httpx
import pytest

from tests.conftest import ROOT, Tenant


def restart_platform() -> None:
    subprocess.run(
        ["bash", str(ROOT / "deploy/local/platform.sh"), "up"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL
    )


async def settle(tenant: Tenant, job_ids: list[str], seconds: float = 90) -> dict[str, dict]:
    views: dict[str, dict] = {}
    deadline = asyncio.get_running_loop().time() + seconds
    while len(views) < len(job_ids) and asyncio.get_running_loop().time() < deadline:
        for job_id in job_ids:
            if job_id in views:
                continue
            try:
                got = await tenant.get_job(job_id)
            except httpx.TransportError:  # a keep-alive connection the restarted edge closed: poll again
                continue
            if got.status_code == 200 and got.json()["status"] == "assigned":
                views[job_id] = got.json()
        await asyncio.sleep(0.3)
    return views


@pytest.mark.parametrize("victim", ["geocoder", "optimizer", "status"])
async def test_a_killed_stage_loses_and_doubles_nothing(victim: str, http: httpx.AsyncClient, tenant: Tenant):
    bodies = [tenant.job() for _ in range(30)]

    async def post(i: int, body: dict) -> httpx.Response:
        await asyncio.sleep(i * 0.03)
        return await tenant.import_job(body, Prefer="respond-async")

    posts = [asyncio.create_task(post(i, b)) for i, b in enumerate(bodies)]
    await asyncio.sleep(0.3)
    pid = int((ROOT / f"var/run/{victim}.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    answers = await asyncio.gather(*posts)
    await asyncio.to_thread(restart_platform)
    assert all(a.status_code == 202 for a in answers), [a.text for a in answers if a.status_code != 202]
    job_ids = [a.json()["job_id"] for a in answers]
    views = await settle(tenant, job_ids)
    assert len(views) == len(job_ids), f"{len(job_ids) - len(views)} accepted jobs never got their route"
    assert all(v["stop_count"] == 8 and len(v["stops"]) == 8 for v in views.values())
    listed = (await http.get("/v1/integration-jobs", params={"limit": 200}, headers=tenant.auth)).json()["jobs"]
    assert sorted(j["job_id"] for j in listed) == sorted(job_ids)  # nothing doubled


async def test_a_locked_read_model_delays_the_projection_and_loses_nothing(tenant: Tenant):
    """The status database refuses writes for a while (another process holds its write lock)."""
    import sqlite3

    lock = sqlite3.connect(ROOT / "var/status.db", timeout=5)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        answers = [await tenant.import_job(tenant.job(), Prefer="respond-async") for _ in range(5)]
        await asyncio.sleep(3)
        assert all(a.status_code == 202 for a in answers)
    finally:
        lock.rollback()
        lock.close()
    views = await settle(tenant, [a.json()["job_id"] for a in answers])
    assert len(views) == 5
