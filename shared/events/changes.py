"""Public changes of a job, as the status service's outbox publishes them (the webhooks' source)."""

from typing import Any, ClassVar, Literal
from uuid import UUID, uuid5

from pydantic import Field

from shared.events.envelope import UPCASTERS, sealed_from_now_on
from shared.events.jobs import JobEvent

JOBS_CHANGES = "routemate.jobs.changes"

# The change types a webhook endpoint can subscribe to (services/status/adapters/outbox.py writes them).
CHANGE_TYPES = (
    "job.routed",
    "job.failed",
    "job.assigned",
    "job.in_progress",
    "job.completed",
    "job.updated",
    "job.cancelled",
    "stop.status_changed",
)


def change_id(source_event_id: UUID, change_type: str) -> UUID:
    """One id per (source event, change): a redelivered source event yields the same id."""
    return uuid5(source_event_id, f"change:{change_type}")


class JobChanged(JobEvent):
    """One public change of a job; `data` is the public job view (or the changed stop's)."""

    TOPIC: ClassVar[str] = JOBS_CHANGES
    event_type: Literal["JobChanged"] = "JobChanged"
    schema_version: Literal[2] = 2  # 2: `data` travels sealed under the job's data key (shared/pii.py)
    change_type: str
    version: int = 0
    data: dict[str, Any] | str = Field(default_factory=dict)  # a str: sealed (or "[erased]" once opened)


UPCASTERS[("JobChanged", 1)] = sealed_from_now_on
