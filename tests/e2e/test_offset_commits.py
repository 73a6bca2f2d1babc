"""The geocoder and optimizer commit what they handled once a second, not once per job: a burst
costs a few offset commits per stage, and once the pipeline is quiet nothing is left uncommitted
(a restart would redo no work). The status projection takes a burst's events in batches of
several (routemate_consumer_batch_events), and commits them once a second too."""

import asyncio
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from services.optimizer.settings import OptimizerSettings
from shared.lag import LagMonitor
from shared.lanes import bulk_group
from shared.settings import PlatformSettings
from shared.testing.stack import service_url
from shared.testing.waiting import async_wait_until
from tests.conftest import Tenant

STAGES = {"geocoder": "routemate-geocoder", "optimizer": "routemate-optimizer"}
CONSUMERS_PER_LANE = {"geocoder": 1, "optimizer": OptimizerSettings().solver_in_hand}
JOBS = 30


async def sample(http: httpx.AsyncClient, service: str, name: str) -> float:
    text = (await http.get(f"{service_url(service)}/metrics")).text
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels.get("service") == service:
                return found.value
    raise AssertionError(f"{service} exposes no {name}")


async def commits(http: httpx.AsyncClient, service: str) -> float:
    return await sample(http, service, "routemate_offset_commits_total")


async def batches(http: httpx.AsyncClient) -> tuple[float, float]:
    """The status projection's batches so far, and the events they held."""
    return (
        await sample(http, "status", "routemate_consumer_batch_events_count"),
        await sample(http, "status", "routemate_consumer_batch_events_sum"),
    )


async def test_a_burst_costs_a_few_commits_per_stage_and_leaves_nothing_uncommitted(tenant: Tenant):
    async with httpx.AsyncClient(timeout=10) as http:
        before = {service: await commits(http, service) for service in STAGES}
        batches_before = await batches(http)
        status_before = await commits(http, "status")
        began = time.monotonic()
        answers = await asyncio.gather(*(tenant.import_job(None, Prefer="respond-async") for _ in range(JOBS)))
        assert all(a.status_code == 202 for a in answers), [a.text for a in answers if a.status_code != 202]
        pending = {a.json()["job_id"] for a in answers}

        async def all_routed() -> bool:
            for job_id in list(pending):
                view = await tenant.get_job(job_id)
                if view.status_code == 200 and view.json()["status"] == "assigned":
                    pending.discard(job_id)
            return not pending

        await async_wait_until(all_routed, 120, 0.2, f"the {JOBS} jobs routed")
        elapsed = time.monotonic() - began

        monitors = [LagMonitor(PlatformSettings(), g) for group in STAGES.values() for g in (group, bulk_group(group))]

        async def nothing_uncommitted() -> bool:
            lags = [sum((await monitor.measure()).values()) for monitor in monitors]
            return all(lag == 0 for lag in lags)

        try:  # the last messages of a quiet consumer are committed within its interval (1 s)
            await async_wait_until(nothing_uncommitted, 15, 0.2, "every handled message committed")
        finally:
            for monitor in monitors:
                await monitor.close()
        after = {service: await commits(http, service) for service in STAGES}
        window = time.monotonic() - began
        batches_after = await batches(http)
        status_sent = await commits(http, "status") - status_before
    # The projection took the burst's events (an import, a geocoding and a route per job at
    # least) in batches that held several each: fewer transactions and commits than events.
    handled, events = (later - earlier for later, earlier in zip(batches_after, batches_before, strict=True))
    assert events >= 3 * JOBS and handled < events, (handled, events)
    # ... and commits them once a second, not once a batch (its one consumer: at most window + 1)
    assert 1 <= status_sent <= window + 1 and status_sent < handled, (status_sent, handled, window)
    for service in STAGES:
        sent = after[service] - before[service]
        # A commit per message would be JOBS at least. Each of a stage's consumers (a lane's, and
        # the optimizer keeps SOLVER_IN_HAND per lane, each committing its own partitions) commits
        # at most once a second, plus once when its first message comes: so at most
        # consumers * (window + 1) over the window from the first import to the last commit.
        consumers = 2 * CONSUMERS_PER_LANE[service]
        assert 1 <= sent < JOBS and sent <= consumers * (window + 1), (service, sent, elapsed, window)
