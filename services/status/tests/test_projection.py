"""The projection on SQLite (offline) and PostgreSQL (e2e): any order, any duplicates, the same rows."""

import random
import uuid
from datetime import timedelta

import pytest

from services.status.adapters.projection import Projection
from services.status.adapters.queries import JobFilter, JobQueries
from services.status.views import job_view
from shared.db import make_engine
from shared.events import DriverRegistered, Event, JobFailed, JobWarning, utcnow
from shared.testing.builders import geocoded, import_requested, routed, stop, stop_changed
from shared.vocabulary import JobStatus, StopStatus, UnroutedReason, WarningCode

T0 = utcnow()


def events(job_id="job_1", org="org_1", driver="dana@example.com") -> list[Event]:
    """A job's whole life: imported; geocoded but S2; routed S1 then S0; S1 completed, S0 failed."""
    ids = {"org_id": org, "job_id": job_id}
    external = f"EXT-{job_id}"
    stops = (stop(i, f"{i} Queen St", job_id=job_id) for i in range(3))
    imported = import_requested(*stops, **ids, external_job_id=external, title="Run", driver_email=driver)
    unplaced = JobWarning(code=WarningCode.GEOCODE_FAILED, external_stop_id="S2", message="m")
    geo = geocoded([(-27.40, 153.0), (-27.41, 153.0), None], **ids).model_copy(update={"warnings": (unplaced,)})
    route = routed(geo, [1, 0], {2: UnroutedReason.GEOCODE_FAILED}, external_job_id=external)
    pipeline = (imported, geo, route)
    return [
        *(e.model_copy(update={"occurred_at": T0 + timedelta(seconds=n)}) for n, e in enumerate(pipeline)),
        stop_changed(1, StopStatus.COMPLETED, T0 + timedelta(minutes=10), **ids),
        stop_changed(0, StopStatus.FAILED, T0 + timedelta(minutes=20), reason="nobody home", **ids),
    ]


def fresh(database, name: str) -> tuple[Projection, JobQueries]:
    engine = make_engine(database(name))
    projection = Projection(engine)
    projection.apply(DriverRegistered(org_id="org_1", email="dana@example.com", name="Dana"))
    return projection, JobQueries(engine)


def view(queries: JobQueries, job_id="job_1", org="org_1", *, with_version: bool = False):
    """The job's public view; without its version unless asked (it counts the changes seen on the
    way, which depends on the arrival order; the final state does not)."""
    found = queries.job(org, job_id=job_id)
    if not found:
        return None
    shown = job_view(*found)
    return shown if with_version else {k: v for k, v in shown.items() if k != "version"}


def test_the_ordered_stream_ends_completed_with_stops_in_route_order(database):
    projection, queries = fresh(database, "ordered")
    statuses = []
    for e in events():
        projection.apply(e)
        statuses.append(view(queries)["status"])
    assert statuses == [
        JobStatus.PROCESSING,
        JobStatus.PROCESSING,
        JobStatus.ASSIGNED,
        JobStatus.IN_PROGRESS,
        JobStatus.COMPLETED,
    ]
    v = view(queries)
    assert [s["external_stop_id"] for s in v["stops"]] == ["S1", "S0"]
    assert v["unrouted_stops"][0]["external_stop_id"] == "S2"
    assert v["status_counts"] == {"completed": 1, "failed": 1, "unroutable": 1}  # only the statuses present
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
    assert WarningCode.DRIVER_NOT_FOUND in [w["code"] for w in v["warnings"]]


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
    retry = stream[0].model_copy(update={"event_id": uuid.uuid4()})
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
    assert WarningCode.DRIVER_NOT_FOUND not in [w["code"] for w in v["warnings"]]


def test_warnings_read_the_same_whatever_order_they_arrived_in(database):
    a = JobWarning(code="GEOCODE_FAILED", external_stop_id="S3", message="m")
    b = JobWarning(code="UNKNOWN_FIELD", message="/x is not part of the import contract")
    c = JobWarning(code="GEOCODE_APPROXIMATE", external_stop_id="S1", message="postcode centroid")
    views = []
    for name, order in (("forward", (a, b, c)), ("backward", (c, b, a))):
        projection, queries = fresh(database, name)
        first, *rest = events()
        projection.apply(first.model_copy(update={"warnings": order}))
        views.append(view(queries)["warnings"])
    assert views[0] == views[1]
    assert [w["code"] for w in views[0]] == ["UNKNOWN_FIELD", "GEOCODE_APPROXIMATE", "GEOCODE_FAILED"]
