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
    """A stop as the import described it. The fleet fields are additive: `time_windows` holds
    the list form (up to two windows; `time_window` keeps the single form), `skills` a vehicle
    must have, `priority` (higher is dropped later when not every stop fits)."""

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
    time_windows: tuple[TimeWindow, ...] = ()
    skills: tuple[str, ...] = ()
    priority: int = 0

    def windows(self) -> tuple[TimeWindow, ...]:
        """Every window the stop may be served in (either form); empty: any time."""
        return self.time_windows or ((self.time_window,) if self.time_window else ())


class Depot(Value):
    address: str | None = None
    lat: float | None = None
    lng: float | None = None


class VehicleSpec(Value):
    """One vehicle of a fleet import, driven by `driver_email` (times are absolute)."""

    driver_email: str
    capacity: int | None = None
    shift_start: datetime | None = None
    shift_end: datetime | None = None
    start: Depot | None = None  # None: the job's depot
    end: Depot | None = None  # None: the depot when the job returns there, else the route ends at its last stop
    max_stops: int | None = None
    max_duration_minutes: float | None = None
    skills: tuple[str, ...] = ()


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
    vehicles: tuple[VehicleSpec, ...] = ()  # additive: a fleet job (then driver_email is None)

    @property
    def fleet(self) -> bool:
        """Planned by the fleet engine: several vehicles, or stops using the fleet fields."""
        return bool(self.vehicles) or any(s.time_windows or s.skills or s.priority for s in self.stops)


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


class VehiclePlaces(Value):
    """Where geocoding placed one vehicle's start and end (None: not given, or not placed)."""

    vehicle: int
    start: Location | None = None
    end: Location | None = None


class RouteStop(Value):
    stop_id: str
    external_stop_id: str
    sequence: int  # in the flat list, route by route
    lat: float
    lng: float
    leg_distance_km: float
    leg_duration_minutes: float
    eta_offset_minutes: float
    service_minutes: float = 0.0
    vehicle: int | None = None  # additive (fleet jobs): index into the spec's vehicles
    route_sequence: int | None = None  # the position within its vehicle's route, from 1


class UnroutedStop(Value):
    stop_id: str
    external_stop_id: str
    reason: str


class RouteTotals(Value):
    total_distance_km: float
    total_duration_minutes: float
    total_duration_seconds: int | None = None  # additive: the precise figure behind the minutes


class VehicleRoute(Value):
    """One vehicle's route of a fleet job: its stops are the flat route's stops with this `vehicle`."""

    vehicle: int
    driver_email: str
    external_stop_ids: tuple[str, ...]
    totals: RouteTotals
    start_time: datetime  # leaving its start
    end_time: datetime  # arriving at its end (or the last service's end on an open route)
    parcels: int = 0


class SolverStats(Value):
    solver: str
    matrix_provider: str
    solve_ms: float
    stop_count: int
    objective_m: int | None = None  # metres driven on the route, the quantity the solver minimises
    vehicles: int | None = None  # additive: the fleet's size (fleet jobs)
    iterations: int | None = None  # additive: the fleet engine's effort spent


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
    vehicles: tuple[VehiclePlaces, ...] = ()  # additive (fleet jobs): each vehicle's start and end


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
    routes: tuple[VehicleRoute, ...] = ()  # additive (fleet jobs): one per vehicle that got stops


class JobFailed(JobEvent):
    TOPIC: ClassVar[str] = JOBS_FAILED
    event_type: Literal["JobFailed"] = "JobFailed"
    schema_version: Literal[1] = 1
    stage: Literal["ingest", "geocoder", "optimizer", "status"]
    code: str
    message: str
    warnings: tuple[JobWarning, ...] = ()
    # The spec whose geocoding or routing failed; None: written before this field (the job's failure).
    spec_version: int | None = None


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
