"""The read model of the one job `routemate optimize` just solved, kept in memory.

The command used to project its events into a throwaway SQLite file with the status service's
projection, which cost about half a second of importing SQLAlchemy and SQLModel for one job.
This module applies the same writers' rules to plain rows instead, for the only events the
command makes: ImportRequested (a first import), StopsGeocoded, then RouteOptimized or JobFailed.
Status, ETag version and timestamps follow services/status/lifecycle.py and the projection's
"a change of the public view counts one" rule; the rows go through services/status/views.py,
so the answer has the jobs endpoint's shape.

tests/cli/test_projection.py runs these rows and the status service's real projection over the
same events (single-driver, fleet, unrouted, failed) and wants the same view: a change of the
projection that this module does not follow fails there.
"""

from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from services.status.lifecycle import JobFacts, advanced, derived_status, driver_not_found
from shared.events import ImportRequested, JobFailed, JobWarning, RouteOptimized, StopsGeocoded
from shared.vocabulary import JobStatus, StopStatus, WarningCode, as_utc


@dataclass
class Job:
    """services.status.adapters.tables.JobRow's columns, as plain values."""

    job_id: str
    org_id: str
    created_at: datetime
    updated_at: datetime
    external_job_id: str | None = None
    title: str | None = None
    driver_email: str | None = None
    driver_name: str | None = None
    driver_assigned: bool | None = None
    status: str = JobStatus.PENDING
    imported: bool = False
    routed: bool = False
    accepted_at: datetime | None = None
    start_time: datetime | None = None
    optimization: dict[str, Any] | None = None
    warnings: list[dict[str, Any]] = field(default_factory=list)
    failure: dict[str, Any] | None = None
    version: int = 0
    spec_version: int = 1
    cancellation: dict[str, Any] | None = None
    depot: dict[str, Any] | None = None
    vehicles: list[dict[str, Any]] | None = None
    routes: list[dict[str, Any]] | None = None


@dataclass
class Stop:
    """services.status.adapters.tables.StopRow's columns, as plain values."""

    job_id: str
    stop_id: str
    external_stop_id: str
    position: int = 0
    address: str | None = None
    label: str | None = None
    parcel_count: int = 1
    service_minutes: float | None = None
    time_window: dict[str, Any] | None = None
    lat: float | None = None
    lng: float | None = None
    precision: str | None = None
    provider: str | None = None
    sequence: int | None = None
    leg_distance_km: float | None = None
    leg_duration_minutes: float | None = None
    eta: datetime | None = None
    status: str = StopStatus.PENDING
    status_at: datetime | None = None
    reason: str | None = None
    notes: str | None = None
    proof: dict[str, Any] | None = None
    vehicle: int | None = None
    driver_email: str | None = None
    route_sequence: int | None = None
    time_windows: list[dict[str, Any]] | None = None
    skills: list[str] | None = None
    priority: int | None = None


Stops = dict[str, Stop]  # by external_stop_id, in the order the rows were made
_UNSEEN = frozenset({"version", "updated_at"})  # what a change sets, not what makes one


class JobModel:
    """One job's rows, built from its events in order (first import only: no updates, no reports)."""

    def __init__(self) -> None:
        self.job: Job | None = None
        self.stops: Stops = {}

    def apply_many(self, events: list[Any]) -> None:
        for event in events:
            self.apply(event)

    def apply(self, event: Any) -> None:
        writer = _WRITERS[type(event)]
        if self.job is None:
            at = event.occurred_at
            self.job = Job(job_id=event.job_id, org_id=event.org_id, created_at=at, updated_at=at)
        job, stops = self.job, self.stops
        seen = _state(job, stops)
        writer(job, stops, event)
        if job.imported and job.routed and job.driver_assigned is None:
            _assign(job)
        facts = JobFacts(job.imported, job.routed, bool(job.failure), job.driver_assigned, bool(job.cancellation))
        job.status = advanced(job.status, derived_status(facts, (row.status for row in stops.values())))
        job.created_at = min(as_utc(job.created_at), event.occurred_at)
        if not job.version or _state(job, stops) != seen:
            job.updated_at = max(as_utc(job.updated_at), event.occurred_at)
            job.version += 1

    def view(self) -> dict[str, Any]:
        from services.status.views import job_view

        assert self.job is not None, "no event applied"
        return job_view(self.job, list(self.stops.values()))  # type: ignore[arg-type]  # the rows' duck type


def _state(job: Job, stops: Stops) -> tuple:
    """Everything of the public view a change may touch, to tell whether an event changed any.
    A shallow copy is enough: the writers set attributes to new values, never change one in place
    (as the projection, which reads SQLAlchemy's attribute history)."""
    values = {f.name: getattr(job, f.name) for f in fields(job) if f.name not in _UNSEEN}
    return values, {key: dict(vars(row)) for key, row in stops.items()}


def _stop(stops: Stops, job_id: str, stop_id: str, external_stop_id: str) -> Stop:
    if external_stop_id not in stops:
        stops[external_stop_id] = Stop(job_id=job_id, stop_id=stop_id, external_stop_id=external_stop_id)
    return stops[external_stop_id]


