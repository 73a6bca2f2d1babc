"""Versions, updates by re-import, re-plans and cancellation in the projection (SQLite offline)."""

from datetime import timedelta

from services.status.adapters.projection import Projection
from services.status.adapters.queries import JobQueries
from services.status.views import job_head, job_view
from shared.db import make_engine
from shared.events import DriverRegistered, JobCancelled, JobFailed, StopsGeocoded, utcnow
from shared.events.jobs import Location
from shared.testing.builders import geocoded, import_requested, routed, stop, stop_changed
from shared.vocabulary import FailureCode, JobStatus, StopStatus, WarningCode

T0 = utcnow() - timedelta(hours=1)
IDS = {"org_id": "org_1", "job_id": "job_1"}


def started(tmp_path) -> tuple[Projection, JobQueries]:
    """Job job_1: three stops routed S0, S1, S2; S0 completed."""
    engine = make_engine(f"sqlite:///{tmp_path / 'versions.db'}")
    projection, queries = Projection(engine), JobQueries(engine)
    projection.apply(DriverRegistered(org_id="org_1", email="dana@example.com", name="Dana"))
    stops = [stop(i, f"{i} Queen St", job_id="job_1") for i in range(3)]
    imported = import_requested(*stops, **IDS, external_job_id="EXT", driver_email="dana@example.com")
    geo = geocoded([(-27.40, 153.0), (-27.41, 153.0), (-27.42, 153.0)], **IDS)
    for n, event in enumerate((imported, geo, routed(geo, [0, 1, 2], external_job_id="EXT"))):
        projection.apply(event.model_copy(update={"occurred_at": T0 + timedelta(seconds=n)}))
    projection.apply(stop_changed(0, StopStatus.COMPLETED, T0 + timedelta(minutes=5), **IDS))
    return projection, queries


def view(queries: JobQueries) -> dict:
    return job_view(*queries.job("org_1", job_id="job_1"))


def update(base_version: int, spec_version: int = 2, keep=("S0",)):
    """The next spec: S1's address changed, S2 dropped, S3 added; S0 unchanged."""
    stops = [
        stop(1, "0 Queen St", job_id="job_1.2"),  # stop ids of the new spec (ingest: job_1.2.n)
        stop(2, "1 Ann St", job_id="job_1.2").model_copy(update={"external_stop_id": "S1"}),
        stop(3, "3 Eagle St", job_id="job_1.2"),
    ]
    stops[0] = stops[0].model_copy(update={"external_stop_id": "S0"})
    event = import_requested(*stops, **IDS, external_job_id="EXT", driver_email="dana@example.com")
    return event.model_copy(update={"spec_version": spec_version, "base_version": base_version, "keep": keep})


def test_every_change_counts_one_version_and_a_redelivery_none(tmp_path):
    projection, queries = started(tmp_path)
    # imported 1, geocoded 2, routed 3-4 (job.routed, job.assigned), S0 completed 5-6 (its stop
    # change, job.in_progress): each announced change takes a version of its own
    assert view(queries)["version"] == 6
    again = stop_changed(0, StopStatus.COMPLETED, T0 + timedelta(minutes=5), **IDS)
    projection.apply(again.model_copy(update={"event_id": projection_event_id(queries)}))
    assert view(queries)["version"] == 6
    projection.apply(stop_changed(1, StopStatus.SKIPPED, T0 + timedelta(minutes=9), **IDS))
    assert view(queries)["version"] == 7 and view(queries)["status_counts"] == {
        "completed": 1,
        "skipped": 1,
        "pending": 1,
    }


def projection_event_id(queries: JobQueries):
    """An event id the projection has applied already (the S0 report): a redelivery of it."""
    from sqlmodel import Session, select

    from services.status.adapters.tables import AppliedEventRow

    with Session(queries.engine) as s:
        return s.exec(select(AppliedEventRow.event_id).order_by(AppliedEventRow.applied_at.desc())).first()


