"""`routemate optimize` builds its answer in memory (routemate_cli/projection.py) instead of in a
throwaway SQLite read model: for the same events, that answer must equal what the status service's
own projection and jobs query make of them, key for key and in the same order, for every kind of
job the command can meet."""

import json
import random
from typing import Any

import pytest

from routemate_cli import optimize
from routemate_cli.projection import JobModel
from services.status.adapters.projection import Projection
from services.status.adapters.queries import JobQueries
from services.status.adapters.schema import create_tables
from services.status.views import job_view
from shared.db import make_engine
from shared.testing.builders import EXAMPLE, at

DEPOT = {"lat": -27.4698, "lng": 153.0251}


def scattered(n: int, seed: int, **stop: Any) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {"external_stop_id": f"S{i}", "lat": -27.47 + rng.uniform(-0.1, 0.1), "lng": 153.02 + rng.uniform(-0.1, 0.1)}
        | stop
        for i in range(n)
    ]


JOBS: dict[str, dict[str, Any]] = {
    "example: addresses placed offline, exact": EXAMPLE,
    "20 stops with coordinates, local search": {"external_job_id": "P-20", "title": "t", "stops": scattered(20, 1)},
    "closed tour from a depot": {
        "external_job_id": "P-40",
        "title": "t",
        "driver_email": "Ann@Example.com",
        "return_to_depot": True,
        "depot": DEPOT,
        "stops": scattered(40, 2),
    },
    "a window that cannot be met: unrouted, warned": {
        "external_job_id": "P-TW",
        "title": "t",
        "start_time": at(0),
        "depot": DEPOT,
        "stops": [
            {"external_stop_id": "EARLY", "lat": -27.3, "lng": 153.1, "time_window": {"start": at(-2), "end": at(-1)}},
            {"external_stop_id": "A", "lat": -27.48, "lng": 153.03, "label": "front door", "parcel_count": 3},
            {"external_stop_id": "B", "lat": -27.50, "lng": 153.05, "service_minutes": 4},
        ],
    },
    "an address nobody can place beside placed ones": {
        "external_job_id": "P-GEO",
        "title": "t",
        "stops": [
            {"external_stop_id": "NOWHERE", "address": "Nowhere Street, Atlantis 99999"},
            *scattered(3, 3),
        ],
    },
    "no stop placed: failed": {
        "external_job_id": "P-FAIL",
        "title": "t",
        "stops": [{"external_stop_id": "X", "address": "Nowhere Street, Atlantis 99999"}],
    },
    "a fleet of two": {
        "external_job_id": "P-FLEET",
        "title": "t",
        "depot": DEPOT,
        "return_to_depot": True,
        "start_time": at(0),
        "stops": scattered(12, 4, parcel_count=2),
        "vehicles": [
            {"driver_email": "a@example.com", "capacity": 14},
            {"driver_email": "b@example.com", "capacity": 14, "skills": ["fridge"]},
        ],
    },
}


def sql_view(events: list[Any]) -> dict[str, Any]:
    """What the status service answers for these events: its projection into SQLite, then its query."""
    engine = make_engine("sqlite://")
    try:
        Projection(engine, prepare=create_tables).apply_many(events)
        return job_view(*JobQueries(engine).job(events[0].org_id, job_id=events[0].job_id))
    finally:
        engine.dispose()


@pytest.mark.parametrize("body", JOBS.values(), ids=list(JOBS))
def test_the_in_memory_view_equals_the_status_projection(body):
    events, _ = optimize.job_events(json.loads(json.dumps(body)))
    model = JobModel()
    model.apply_many(events)
    mine, theirs = model.view(), sql_view(events)
    # status_counts is a tally; SQLite hands rows back in no promised order, so only its contents count
    assert json.loads(json.dumps(mine, default=str)) == json.loads(json.dumps(theirs, default=str))
    assert list(mine) == list(theirs)
    assert [list(s) for s in mine["stops"]] == [list(s) for s in theirs["stops"]]


def test_the_cases_reach_every_writer():
    """The cases above cover a failed job, unrouted stops, a fleet's routes and a geocode warning."""
    bodies = (JOBS["no stop placed: failed"], JOBS["a fleet of two"])
    kinds = {type(e).__name__ for body in bodies for e in optimize.job_events(body)[0]}
    assert kinds == {"ImportRequested", "StopsGeocoded", "JobFailed", "RouteOptimized"}
