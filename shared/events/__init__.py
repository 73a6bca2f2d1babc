"""Every RouteMate event, its topic, and one decoder for all of them."""

from typing import Annotated, Any

import orjson
from pydantic import Field, TypeAdapter, ValidationError

from shared.events.auth import (
    AUTH_EVENTS,
    AuthEvent,
    DriverRegistered,
    DriverRemoved,
    IntegrationCreated,
    IntegrationRevoked,
    MemberInvited,
    MemberPasswordSet,
    MemberRemoved,
    MemberRoleChanged,
    MemberSignedIn,
    OrganizationErased,
    OrgRetentionSet,
    SecretRotated,
    TokenIssued,
    WebhookEndpointDisabled,
)
from shared.events.changes import CHANGE_TYPES, JOBS_CHANGES, JobChanged, change_id
from shared.events.envelope import Event, caused_by, upcast, utcnow
from shared.events.jobs import (
    BULK_TOPICS,
    JOBS_FAILED,
    JOBS_GEOCODED,
    JOBS_GEOCODED_BULK,
    JOBS_OPTIMIZED,
    JOBS_REQUESTED,
    JOBS_REQUESTED_BULK,
    ImportRequested,
    JobCancelled,
    JobErased,
    JobFailed,
    JobWarning,
    ReplanRequested,
    RouteOptimized,
    StopsGeocoded,
)
from shared.events.stops import STOPS_STATUS, StopStatusChanged

DEADLETTER = "routemate.deadletter"
ALL_TOPICS = (
    JOBS_REQUESTED,
    JOBS_GEOCODED,
    JOBS_OPTIMIZED,
    JOBS_FAILED,
    STOPS_STATUS,
    AUTH_EVENTS,
    DEADLETTER,
    JOBS_CHANGES,
    JOBS_GEOCODED_BULK,
    JOBS_REQUESTED_BULK,
)

# The topics the read model is rebuilt from: kept for ever (shared/topics.py).
SOURCE_TOPICS = tuple(t for t in ALL_TOPICS if t not in (DEADLETTER, JOBS_CHANGES))

AnyEvent = Annotated[
    ImportRequested
    | StopsGeocoded
    | RouteOptimized
    | JobFailed
    | ReplanRequested
    | JobCancelled
    | JobErased
    | StopStatusChanged
    | IntegrationCreated
    | SecretRotated
    | IntegrationRevoked
    | TokenIssued
    | DriverRegistered
    | DriverRemoved
    | WebhookEndpointDisabled
    | MemberInvited
    | MemberRoleChanged
    | MemberRemoved
    | MemberPasswordSet
    | MemberSignedIn
    | OrgRetentionSet
    | OrganizationErased
    | JobChanged,
    Field(discriminator="event_type"),
]
_ADAPTER: TypeAdapter[Event] = TypeAdapter(AnyEvent)


class UndecodableEvent(ValueError):
    """The bytes are not a RouteMate event this code understands; the reason says why."""


def decode_event(raw: bytes) -> Event:
    """Parse bytes from a topic into the event they carry, upcasting old versions."""
    try:
        data: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UndecodableEvent(f"not JSON: {exc}") from None
    return decode_raw(data)


def decode_raw(data: Any) -> Event:
    """The event a parsed JSON value carries, upcasting old versions (`decode_event` after the
    parse: a replay opens an event's sealed fields in the dict before it validates it once)."""
    if not isinstance(data, dict):
        raise UndecodableEvent("not a JSON object")
    try:
        return _ADAPTER.validate_python(upcast(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UndecodableEvent(f"invalid event at {where}: {first['msg']}") from None


__all__ = [
    "ALL_TOPICS",
    "SOURCE_TOPICS",
    "AUTH_EVENTS",
    "BULK_TOPICS",
    "CHANGE_TYPES",
    "JOBS_CHANGES",
    "JobChanged",
    "WebhookEndpointDisabled",
    "MemberInvited",
    "MemberRoleChanged",
    "MemberRemoved",
    "MemberPasswordSet",
    "MemberSignedIn",
    "change_id",
    "decode_raw",
    "AuthEvent",
    "DEADLETTER",
    "DriverRegistered",
    "DriverRemoved",
    "Event",
    "ImportRequested",
    "IntegrationCreated",
    "IntegrationRevoked",
    "OrgRetentionSet",
    "OrganizationErased",
    "JOBS_FAILED",
    "JOBS_GEOCODED",
    "JOBS_GEOCODED_BULK",
    "JOBS_OPTIMIZED",
    "JOBS_REQUESTED",
    "JOBS_REQUESTED_BULK",
    "JobCancelled",
    "JobErased",
    "JobFailed",
    "JobWarning",
    "ReplanRequested",
    "RouteOptimized",
    "STOPS_STATUS",
    "SecretRotated",
    "StopStatusChanged",
    "StopsGeocoded",
    "TokenIssued",
    "UndecodableEvent",
    "caused_by",
    "decode_event",
    "utcnow",
]
