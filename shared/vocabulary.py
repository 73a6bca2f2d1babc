"""The words every service shares: job status, stop status, warning and unrouted-stop codes.

StrEnums, so they compare equal to the plain strings stored in the read model and carried in
events (`JobStatus.ASSIGNED == "assigned"`), and serialize as those strings.
"""

from datetime import UTC, datetime
from enum import StrEnum


class JobStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    ASSIGNED = "assigned"
    UNASSIGNED = "unassigned"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class StopStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNROUTABLE = "unroutable"
    CANCELLED = "cancelled"


class WarningCode(StrEnum):
    UNKNOWN_FIELD = "UNKNOWN_FIELD"
    GEOCODE_FAILED = "GEOCODE_FAILED"
    GEOCODE_APPROXIMATE = "GEOCODE_APPROXIMATE"
    GEOCODE_AMBIGUOUS = "GEOCODE_AMBIGUOUS"
    ADDRESS_OUTSIDE_REGION = "ADDRESS_OUTSIDE_REGION"
    DEPOT_GEOCODE_FAILED = "DEPOT_GEOCODE_FAILED"
    ROUTING_FALLBACK = "ROUTING_FALLBACK"
    DRIVER_NOT_FOUND = "DRIVER_NOT_FOUND"
    UPDATE_CONFLICT = "UPDATE_CONFLICT"
    VEHICLE_GEOCODE_FAILED = "VEHICLE_GEOCODE_FAILED"


class FailureCode(StrEnum):
    """Why a stage gave up on a whole job (`JobFailed.code`)."""

    GEOCODE_FAILED_ALL = "GEOCODE_FAILED_ALL"
    NO_ROUTABLE_STOPS = "NO_ROUTABLE_STOPS"
    EVENT_TOO_LARGE = "EVENT_TOO_LARGE"


class UnroutedReason(StrEnum):
    """Why one stop was left off its route."""

    GEOCODE_FAILED = "GEOCODE_FAILED"
    TIME_WINDOW_VIOLATION = "TIME_WINDOW_VIOLATION"
    CAPACITY_EXCEEDED = "CAPACITY_EXCEEDED"
    # Fleet routing (services/optimizer/vrp/reasons.py says when each applies):
    SKILLS = "SKILLS"  # no vehicle has the skills the stop needs
    SHIFT = "SHIFT"  # no vehicle can serve it within its shift end / maximum duration
    MAX_STOPS = "MAX_STOPS"  # every vehicle that could serve it is at its stop limit
    NO_VEHICLE = "NO_VEHICLE"  # a fleet job none of whose vehicles can be used (start, end or shift)


# A job has its outcome: an import waiting for it can answer. It never leaves this set again.
SETTLED: frozenset[JobStatus] = frozenset(
    {
        JobStatus.ASSIGNED,
        JobStatus.UNASSIGNED,
        JobStatus.FAILED,
        JobStatus.IN_PROGRESS,
        JobStatus.COMPLETED,
        JobStatus.CANCELLED,
    }
)
# A job that is over: its stops take no more reports, it is neither re-planned nor cancelled again.
TERMINAL: frozenset[JobStatus] = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})
# A stop's delivery is over; a stop in one of these is never re-planned (a cancelled stop is
# not a delivery outcome: it is left out of FINISHED_STOP and of the job head's `finished`).
FINISHED_STOP: frozenset[StopStatus] = frozenset({StopStatus.COMPLETED, StopStatus.FAILED, StopStatus.SKIPPED})


def as_utc(value: datetime | None) -> datetime | None:
    """Databases (SQLite) may hand datetimes back without their zone; ours are always UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
