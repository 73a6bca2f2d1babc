"""Scaling the optimizer stage: a second process in the consumer group finishes a CPU-bound burst sooner."""

import asyncio
import os
import random
import subprocess
import sys
import time

import httpx

from tests.conftest import ROOT, Tenant

# A third of a second of solving each: a CPU-bound burst. Jobs land on partitions by the hash of
# their id, so each process gets its partitions' share: many jobs keep that share near half.
JOBS, STOPS = 36, 150


def big_job(tenant: Tenant, seed: int, stops: int = STOPS) -> dict:
    rng = random.Random(seed)
    body = tenant.job()
    body["stops"] = [{"external_stop_id": f"S{i}", "address": f"{i} Somewhere St", "parcel_count": 1,
                      "lat": -27.47 + rng.uniform(-0.13, 0.13), "lng": 153.02 + rng.uniform(-0.15, 0.15)}
                     for i in range(stops)]
    return body


async def burst_seconds(tenant: Tenant, jobs: int, seed: int) -> float:
    started = time.perf_counter()
    answers = await asyncio.gather(*(tenant.import_job(big_job(tenant, seed + i), Prefer="respond-async")
                                     for i in range(jobs)))
    ids = [a.json()["job_id"] for a in answers]
    assert all(a.status_code == 202 for a in answers)
    pending = set(ids)
    while pending and time.perf_counter() - started < 120:
        for job_id in list(pending):
            got = await tenant.get_job(job_id)
            if got.status_code == 200 and got.json()["status"] == "assigned":
                pending.discard(job_id)
        await asyncio.sleep(0.2)
    assert not pending, f"{len(pending)} jobs never got their route"
    return time.perf_counter() - started


async def test_two_optimizer_processes_finish_a_burst_faster_than_one(tenant: Tenant):
    one = await burst_seconds(tenant, JOBS, 1000)
    env = {**os.environ, "OPTIMIZER_PORT": "18085"}
    log = open(ROOT / "var/log/optimizer-2.log", "ab")
    second = subprocess.Popen([sys.executable, "-m", "services.optimizer"], cwd=ROOT, env=env,
                              stdout=log, stderr=log)
    try:
        for _ in range(100):
            try:
                if httpx.get("http://127.0.0.1:18085/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
        await asyncio.sleep(4)  # the group rebalances partitions over both processes
        two = await burst_seconds(tenant, JOBS, 2000)
    finally:
        second.terminate()
        second.wait(15)
        log.close()
    print(f"{JOBS} jobs of {STOPS} stops: one optimizer {one:.1f} s, two {two:.1f} s, speed-up {one / two:.2f}")
    assert two < one * 0.85
