"""How each job event changes a job's rows (the projection calls them; they decide no status).

They change the batch's working copies of the rows (services.status.adapters.state) attribute
by attribute; the projection writes what they changed. Stop rows are matched by external_stop_id
within their job: an update by re-import gives new stops new stop_ids, while a stop the job
already had keeps its row, its status and its proof.
"""

from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol

from services.status.adapters.state import JobState, Stops, StopState
from shared.events import ImportRequested, JobCancelled, JobFailed, JobWarning, RouteOptimized, StopsGeocoded
from shared.events.stops import StopStatusChanged
from shared.vocabulary import FINISHED_STOP, JobStatus, StopStatus, WarningCode, as_utc


class Rows(Protocol):
    """What a writer may ask of the batch besides changing attributes: drop a stop row."""

    def delete(self, row: StopState) -> None: ...


# What a writer tells the projection about an import (anything else returns None).
STALE, UPDATED, REJECTED = "stale", "updated", "rejected"
IGNORED = "ignored"  # a stage's event that is not the job's (_not_the_jobs): it settles nothing


def stop_row(stops: Stops, job_id: str, stop_id: str, external_stop_id: str) -> StopState:
    if external_stop_id not in stops:
        stops[external_stop_id] = StopState(job_id=job_id, stop_id=stop_id, external_stop_id=external_stop_id)
    return stops[external_stop_id]


def merge_warnings(job: JobState, warnings: tuple[JobWarning, ...]) -> None:
    seen = {(w["code"], w.get("external_stop_id"), w["message"]) for w in job.warnings}
    fresh = [w.model_dump() for w in warnings if (w.code, w.external_stop_id, w.message) not in seen]
    if fresh:
        job.warnings = [*job.warnings, *fresh]


def imported(s: Rows, job: JobState, stops: Stops, e: ImportRequested) -> str | None:
    if job.imported and e.spec_version <= job.spec_version:
        return STALE  # the same spec published again, or an older one arriving late
    if job.imported:
        return _update(s, job, stops, e)
    spec = e.job
    job.imported, job.accepted_at, job.spec_version = True, e.occurred_at, e.spec_version
    job.external_job_id, job.title, job.driver_email = spec.external_job_id, spec.title, spec.driver_email
    job.start_time = job.start_time or spec.start_time
    job.vehicles = _vehicles(spec)
    for position, stop in enumerate(spec.stops):
        row = stop_row(stops, job.job_id, stop.stop_id, stop.external_stop_id)
        _describe(row, position, stop)
        if row.lat is None and stop.lat is not None:
            row.lat, row.lng, row.precision, row.provider = stop.lat, stop.lng, "provided", "client"
    merge_warnings(job, e.warnings)
    return None


def _vehicles(spec) -> list[dict] | None:
    """The fleet as imported (public field names; places as given)."""
    if not spec.vehicles:
        return None
    return [v.model_dump(mode="json", exclude_none=True, exclude_defaults=True) for v in spec.vehicles]


def _describe(row: StopState, position: int, stop) -> None:
    row.position, row.address, row.label, row.parcel_count = position, stop.address, stop.label, stop.parcel_count
    row.service_minutes = stop.service_minutes
    row.time_window = stop.time_window.model_dump(mode="json") if stop.time_window else None
    row.time_windows = [w.model_dump(mode="json") for w in stop.time_windows] or None
    row.skills = list(stop.skills) or None
    row.priority = stop.priority or None


def _off_route(row: StopState) -> None:
    row.sequence = row.eta = row.leg_distance_km = row.leg_duration_minutes = None
    row.vehicle = row.driver_email = row.route_sequence = None


