"""The public answers of the jobs, import and stop-status endpoints, described for the OpenAPI document.

The services build these answers as plain dicts (services/status/views.py, services/ingest/routes.py);
these models only describe them, and the e2e tests check real answers against the document built from
them, so a field added to a view without being described here fails a test.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict

JobStatus = Literal[
    "pending", "processing", "assigned", "unassigned", "in_progress", "completed", "failed", "cancelled"
]
StopStatus = Literal["pending", "completed", "failed", "skipped", "unroutable", "cancelled"]


class Described(BaseModel):
    """Answers may gain optional fields; clients must ignore what they do not know."""

    model_config = ConfigDict(extra="allow")


class FieldError(Described):
    pointer: str
    reason: str
    type: str | None = None


class Problem(Described):
    """RFC 9457 problem details with a stable machine `code`."""

    type: str
    title: str
    status: int
    code: str
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None


class OAuthError(Described):
    """RFC 6749 §5.2 error of the token endpoint."""

    error: str
    error_description: str | None = None


class Driver(Described):
    email: str
    name: str | None = None


class Optimization(Described):
    total_distance_km: float
    total_duration_minutes: int
    total_duration_seconds: int | None = None
    solver: str | None = None
    matrix_provider: str | None = None


class TimeWindow(Described):
    start: str
    end: str


class ProofOfDelivery(Described):
    recipient_name: str | None = None
    signature_url: str | None = None
    photo_urls: list[str] = []


class Stop(Described):
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
    eta: str | None = None
    distance_from_previous_km: float | None = None
    duration_from_previous_minutes: float | None = None
    time_window: TimeWindow | None = None
    status_at: str | None = None
    reason: str | None = None
    notes: str | None = None
    proof_of_delivery: ProofOfDelivery | None = None
    time_windows: list[TimeWindow] | None = None
    skills: list[str] | None = None
    priority: int | None = None
    vehicle: int | None = None
    driver_email: str | None = None
    route_sequence: int | None = None


class RouteTotals(Described):
    total_distance_km: float
    total_duration_minutes: int
    total_duration_seconds: int | None = None


class Route(Described):
    """One vehicle's route: its driver, its stops' external_stop_ids in visiting order, its totals."""

    vehicle: int
    driver: Driver | None = None
    stops: list[str]
    parcels: int | None = None
    optimization: RouteTotals
    start_time: str | None = None
    end_time: str | None = None


class UnroutedStop(Described):
    external_stop_id: str
    reason: str | None = None
    address: str | None = None


class JobWarning(Described):
    code: str
    external_stop_id: str | None = None
    message: str


class Job(Described):
    """A job with its stops in route order: the import's 201 answer and the jobs endpoint's."""

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
    vehicles: list[dict] | None = None
    unrouted_stops: list[UnroutedStop] = []
    warnings: list[JobWarning] = []
    failure: dict | None = None
    cancellation: "Cancellation | None" = None
    start_time: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


class Cancellation(Described):
    reason: str | None = None
    cancelled_at: str | None = None


class CancelAccepted(Described):
    """The answer to a cancel: 202 the first time, 200 with the same body after that."""

    job_id: str
    status: Literal["cancelled"]
    reason: str | None = None
    cancelled_at: str | None = None


class StartPoint(Described):
    lat: float
    lng: float
    origin: str | None = None


class ReplanAccepted(Described):
    """The answer to a re-plan: accepted; the job shows the new order within moments (follow `Location`)."""

    job_id: str
    event_id: str
    remaining_stops: int
    start: StartPoint | None = None
    start_time: str
    links: "JobLinks"


class JobPage(Described):
    jobs: list[Job]
    next_cursor: str | None = None


class JobLinks(Described):
    job: str


class ImportAccepted(Described):
    """The 202 answer: the job is accepted and still being routed; follow `Location`."""

    job_id: str
    external_job_id: str
    status: JobStatus
    links: JobLinks


class StopStatusAccepted(Described):
    job_id: str
    external_stop_id: str
    status: Literal["completed", "failed", "skipped"]
    status_at: str
    event_id: str


WebhookEvent = Literal[
    "job.routed",
    "job.failed",
    "job.assigned",
    "job.in_progress",
    "job.completed",
    "job.updated",
    "job.cancelled",
    "stop.status_changed",
]


class WebhookEndpoint(Described):
    """A webhook endpoint (services/notifier/handlers.endpoint_view); its secret is never shown again."""

    id: str
    url: str
    events: list[WebhookEvent]
    description: str | None = None
    status: Literal["active", "disabled"]
    disabled_reason: str | None = None
    created_at: str
    updated_at: str
    previous_secret_valid_until: str | None = None


class WebhookEndpointWithSecret(WebhookEndpoint):
    """The answer of create and rotate-secret: the only place the signing secret appears."""

    secret: str


class WebhookEndpointList(Described):
    endpoints: list[WebhookEndpoint]


class WebhookAttempt(Described):
    at: str
    status_code: int | None = None
    latency_ms: float
    error: str | None = None
    response: str | None = None


class WebhookDelivery(Described):
    id: str
    webhook_id: str
    event_type: str
    job_id: str | None = None
    status: Literal["pending", "succeeded", "failed"]
    attempt_count: int
    next_attempt_at: str | None = None
    created_at: str
    payload: dict
    attempts: list[WebhookAttempt]


class WebhookDeliveryPage(Described):
    deliveries: list[WebhookDelivery]
    next_cursor: str | None = None


class WebhookDeliveryScheduled(Described):
    delivery_id: str
    webhook_id: str
    event_type: str | None = None
    status: str | None = None
