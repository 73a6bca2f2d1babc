"""The envelope every RouteMate event carries, and decoding with upcasting."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import UUID, uuid4, uuid5

from pydantic import BaseModel, ConfigDict, Field


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class Value(BaseModel):
    """A frozen value object inside an event."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class Event(Value):
    """Envelope fields; subclasses pin `event_type` and `schema_version` with Literals."""

    TOPIC: ClassVar[str]

    event_id: UUID = Field(default_factory=uuid4)
    event_type: str
    schema_version: int
    occurred_at: datetime = Field(default_factory=utcnow)
    correlation_id: str = ""
    org_id: str

    @property
    def topic(self) -> str:
        """The topic this event is published to (a job event in the bulk lane has its own)."""
        return self.TOPIC

    @property
    def key(self) -> bytes:
        """The partition key: the job for job events, the organization otherwise."""
        return (getattr(self, "job_id", None) or self.org_id).encode()

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


# (event_type, schema_version) -> a function that lifts the raw dict one version up.
# A breaking change to an event bumps its schema_version and registers its upcaster here.
UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {}


def sealed_from_now_on(raw: dict[str, Any]) -> dict[str, Any]:
    """Version 1 -> 2 of an event with personal fields: the same fields, written before they were
    sealed; opening (shared/pii.py) passes a plaintext value through unchanged."""
    return {**raw, "schema_version": 2}


def upcast(raw: dict[str, Any]) -> dict[str, Any]:
    """Apply registered upcasters until the event is at its current version."""
    while (step := UPCASTERS.get((raw.get("event_type"), raw.get("schema_version")))) is not None:
        raw = step(raw)
    return raw


def caused_by(source: Event, event_type: str) -> dict[str, Any]:
    """Envelope fields for an event a stage derives from `source`: a redelivered source yields
    the very same event id, so downstream consumers recognise the replay and change nothing.
    A job event's lane goes along: a job stays in the lane ingest chose for it."""
    fields: dict[str, Any] = {
        "event_id": uuid5(source.event_id, event_type),
        "org_id": source.org_id,
        "correlation_id": source.correlation_id,
    }
    if (lane := getattr(source, "lane", None)) is not None:
        fields["lane"] = lane
    return fields
