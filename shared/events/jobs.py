"""Job events: requested, geocoded, optimized, failed, re-plan requested, cancelled; and the values they carry.

Version 2 of the events that carry personal fields (ImportRequested, StopsGeocoded, JobCancelled,
StopStatusChanged) seals those fields per job (shared/pii.py); a version 1 event's are plaintext,
which opening passes through as they are, so its upcaster only renumbers it.

Lifecycle fields are additive (schema_version unchanged): an event written before them decodes
with their defaults (`spec_version` 1, nothing kept), which is what it meant.
"""

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from shared.events.envelope import UPCASTERS, Event, Value, sealed_from_now_on

JOBS_REQUESTED = "routemate.jobs.requested"
JOBS_GEOCODED = "routemate.jobs.geocoded"
JOBS_OPTIMIZED = "routemate.jobs.optimized"
JOBS_FAILED = "routemate.jobs.failed"
# The bulk lane: an organization's jobs beyond its fair share of jobs in flight (ingest decides)
# travel these topics, which the geocoder and the optimizer take only while the normal lane is idle.
JOBS_REQUESTED_BULK = "routemate.jobs.requested.bulk"
JOBS_GEOCODED_BULK = "routemate.jobs.geocoded.bulk"
BULK_TOPICS = {JOBS_REQUESTED: JOBS_REQUESTED_BULK, JOBS_GEOCODED: JOBS_GEOCODED_BULK}

Lane = Literal["normal", "bulk"]

Precision = Literal["provided", "rooftop", "street", "postcode", "locality"]


class TimeWindow(Value):
    start: datetime
    end: datetime


class RequestedStop(Value):
    stop_id: str
    external_stop_id: str
    address: str | None = None
    label: str | None = None
    parcel_count: int = 1
    lat: float | None = None
    lng: float | None = None
    time_window: TimeWindow | None = None
    service_minutes: float | None = None
    notes: str | None = None
    phone: str | None = None
    email: str | None = None


class Depot(Value):
    address: str | None = None
    lat: float | None = None
    lng: float | None = None


class JobSpec(Value):
    """The validated import, as ingest accepted it."""

    external_job_id: str
    title: str
    driver_email: str | None = None
    stops: tuple[RequestedStop, ...]
    depot: Depot | None = None
    return_to_depot: bool = False
    start_time: datetime | None = None
    vehicle_capacity: int | None = None
    payload_hash: str


class JobWarning(Value):
    code: str
    message: str
    external_stop_id: str | None = None


Source = Literal["client", "cache", "provider", "read_model"]


class Location(Value):
    """Where geocoding placed a stop (or the depot); lat/lng are None when it failed.

    `provider` names who placed the address (kept for the public `geocode_provider`); `source`
    says where this answer came from just now: the client's coordinates, the geocode cache, a
    provider call, or (a re-plan) the read model."""

    stop_id: str
    external_stop_id: str
    lat: float | None = None
    lng: float | None = None
    precision: Precision | None = None
    provider: str | None = None
    source: Source | None = None


class RouteStop(Value):
    stop_id: str
    external_stop_id: str
    sequence: int
    lat: float
    lng: float
    leg_distance_km: float
    leg_duration_minutes: float
    eta_offset_minutes: float
    service_minutes: float = 0.0


class UnroutedStop(Value):
    stop_id: str
    external_stop_id: str
    reason: str


class RouteTotals(Value):
    total_distance_km: float
    total_duration_minutes: float
    total_duration_seconds: int | None = None  # additive: the precise figure behind the minutes


class SolverStats(Value):
    solver: str
    matrix_provider: str
    solve_ms: float
    stop_count: int
    objective_m: int | None = None  # metres driven on the route, the quantity the solver minimises


class JobEvent(Event):
    job_id: str
    # Additive: the lane the job travels (events without it are in the normal lane). A stage's
    # output stays in its input's lane (caused_by carries it); the class's TOPIC is the normal lane's.
    lane: Lane = "normal"

    @property
    def topic(self) -> str:
        return BULK_TOPICS.get(self.TOPIC, self.TOPIC) if self.lane == "bulk" else self.TOPIC


