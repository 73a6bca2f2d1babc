"""The status service's limits in-process: a list page bounded by bytes (the cursor walk loses and
repeats nothing), and separate per-integration buckets for job reads and stop updates."""

import json
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from faststream.kafka import TestKafkaBroker

from services.status import handlers
from services.status.app import SERVICE, create_app
from services.status.handlers import JobSearch, PageSizes
from services.status.settings import StatusSettings
from services.status.tests.conftest import ORG, TOKENS, StatusService
from shared.broker import make_broker
from shared.db import make_engine
from shared.events import utcnow
from shared.testing.fakes import MemoryRedis, seed_token

JOBS = "/v1/integration-jobs"


async def walk(status: StatusService, max_bytes: int) -> list[list[dict]]:
    pages, cursor = [], None
    while True:
        search = JobSearch(limit=200, cursor=cursor)
        page = await handlers.find_jobs(status.app.state.queries, ORG, search, PageSizes(50, 200, max_bytes))
        pages.append(page.jobs)
        if not (cursor := page.next_cursor):
            return pages


def weight(job: dict) -> int:
    return len(json.dumps(job, default=str))


async def test_a_page_stops_before_the_job_that_would_pass_the_byte_bound(status):
    t0 = utcnow()
    for i in range(7):
        await status.job(f"job_{i}", at=t0 + timedelta(seconds=i))
    (everything,) = await walk(status, 10**9)
    one = max(weight(job) for job in everything)
    pages = await walk(status, int(2.5 * one))
    assert [len(page) for page in pages] == [2, 2, 2, 1]
    assert [job["job_id"] for page in pages for job in page] == [f"job_{i}" for i in reversed(range(7))]
    assert all(sum(weight(job) for job in page) <= 2.5 * one for page in pages)


async def test_a_job_larger_than_the_bound_still_comes_alone_on_its_page(status):
    t0 = utcnow()
    for i in range(3):
        await status.job(f"job_{i}", at=t0 + timedelta(seconds=i))
    pages = await walk(status, 10)
    assert [[job["job_id"] for job in page] for page in pages] == [["job_2"], ["job_1"], ["job_0"]]


@pytest.fixture
async def strict(tmp_path) -> AsyncIterator[httpx.AsyncClient]:
    """The status app with buckets of 3 reads and 2 updates, refilled slowly."""
    redis = MemoryRedis()
    for org, token in TOKENS.items():
        seed_token(redis, token, org, org)
    settings = StatusSettings(
        job_read_burst=3, job_reads_per_second=0.01, stop_update_burst=2, stop_updates_per_second=0.01
    )
    broker = make_broker(settings, SERVICE)
    app = create_app(settings, redis=redis, broker=broker, engine=make_engine(f"sqlite:///{tmp_path / 's.db'}"))
    transport = httpx.ASGITransport(app=app)
    async with TestKafkaBroker(broker), httpx.AsyncClient(transport=transport, base_url="http://status") as http:
        yield http


def auth(org: str = ORG) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[org]}"}


async def test_reads_past_the_burst_are_429_with_retry_after_and_updates_have_their_own_bucket(strict):
    reads = [await strict.get(JOBS, headers=auth()) for _ in range(4)]
    assert [r.status_code for r in reads] == [200, 200, 200, 429]
    assert [r.headers["RateLimit-Remaining"] for r in reads] == ["2", "1", "0", "0"]
    limited = reads[-1]
    assert limited.headers["content-type"] == "application/problem+json"
    assert limited.json()["code"] == "rate_limited" and "job reads" in limited.json()["detail"]
    assert int(limited.headers["Retry-After"]) >= 1
    assert (await strict.get(f"{JOBS}/nope", headers=auth())).status_code == 429  # one job is a read too
    url = f"{JOBS}/nope/stops/S1/status"
    updates = [await strict.post(url, headers=auth(), json={"status": "completed"}) for _ in range(3)]
    assert [u.status_code for u in updates] == [404, 404, 429]
    assert "stop updates" in updates[-1].json()["detail"]
    assert (await strict.get(JOBS, headers=auth("org_2"))).status_code == 200  # another integration