def _update(s: Rows, job: JobState, stops: Stops, e: ImportRequested) -> str:
    """The next spec of a job (If-Match): applied only onto the version the client saw."""
    if job.cancellation or job.status == JobStatus.COMPLETED or e.base_version != job.version:
        message = (
            f"The update to spec {e.spec_version} was made against version {e.base_version}, but the job was "
            f"at version {job.version} ({job.status}); it was not applied."
        )
        merge_warnings(job, (JobWarning(code=WarningCode.UPDATE_CONFLICT, message=message),))
        job.refused_specs = sorted({*(job.refused_specs or ()), e.spec_version})
        return REJECTED
    spec = e.job
    if spec.driver_email != job.driver_email:
        job.driver_assigned, job.driver_name = None, None  # assigned again once the new route is in
    job.spec_version, job.title, job.driver_email = e.spec_version, spec.title, spec.driver_email
    job.start_time = spec.start_time or job.start_time
    job.vehicles, job.routes = _vehicles(spec), None
    job.routed, job.failure = False, None  # the new route settles the update
    job.warnings = [w.model_dump() for w in e.warnings]  # the new spec's stages warn afresh
    wanted = {stop.external_stop_id for stop in spec.stops}
    for external, row in list(stops.items()):
        if external not in wanted and row.status not in FINISHED_STOP:
            s.delete(row)  # a stop the new spec drops (a finished one stays: it happened)
            del stops[external]
    for position, stop in enumerate(spec.stops):
        row = stop_row(stops, job.job_id, stop.stop_id, stop.external_stop_id)
        if row.status in FINISHED_STOP:
            row.position = position
            continue
        moved = row.address != stop.address or (stop.lat is not None and (row.lat, row.lng) != (stop.lat, stop.lng))
        _describe(row, position, stop)
        _off_route(row)
        row.status, row.reason = StopStatus.PENDING, None
        if moved:
            row.lat = row.lng = row.precision = row.provider = None
            if stop.lat is not None:
                row.lat, row.lng, row.precision, row.provider = stop.lat, stop.lng, "provided", "client"
    return UPDATED


def _not_the_jobs(job: JobState, spec_version: int) -> bool:
    """Whether a stage's event is of a spec that is not the job's: one an update replaced, or an
    update the projection refused (the geocoder and optimizer work on it all the same). One newer
    than the job's is its update's, come before it (another topic): still applied, so if that
    update is then refused its early results stay, and its changing the version can make the
    update itself refused (rare: status reading jobs.geocoded or jobs.optimized ahead of
    jobs.requested); holding such events until their update arrives is the fix, not made yet."""
    return spec_version < job.spec_version or spec_version in (job.refused_specs or ())


def geocoded(s: Rows, job: JobState, stops: Stops, e: StopsGeocoded) -> str | None:
    if _not_the_jobs(job, e.spec_version) or job.cancellation:
        return IGNORED
    for loc in e.locations:
        if loc.external_stop_id in e.keep:
            continue  # finished before this spec: where it was placed then stays
        row = stop_row(stops, job.job_id, loc.stop_id, loc.external_stop_id)
        row.precision, row.provider = loc.precision, loc.provider
        if row.sequence is None:  # the route's coordinates win, whichever arrived first
            row.lat, row.lng = loc.lat, loc.lng
    if e.depot is not None and e.depot.lat is not None:
        job.depot = {"lat": e.depot.lat, "lng": e.depot.lng}
    merge_warnings(job, e.warnings)


