"""The optimizer over the real stack: a long solve leaves the service responsive."""

import asyncio
import random
import time

import httpx

from shared.testing.stack import service_url
from tests.conftest import Tenant


async def test_metrics_and_health_answer_while_a_500_stop_job_is_solved(tenant: Tenant):
    rng = random.Random(9)
    body = tenant.job()
    body["stops"] = [
        {"external_stop_id": f"S{i}", "lat": -27.47 + rng.uniform(-0.2, 0.2), "lng": 153.02 + rng.uniform(-0.2, 0.2)}
        for i in range(500)
    ]
    answer = await tenant.import_job(body, Prefer="respond-async")
    assert answer.status_code == 202, answer.text
    job_id, slowest, polls, routed = answer.json()["job_id"], 0.0, 0, None
    async with httpx.AsyncClient(base_url=service_url("optimizer"), timeout=5) as optimizer:
        deadline = time.monotonic() + 60
        while routed is None and time.monotonic() < deadline:
            for path in ("/metrics", "/healthz"):
                started = time.perf_counter()
                assert (await optimizer.get(path)).status_code == 200
                slowest, polls = max(slowest, time.perf_counter() - started), polls + 1
            got = await tenant.get_job(job_id)
            if got.status_code == 200 and got.json()["status"] == "assigned":
                routed = got.json()
            await asyncio.sleep(0.05)
    assert routed is not None, "the 500-stop job never got its route"
    assert len(routed["stops"]) == 500 and routed["optimization"]["solver"] == "local_search"
    assert polls >= 10  # the solve took long enough to be polled through
    assert slowest < 0.5, f"the optimizer took {slowest:.2f} s to answer while solving"
