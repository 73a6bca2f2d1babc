"""Typed request and response bodies, field for field those of the published OpenAPI document
(`/v1/openapi.json`). Answers may gain optional fields: unknown ones are kept, never rejected."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JobStatus = Literal[
    "pending", "processing", "assigned", "unassigned", "in_progress", "completed", "failed", "cancelled"
]
StopStatus = Literal["pending", "completed", "failed", "skipped", "unroutable", "cancelled"]
StopOutcome = Literal["completed", "failed", "skipped"]
SETTLED: frozenset[str] = frozenset({"assigned", "unassigned", "in_progress", "completed", "failed", "cancelled"})


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


# --- requests -------------------------------------------------------------------------------


class TimeWindow(_Body):
    start: datetime | str
    end: datetime | str


class ImportStop(_Body):
    external_stop_id: str
    address: str | None = None
    lat: float | None = None
    lng: float | None = None
    label: str | None = None
    parcel_count: int = 1
    time_window: TimeWindow | None = None
    service_minutes: float | None = None
    notes: str | None = None
    phone: str | None = None
    email: str | None = None
    time_windows: list[TimeWindow] | None = None
    skills: list[str] | None = None
    priority: int | None = None


class Depot(_Body):
    address: str | None = None
    lat: float | None = None
    lng: float | None = None


class Vehicle(_Body):
    """One vehicle of a fleet import (instead of `driver_email`)."""

    driver_email: str
    capacity: int | None = None
    shift_start: datetime | str | None = None
    shift_end: datetime | str | None = None
    start: Depot | None = None
    end: Depot | None = None
    max_stops: int | None = None
    max_duration_minutes: float | None = None
    skills: list[str] | None = None


class ImportJob(_Body):
    """The import body: the public fields plus the optional ones RouteMate adds."""

    external_job_id: str
    title: str
    driver_email: str | None = None
    stops: list[ImportStop] = Field(min_length=1)
    depot: Depot | None = None
    return_to_depot: bool = False
    start_time: datetime | str | None = None
    vehicle_capacity: int | None = None
    vehicles: list[Vehicle] | None = None


# --- answers --------------------------------------------------------------------------------


class Token(_Body):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int


class Driver(_Body):
    email: str
    name: str | None = None


class Optimization(_Body):
    total_distance_km: float
    total_duration_minutes: int
    total_duration_seconds: int | None = None
    solver: str | None = None
    matrix_provider: str | None = None


class ProofOfDelivery(_Body):
    recipient_name: str | None = None
    signature_url: str | None = None
    photo_urls: list[str] = []


class Stop(_Body):
    external_stop_id: str
    sequence: int | None = None
    status: StopStatus
    address: str | None = None
    label: str | None = None
    parcel_count: int | None = None
    lat: float | None = None
    lng: float | None = None
    geocode_precision: str | None = None
    geocode_provider: str | None = None
    eta: datetime | None = None
    distance_from_previous_km: float | None = None
    duration_from_previous_minutes: float | None = None
    time_window: TimeWindow | None = None
    status_at: datetime | None = None
    reason: str | None = None
    notes: str | None = None
    proof_of_delivery: ProofOfDelivery | None = None
    time_windows: list[TimeWindow] | None = None
    skills: list[str] | None = None
    priority: int | None = None
    vehicle: int | None = None
    driver_email: str | None = None
    route_sequence: int | None = None


class RouteTotals(_Body):
    total_distance_km: float
    total_duration_minutes: int
    total_duration_seconds: int | None = None


class Route(_Body):
    """One vehicle's route: its driver, its stops' external_stop_ids in visiting order, its totals."""

    vehicle: int
    driver: Driver | None = None
    stops: list[str]
    parcels: int | None = None
    optimization: RouteTotals
    start_time: datetime | None = None
    end_time: datetime | None = None


class UnroutedStop(_Body):
    external_stop_id: str
    reason: str | None = None
    address: str | None = None


class JobWarning(_Body):
    code: str
    external_stop_id: str | None = None
    message: str


class Cancellation(_Body):
    reason: str | None = None
    cancelled_at: datetime | None = None


class Job(_Body):
    """A job with its stops in route order."""

    job_id: str
    external_job_id: str
    title: str | None = None
    status: JobStatus
    version: int | None = None
    spec_version: int | None = None
    driver: Driver | None = None
    driver_email: str | None = None
    stop_count: int
    status_counts: dict[str, int]
    optimization: Optimization | None = None
    stops: list[Stop]
    routes: list[Route] = []
    vehicles: list[dict[str, Any]] | None = None
    unrouted_stops: list[UnroutedStop] = []
    warnings: list[JobWarning] = []
    failure: dict[str, Any] | None = None
    cancellation: Cancellation | None = None
    start_time: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def settled(self) -> bool:
        """Routed (or failed): no longer pending or processing."""
        return self.status in SETTLED


class JobPage(_Body):
    jobs: list[Job]
    next_cursor: str | None = None


class JobLinks(_Body):
    job: str


class ImportAccepted(_Body):
    """An import the platform accepted and is still routing."""

    job_id: str
    external_job_id: str
    status: JobStatus
    links: JobLinks


class StopStatusAccepted(_Body):
    job_id: str
    external_stop_id: str
    status: StopOutcome
    status_at: datetime
    event_id: str
