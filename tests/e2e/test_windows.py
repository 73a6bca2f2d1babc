"""A single-driver job with tight time windows over the real stack: every stop is served inside its
window (the windows are built around a feasible day, so a route exists), and the same job gets the
same route again: the constrained path stops on effort, not on the clock."""

from datetime import datetime, timedelta, timezone

import numpy as np

from services.optimizer.adapters import great_circle
from services.optimizer.settings import OptimizerSettings
from tests.conftest import Tenant

BRISBANE = timezone(timedelta(hours=10))
SERVICE_MINUTES = 3
WIDTH = timedelta(minutes=20)


def tight_day(n: int, seed: int) -> tuple[dict, list[dict]]:
    """A depot and `n` stops around Brisbane; each stop's 20-minute window holds the time a
    nearest-neighbour day reaches it (the optimizer's default great-circle times)."""
    rng = np.random.default_rng(seed)
    depot = (-27.47, 153.02)
    points = [(depot[0] + rng.uniform(-0.08, 0.08), depot[1] + rng.uniform(-0.08, 0.08)) for _ in range(n)]
    matrix = great_circle(OptimizerSettings()).build([*points, depot])
    dur = matrix.duration_s
    here, clock, left, arrive = n, 0, set(range(n)), {}
    while left:
        nxt = min(left, key=lambda j: (dur[here, j], j))
        clock += int(dur[here, nxt])
        arrive[nxt] = clock
        clock += SERVICE_MINUTES * 60
        here = nxt
        left.remove(nxt)
    stops = []
    for i, (lat, lng) in enumerate(points):
        early = int(rng.integers(0, WIDTH.total_seconds()))
        stops.append(
            {
                "external_stop_id": f"TW-{i}",
                "lat": lat,
                "lng": lng,
                "service_minutes": SERVICE_MINUTES,
                "_open": arrive[i] - early,
            }
        )
    return {"lat": depot[0], "lng": depot[1]}, stops


async def test_tight_windows_are_all_met_and_the_same_job_gets_the_same_route(tenant: Tenant):
    start = (datetime.now(BRISBANE) + timedelta(days=1)).replace(hour=8, minute=0, second=0, microsecond=0)
    depot, stops = tight_day(14, seed=18)
    for stop in stops:
        opens = start + timedelta(seconds=stop.pop("_open"))
        stop["time_window"] = {"start": opens.isoformat(), "end": (opens + WIDTH).isoformat()}
    orders = []
    for _ in range(2):
        body = tenant.job(depot=depot, return_to_depot=True, start_time=start.isoformat(), stops=stops)
        answer = await tenant.import_job(body)
        assert answer.status_code == 201, answer.text
        job = answer.json()
        assert job["unrouted_stops"] == [] and len(job["stops"]) == len(stops)
        for stop in job["stops"]:
            window = stop["time_window"]
            eta = datetime.fromisoformat(stop["eta"])
            assert datetime.fromisoformat(window["start"]) <= eta <= datetime.fromisoformat(window["end"]), stop
        orders.append([s["external_stop_id"] for s in sorted(job["stops"], key=lambda s: s["sequence"])])
    assert orders[0] == orders[1]