def routed(s: Rows, job: JobState, stops: Stops, e: RouteOptimized) -> str | None:
    if job.cancellation or _not_the_jobs(job, e.spec_version):
        return IGNORED  # a route for a cancelled job, for a spec an update replaced, or for a refused one
    if job.routed and not e.remaining_only:
        return None
    job.routed, job.start_time = True, job.start_time or e.start_time
    job.external_job_id = job.external_job_id or e.external_job_id
    job.optimization = {
        **e.totals.model_dump(),
        "solver": e.solver.solver,
        "matrix_provider": e.solver.matrix_provider,
        "solve_ms": e.solver.solve_ms,
    }
    # A fleet job keeps its routes; a single-driver job planned as a fleet of one stays single-driver.
    job.routes = [_route(r) for r in e.routes] or None if job.vehicles else None
    for loc in e.locations:
        row = stop_row(stops, job.job_id, loc.stop_id, loc.external_stop_id)
        if not (e.remaining_only and row.status in FINISHED_STOP):
            row.precision, row.provider = loc.precision, loc.provider
            row.lat, row.lng = (row.lat, row.lng) if row.lat is not None else (loc.lat, loc.lng)
    offset = _finished_first(stops) if e.remaining_only else 0
    start = e.start_time or e.occurred_at
    drivers = {r.vehicle: r.driver_email for r in e.routes} if job.vehicles else {}
    for leg in e.route:
        row = stop_row(stops, job.job_id, leg.stop_id, leg.external_stop_id)
        if (e.remaining_only and row.status in FINISHED_STOP) or row.status == StopStatus.CANCELLED:
            continue  # a finished stop keeps its place; a cancelled one has none
        row.sequence, row.lat, row.lng = offset + leg.sequence, leg.lat, leg.lng
        row.leg_distance_km, row.leg_duration_minutes = leg.leg_distance_km, leg.leg_duration_minutes
        row.eta = start + timedelta(minutes=leg.eta_offset_minutes)
        if leg.vehicle in drivers:
            row.vehicle, row.route_sequence, row.driver_email = leg.vehicle, leg.route_sequence, drivers[leg.vehicle]
        if row.status == StopStatus.UNROUTABLE:
            row.status, row.reason = StopStatus.PENDING, None
    for gone in e.unrouted:
        row = stop_row(stops, job.job_id, gone.stop_id, gone.external_stop_id)
        if row.status not in FINISHED_STOP:
            row.status, row.reason = StopStatus.UNROUTABLE, gone.reason
            _off_route(row)
    merge_warnings(job, e.warnings)


def _finished_first(stops: Stops) -> int:
    """Finished stops keep the order they were visited in, first; the rest lose their old place."""
    finished = sorted(
        (row for row in stops.values() if row.status in FINISHED_STOP),
        key=lambda r: (r.sequence is None, r.sequence or 0, str(as_utc(r.status_at) or "")),
    )
    for n, row in enumerate(finished, start=1):
        row.sequence = n
    for row in stops.values():
        if row.status not in FINISHED_STOP:
            _off_route(row)
    return len(finished)


def _route(route) -> dict:
    """One vehicle's route summary as the read model keeps it."""
    return {
        "vehicle": route.vehicle,
        "driver_email": route.driver_email,
        **route.totals.model_dump(),
        "start_time": route.start_time.isoformat(),
        "end_time": route.end_time.isoformat(),
        "parcels": route.parcels,
    }


def failed(s: Rows, job: JobState, stops: Stops, e: JobFailed) -> str | None:
    if e.spec_version is not None and _not_the_jobs(job, e.spec_version):
        return IGNORED  # the failure of a spec an update replaced, or of a refused one
    job.failure = {"stage": e.stage, "code": e.code, "message": e.message}
    merge_warnings(job, e.warnings)


def stop_changed(s: Rows, job: JobState, stops: Stops, e: StopStatusChanged) -> None:
    row = stop_row(stops, job.job_id, e.stop_id, e.external_stop_id)
    if row.status == StopStatus.CANCELLED or (job.cancellation and row.status not in FINISHED_STOP):
        return  # the job was cancelled before this report was applied: the stop stays cancelled
    if row.status_at is not None and as_utc(row.status_at) > e.status_at:
        return  # a later report already won
    row.status, row.status_at, row.reason, row.notes = e.status, e.status_at, e.reason, e.notes
    row.proof = e.proof.model_dump(mode="json") if e.proof else None


def cancelled(s: Rows, job: JobState, stops: Stops, e: JobCancelled) -> None:
    if job.cancellation or job.status in (JobStatus.COMPLETED, JobStatus.FAILED):
        return  # cancelled already, or over before the cancellation was applied
    job.cancellation = {"reason": e.reason, "cancelled_at": e.occurred_at.isoformat().replace("+00:00", "Z")}
    for row in stops.values():
        if row.status == StopStatus.PENDING:  # finished stops happened; unroutable ones were never planned
            row.status, row.status_at, row.eta = StopStatus.CANCELLED, e.occurred_at, None


Writer = Callable[[Rows, JobState, Stops, Any], str | None]
WRITERS: dict[type, Writer] = {
    ImportRequested: imported,
    StopsGeocoded: geocoded,
    RouteOptimized: routed,
    JobFailed: failed,
    StopStatusChanged: stop_changed,
    JobCancelled: cancelled,
}
