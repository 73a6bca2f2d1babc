import random
from datetime import timedelta

import pytest

from services.status.projection import Projection
from services.status.queries import JobFilter, JobQueries
from services.status.views import job_view
from shared.db import make_engine
from shared.events import (
    DriverRegistered,
    ImportRequested,
    JobFailed,
    JobWarning,
    RouteOptimized,
    StopsGeocoded,
    StopStatusChanged,
    utcnow,
)
from shared.events.jobs import JobSpec, Location, RequestedStop, RouteStop, RouteTotals, SolverStats, UnroutedStop

T0 = utcnow()


def events(job_id="job_1", org="org_1", driver="dana@example.com"):
    stops = tuple(
        RequestedStop(stop_id=f"{job_id}.{i}", external_stop_id=f"S{i}", address=f"{i} Queen St") for i in range(1, 4)
    )
    spec = JobSpec(external_job_id=f"EXT-{job_id}", title="Run", driver_email=driver, stops=stops, payload_hash="h")
    common = dict(org_id=org, job_id=job_id)
    locs = tuple(
        Location(
            stop_id=s.stop_id,
            external_stop_id=s.external_stop_id,
            lat=-27.4 - i / 100,
            lng=153.0,
            precision="postcode",
            provider="gazetteer",
        )
        for i, s in enumerate(stops[:2])
    )
    locs += (Location(stop_id=stops[2].stop_id, external_stop_id="S3"),)
    route = tuple(
        RouteStop(
            stop_id=s.stop_id,
            external_stop_id=s.external_stop_id,
            sequence=seq,
            lat=-27.4,
            lng=153.0,
            leg_distance_km=1.0,
            leg_duration_minutes=2.0,
            eta_offset_minutes=seq * 5.0,
        )
        for seq, s in ((1, stops[1]), (2, stops[0]))
    )
    return [
        ImportRequested(**common, integration_id="c", job=spec, occurred_at=T0),
        StopsGeocoded(
            **common,
            job=spec,
            locations=locs,
            occurred_at=T0 + timedelta(seconds=1),
            warnings=(JobWarning(code="GEOCODE_FAILED", external_stop_id="S3", message="m"),),
        ),
        RouteOptimized(
            **common,
            external_job_id=spec.external_job_id,
            route=route,
            locations=locs,
            unrouted=(UnroutedStop(stop_id=stops[2].stop_id, external_stop_id="S3", reason="GEOCODE_FAILED"),),
            totals=RouteTotals(total_distance_km=2.0, total_duration_minutes=14.0),
            solver=SolverStats(solver="exact", matrix_provider="great_circle", solve_ms=1.0, stop_count=2),
            occurred_at=T0 + timedelta(seconds=2),
        ),
        StopStatusChanged(
            **common,
            stop_id=stops[1].stop_id,
            external_stop_id="S2",
            status="completed",
            status_at=T0 + timedelta(minutes=10),
            occurred_at=T0 + timedelta(minutes=10),
        ),
        StopStatusChanged(
            **common,
            stop_id=stops[0].stop_id,
            external_stop_id="S1",
            status="failed",
            reason="nobody home",
            status_at=T0 + timedelta(minutes=20),
            occurred_at=T0 + timedelta(minutes=20),
        ),
    ]


def fresh(database, name: str) -> tuple[Projection, JobQueries]:
    engine = make_engine(database(name))
    projection = Projection(engine)
    projection.apply(DriverRegistered(org_id="org_1", email="dana@example.com", name="Dana"))
    return projection, JobQueries(engine)


def view(queries: JobQueries, job_id="job_1", org="org_1"):
    found = queries.job(org, job_id=job_id)
    return job_view(*found) if found else None


def test_the_ordered_stream_ends_completed_with_stops_in_route_order(database):
    projection, queries = fresh(database, "ordered")
    statuses = []
    for e in events():
        projection.apply(e)
        statuses.append(view(queries)["status"])
    assert statuses == ["processing", "processing", "assigned", "in_progress", "completed"]
    v = view(queries)
    assert [s["external_stop_id"] for s in v["stops"]] == ["S2", "S1"]
    assert v["unrouted_stops"][0]["external_stop_id"] == "S3"
    assert v["status_counts"] == {"pending": 0, "completed": 1, "failed": 1, "skipped": 0, "unroutable": 1}
    assert v["driver"] == {"email": "dana@example.com", "name": "Dana"}