class ImportRequested(JobEvent):
    """A job's spec: the first import (spec_version 1) or an update by re-import (If-Match)."""

    TOPIC: ClassVar[str] = JOBS_REQUESTED
    event_type: Literal["ImportRequested"] = "ImportRequested"
    schema_version: Literal[2] = 2  # 2: personal fields sealed (shared/pii.py)
    integration_id: str
    job: JobSpec
    warnings: tuple[JobWarning, ...] = ()
    spec_version: int = 1  # the job's spec, counted from 1; the projection applies only newer ones
    base_version: int | None = None  # an update: the job version (ETag) the client changed
    keep: tuple[str, ...] = ()  # external_stop_ids already finished: never geocoded or routed again


class StopsGeocoded(JobEvent):
    TOPIC: ClassVar[str] = JOBS_GEOCODED
    event_type: Literal["StopsGeocoded"] = "StopsGeocoded"
    schema_version: Literal[2] = 2  # 2: personal fields sealed (shared/pii.py)
    job: JobSpec
    locations: tuple[Location, ...]
    depot: Location | None = None
    warnings: tuple[JobWarning, ...] = ()
    spec_version: int = 1
    keep: tuple[str, ...] = ()  # finished stops, last finished last: the route starts at the last one


class RouteOptimized(JobEvent):
    TOPIC: ClassVar[str] = JOBS_OPTIMIZED
    event_type: Literal["RouteOptimized"] = "RouteOptimized"
    schema_version: Literal[1] = 1
    external_job_id: str
    route: tuple[RouteStop, ...]
    unrouted: tuple[UnroutedStop, ...] = ()
    totals: RouteTotals
    solver: SolverStats
    start_time: datetime | None = None
    warnings: tuple[JobWarning, ...] = ()
    locations: tuple[Location, ...] = Field(default=(), description="geocoding result per stop")
    spec_version: int = 1  # the spec this route orders; an older one than the job's is ignored
    remaining_only: bool = False  # the route orders only the unfinished stops (an update or a re-plan)


class JobFailed(JobEvent):
    TOPIC: ClassVar[str] = JOBS_FAILED
    event_type: Literal["JobFailed"] = "JobFailed"
    schema_version: Literal[1] = 1
    stage: Literal["ingest", "geocoder", "optimizer", "status"]
    code: str
    message: str
    warnings: tuple[JobWarning, ...] = ()


class StartPoint(Value):
    """Where a re-planned route departs from, and why there."""

    lat: float
    lng: float
    origin: Literal["current_location", "last_finished_stop", "depot"]


class ReplanStop(Value):
    """A stop still to visit, with what the optimizer needs of it."""

    stop_id: str
    external_stop_id: str
    lat: float
    lng: float
    parcel_count: int = 1
    time_window: TimeWindow | None = None
    service_minutes: float | None = None


class ReplanRequested(JobEvent):
    """Re-order a started route's remaining stops from `start` at `start_time` (a command to the optimizer)."""

    TOPIC: ClassVar[str] = JOBS_GEOCODED
    event_type: Literal["ReplanRequested"] = "ReplanRequested"
    schema_version: Literal[1] = 1
    external_job_id: str | None = None
    spec_version: int = 1
    stops: tuple[ReplanStop, ...]
    start: StartPoint | None = None
    start_time: datetime
    vehicle_capacity: int | None = None


class JobCancelled(JobEvent):
    """The integrator cancelled the job: it is over, its pending stops are not delivered."""

    TOPIC: ClassVar[str] = JOBS_REQUESTED
    event_type: Literal["JobCancelled"] = "JobCancelled"
    schema_version: Literal[2] = 2  # 2: personal fields sealed (shared/pii.py)
    reason: str | None = None


class JobErased(JobEvent):
    """The job was erased (DELETE, retention, an organization's erasure): its data key is gone, and
    every consumer drops what it kept of it (read model rows, geocode cache entries, webhooks)."""

    TOPIC: ClassVar[str] = JOBS_REQUESTED
    event_type: Literal["JobErased"] = "JobErased"
    schema_version: Literal[1] = 1
    reason: Literal["request", "retention", "organization"] = "request"


for _name in ("ImportRequested", "StopsGeocoded", "JobCancelled"):
    UPCASTERS[(_name, 1)] = sealed_from_now_on