def test_an_update_onto_the_current_version_replaces_the_spec_and_keeps_finished_stops(tmp_path):
    projection, queries = started(tmp_path)
    assert projection.apply_batch([update(base_version=6)]).settled[0] is None  # its route answers it
    v = view(queries)
    assert (v["spec_version"], v["version"], v["status"]) == (2, 7, JobStatus.IN_PROGRESS)
    by_id = {s["external_stop_id"]: s for s in v["stops"]}
    assert set(by_id) == {"S0", "S1", "S3"}  # S2 dropped
    assert by_id["S0"]["status"] == "completed" and by_id["S0"]["sequence"] == 1
    assert by_id["S1"]["address"] == "1 Ann St" and by_id["S1"]["lat"] is None  # to be geocoded again
    spec = update(base_version=6).job
    places = zip(spec.stops, ((-27.40, 153.0), (-27.45, 153.0), (-27.43, 153.0)), strict=True)
    locations = tuple(
        Location(stop_id=s.stop_id, external_stop_id=s.external_stop_id, lat=lat, lng=lng) for s, (lat, lng) in places
    )
    geo = StopsGeocoded(**IDS, job=spec, locations=locations, spec_version=2, keep=("S0",))
    projection.apply(geo)
    route = routed(geo, [2, 1], spec_version=2, remaining_only=True, start_time=T0 + timedelta(minutes=30))
    batch = projection.apply_batch([route])
    assert batch.settled[0].job_id == "job_1" and batch.changed == {"job_1"}  # the waiting import answers now
    v = view(queries)
    assert [(s["external_stop_id"], s["sequence"], s["status"]) for s in v["stops"]] == [
        ("S0", 1, "completed"),
        ("S3", 2, "pending"),
        ("S1", 3, "pending"),
    ]
    assert v["stops"][1]["eta"].startswith((T0 + timedelta(minutes=35)).isoformat()[:16])


def test_an_update_from_a_stale_version_is_refused_with_a_warning_and_announced(tmp_path):
    projection, queries = started(tmp_path)
    before = view(queries)
    batch = projection.apply_batch([update(base_version=5)])
    assert batch.settled[0].rejected_spec_version == 2
    after = view(queries)
    assert after["spec_version"] == 1 and after["stops"] == before["stops"]
    assert after["version"] == 7 and after["warnings"][-1]["code"] == WarningCode.UPDATE_CONFLICT


def test_the_geocoding_and_route_of_a_refused_update_leave_the_job_as_it_was(tmp_path):
    """The geocoder and optimizer never hear of the refusal: they geocode and route the refused
    spec all the same, and its results must not move the job's stops (nor add the refused spec's)."""
    projection, queries = started(tmp_path)
    refused = update(base_version=5)
    assert projection.apply_batch([refused]).settled[0].rejected_spec_version == 2
    before = view(queries)
    places = zip(refused.job.stops, ((-27.50, 153.1), (-27.51, 153.1), (-27.52, 153.1)), strict=True)
    locations = tuple(
        Location(stop_id=s.stop_id, external_stop_id=s.external_stop_id, lat=lat, lng=lng) for s, (lat, lng) in places
    )
    geo = StopsGeocoded(**IDS, job=refused.job, locations=locations, spec_version=2, keep=("S0",))
    projection.apply(geo)
    projection.apply(routed(geo, [2, 1], spec_version=2, remaining_only=True, start_time=T0 + timedelta(minutes=30)))
    after = view(queries)
    assert after["stops"] == before["stops"] and after["version"] == before["version"]
    assert {s["external_stop_id"] for s in after["stops"]} == {"S0", "S1", "S2"}  # no S3 of the refused spec
    accepted = update(base_version=before["version"], spec_version=3)  # a later update onto the job's version
    projection.apply(accepted)
    assert view(queries)["spec_version"] == 3


def test_a_refused_updates_failure_leaves_the_job_as_it_was_and_a_failure_of_no_spec_still_counts(tmp_path):
    projection, queries = started(tmp_path)
    assert projection.apply_batch([update(base_version=5)]).settled[0].rejected_spec_version == 2
    before = view(queries)
    failure = {"stage": "geocoder", "code": FailureCode.GEOCODE_FAILED_ALL, "message": "none placed"}
    projection.apply(JobFailed(**IDS, **failure, spec_version=2))  # the refused spec's geocoding failed
    assert view(queries) == before
    projection.apply(JobFailed(**IDS, **failure))  # written before failures named their spec
    assert view(queries)["failure"]["code"] == FailureCode.GEOCODE_FAILED_ALL