def in_order_view(database) -> dict:
    ordered, queries = fresh(database, "a")
    for e in events():
        ordered.apply(e)
    return view(queries)


def shuffled_twice(seed: int) -> list:
    stream = events() * 2
    random.Random(seed).shuffle(stream)
    return stream


@pytest.mark.parametrize("seed", range(4))
def test_batches_with_duplicates_inside_end_in_the_same_rows_as_one_by_one(database, seed):
    batched, queries = fresh(database, "b")
    stream, rng, settled = shuffled_twice(seed), random.Random(seed), []
    while stream:
        size = rng.randint(1, 6)
        settled += batched.apply_many(stream[:size])
        stream = stream[size:]
    assert view(queries) == in_order_view(database)
    assert settled.count("job_1") == 1  # the job settled once, in whichever batch completed it


def test_a_failing_batch_leaves_nothing_behind(database):
    projection, queries = fresh(database, "a")
    wrong_org = events(org="org_2")[1]  # the same job claimed by another organization
    with pytest.raises(ValueError):
        projection.apply_many([events()[0], wrong_org])
    assert queries.job("org_1", job_id="job_1") is None
    assert projection.apply_many([events()[0]]) == [None]  # applied for real only now


@pytest.mark.parametrize("seed", range(8))
def test_shuffled_and_duplicated_events_end_in_the_same_rows(database, seed):
    shuffled, queries = fresh(database, "b")
    for e in shuffled_twice(seed):
        shuffled.apply(e)
    assert view(queries) == in_order_view(database)


def test_status_never_moves_backwards(database):
    projection, queries = fresh(database, "late")
    stream = events()
    for e in stream:
        projection.apply(e)
    late_failure = JobFailed(org_id="org_1", job_id="job_1", stage="geocoder", code="X", message="late")
    projection.apply(late_failure)
    assert view(queries)["status"] == "completed"


def test_an_unknown_driver_leaves_the_job_unassigned_with_a_warning(database):
    projection, queries = fresh(database, "nodriver")
    for e in events(driver="ghost@example.com")[:3]:
        projection.apply(e)
    v = view(queries)
    assert v["status"] == "unassigned" and v["driver"] is None
    assert "DRIVER_NOT_FOUND" in [w["code"] for w in v["warnings"]]


def test_a_job_is_invisible_to_other_organizations(database):
    projection, queries = fresh(database, "tenants")
    for e in events():
        projection.apply(e)
    assert view(queries, org="org_2") is None


def test_pages_run_newest_first_without_gaps_or_repeats(database):
    projection, queries = fresh(database, "pages")
    for i in range(7):
        for e in events(job_id=f"job_{i}")[:1]:
            projection.apply(e.model_copy(update={"occurred_at": T0 + timedelta(seconds=i)}))
    seen, cursor = [], None
    while True:
        rows, cursor = queries.page("org_1", JobFilter(), 3, cursor)
        seen += [job.job_id for job, _ in rows]
        if cursor is None:
            break
    assert seen == [f"job_{i}" for i in reversed(range(7))]


def test_an_import_published_again_announces_the_settled_job_again(database):
    projection, _ = fresh(database, "again")
    stream = events()
    announced = [projection.apply(e) for e in stream[:3]]
    assert announced == [None, None, "job_1"]
    retry = stream[0].model_copy(update={"event_id": __import__("uuid").uuid4()})
    assert projection.apply(retry) == "job_1"
    assert projection.apply(retry) is None  # the very same event twice changes nothing


def test_a_driver_registered_later_takes_over_their_unassigned_jobs(database):
    projection, queries = fresh(database, "late_driver")
    for e in events(driver="late@example.com")[:3]:
        projection.apply(e)
    assert view(queries)["status"] == "unassigned"
    projection.apply(DriverRegistered(org_id="org_1", email="late@example.com", name="Lee"))
    v = view(queries)
    assert v["status"] == "assigned" and v["driver"] == {"email": "late@example.com", "name": "Lee"}
    assert "DRIVER_NOT_FOUND" not in [w["code"] for w in v["warnings"]]