def _merge_warnings(job: Job, warnings: tuple[JobWarning, ...]) -> None:
    seen = {(w["code"], w.get("external_stop_id"), w["message"]) for w in job.warnings}
    fresh = [w.model_dump() for w in warnings if (w.code, w.external_stop_id, w.message) not in seen]
    if fresh:
        job.warnings = [*job.warnings, *fresh]


def _imported(job: Job, stops: Stops, e: ImportRequested) -> None:
    spec = e.job
    job.imported, job.accepted_at, job.spec_version = True, e.occurred_at, e.spec_version
    job.external_job_id, job.title, job.driver_email = spec.external_job_id, spec.title, spec.driver_email
    job.start_time = job.start_time or spec.start_time
    job.vehicles = (
        [v.model_dump(mode="json", exclude_none=True, exclude_defaults=True) for v in spec.vehicles]
        if spec.vehicles
        else None
    )
    for position, stop in enumerate(spec.stops):
        row = _stop(stops, job.job_id, stop.stop_id, stop.external_stop_id)
        row.position, row.address, row.label, row.parcel_count = position, stop.address, stop.label, stop.parcel_count
        row.service_minutes = stop.service_minutes
        row.time_window = stop.time_window.model_dump(mode="json") if stop.time_window else None
        row.time_windows = [w.model_dump(mode="json") for w in stop.time_windows] or None
        row.skills = list(stop.skills) or None
        row.priority = stop.priority or None
        if row.lat is None and stop.lat is not None:
            row.lat, row.lng, row.precision, row.provider = stop.lat, stop.lng, "provided", "client"
    _merge_warnings(job, e.warnings)


def _geocoded(job: Job, stops: Stops, e: StopsGeocoded) -> None:
    for loc in e.locations:
        if loc.external_stop_id in e.keep:
            continue
        row = _stop(stops, job.job_id, loc.stop_id, loc.external_stop_id)
        row.precision, row.provider = loc.precision, loc.provider
        if row.sequence is None:
            row.lat, row.lng = loc.lat, loc.lng
    if e.depot is not None and e.depot.lat is not None:
        job.depot = {"lat": e.depot.lat, "lng": e.depot.lng}
    _merge_warnings(job, e.warnings)


def _routed(job: Job, stops: Stops, e: RouteOptimized) -> None:
    job.routed, job.start_time = True, job.start_time or e.start_time
    job.external_job_id = job.external_job_id or e.external_job_id
    job.optimization = {
        **e.totals.model_dump(),
        "solver": e.solver.solver,
        "matrix_provider": e.solver.matrix_provider,
        "solve_ms": e.solver.solve_ms,
    }
    job.routes = (
        [
            {
                "vehicle": r.vehicle,
                "driver_email": r.driver_email,
                **r.totals.model_dump(),
                "start_time": r.start_time.isoformat(),
                "end_time": r.end_time.isoformat(),
                "parcels": r.parcels,
            }
            for r in e.routes
        ]
        or None
        if job.vehicles
        else None
    )
    for loc in e.locations:
        row = _stop(stops, job.job_id, loc.stop_id, loc.external_stop_id)
        row.precision, row.provider = loc.precision, loc.provider
        row.lat, row.lng = (row.lat, row.lng) if row.lat is not None else (loc.lat, loc.lng)
    start = e.start_time or e.occurred_at
    drivers = {r.vehicle: r.driver_email for r in e.routes} if job.vehicles else {}
    for leg in e.route:
        row = _stop(stops, job.job_id, leg.stop_id, leg.external_stop_id)
        row.sequence, row.lat, row.lng = leg.sequence, leg.lat, leg.lng
        row.leg_distance_km, row.leg_duration_minutes = leg.leg_distance_km, leg.leg_duration_minutes
        row.eta = start + timedelta(minutes=leg.eta_offset_minutes)
        if leg.vehicle in drivers:
            row.vehicle, row.route_sequence, row.driver_email = leg.vehicle, leg.route_sequence, drivers[leg.vehicle]
    for gone in e.unrouted:
        row = _stop(stops, job.job_id, gone.stop_id, gone.external_stop_id)
        row.status, row.reason = StopStatus.UNROUTABLE, gone.reason
        row.sequence = row.eta = row.leg_distance_km = row.leg_duration_minutes = None
        row.vehicle = row.driver_email = row.route_sequence = None
    _merge_warnings(job, e.warnings)


def _failed(job: Job, stops: Stops, e: JobFailed) -> None:
    job.failure = {"stage": e.stage, "code": e.code, "message": e.message}
    _merge_warnings(job, e.warnings)


def _assign(job: Job) -> None:
    """Offline there is no driver directory: no driver is known, as the projection finds it empty."""
    if job.routes:
        job.routes = [{**route, "driver_name": None, "driver_assigned": False} for route in job.routes]
        job.driver_assigned = False
        job.warnings = [w for w in job.warnings if w["code"] != WarningCode.DRIVER_NOT_FOUND]
        for route in job.routes:
            _merge_warnings(job, (driver_not_found(route["driver_email"]),))
        return
    job.driver_assigned, job.driver_name = False, None
    _merge_warnings(job, (driver_not_found(job.driver_email),))


_WRITERS = {ImportRequested: _imported, StopsGeocoded: _geocoded, RouteOptimized: _routed, JobFailed: _failed}