def test_another_specs_route_or_failure_does_not_answer_an_update_waiting_for_its_own(tmp_path):
    """Spec 2 refused, spec 3 applied and waiting for its route: spec 2's route or failure is
    ignored, and must not settle spec 3 (its client would be told 200 with no route); spec 3's does."""
    projection, queries = started(tmp_path)
    projection.apply_batch([update(base_version=5)])  # spec 2, refused
    accepted = update(base_version=view(queries)["version"], spec_version=3)
    assert projection.apply_batch([accepted]).settled == [None]
    failure = {"stage": "geocoder", "code": FailureCode.GEOCODE_FAILED_ALL, "message": "none placed"}
    assert projection.apply_batch([JobFailed(**IDS, **failure, spec_version=2)]).settled == [None]
    geo = geocoded([(-27.40, 153.0), (-27.45, 153.0), (-27.43, 153.0)], **IDS).model_copy(update={"spec_version": 2})
    assert projection.apply_batch([routed(geo, [1, 2], spec_version=2, remaining_only=True)]).settled == [None]
    assert view(queries)["failure"] is None
    own = routed(geo, [1, 2], spec_version=3, remaining_only=True)
    assert projection.apply_batch([own]).settled[0].job_id == "job_1"


def test_a_failure_of_no_spec_counts_on_an_updated_job_and_one_of_an_update_not_seen_yet_too(tmp_path):
    """A failure written before failures named their spec is the job's; one of a spec newer than
    the job's (its update still on its way, on another topic) is applied as it always was."""
    projection, queries = started(tmp_path)
    projection.apply(update(base_version=6))  # spec 2, applied
    failure = {"stage": "geocoder", "code": FailureCode.GEOCODE_FAILED_ALL, "message": "none placed"}
    projection.apply(JobFailed(**IDS, **failure))
    assert view(queries)["failure"]["code"] == FailureCode.GEOCODE_FAILED_ALL
    (tmp_path / "newer").mkdir()
    other, other_queries = started(tmp_path / "newer")
    other.apply(JobFailed(**IDS, **failure, spec_version=3))
    assert view(other_queries)["failure"]["code"] == FailureCode.GEOCODE_FAILED_ALL


def test_an_older_spec_arriving_late_is_ignored(tmp_path):
    projection, queries = started(tmp_path)
    projection.apply(update(base_version=6, spec_version=3))
    projection.apply(update(base_version=7, spec_version=2))
    assert view(queries)["spec_version"] == 3 and view(queries)["version"] == 7


def test_a_cancelled_job_keeps_its_finished_stops_and_ignores_later_routes_and_reports(tmp_path):
    projection, queries = started(tmp_path)
    assert projection.apply_batch([JobCancelled(**IDS, reason="customer called")]).settled == [None]  # none waits
    v = view(queries)
    assert v["status"] == JobStatus.CANCELLED and v["cancellation"]["reason"] == "customer called"
    assert [s["status"] for s in v["stops"]] == ["completed", "cancelled", "cancelled"]
    geo = geocoded([(-27.40, 153.0), (-27.41, 153.0), (-27.42, 153.0)], **IDS)
    projection.apply(routed(geo, [2, 1, 0], remaining_only=True))
    projection.apply(stop_changed(1, StopStatus.COMPLETED, utcnow(), **IDS))
    assert view(queries)["stops"] == v["stops"] and view(queries)["version"] == v["version"]


def test_the_head_lists_finished_stops_last_finished_last(tmp_path):
    projection, queries = started(tmp_path)
    projection.apply(stop_changed(2, StopStatus.FAILED, T0 + timedelta(minutes=9), **IDS))
    [(job, stops)] = queries.heads(["job_1"])
    head = job_head(job, stops)
    assert (head.org_id, head.version, head.status, head.finished) == ("org_1", 7, "in_progress", ("S0", "S2"))
