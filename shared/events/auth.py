"""Audit trail of integrations and tokens, and the driver directory."""

from datetime import datetime
from typing import ClassVar, Literal

from shared.events.envelope import Event

AUTH_EVENTS = "routemate.auth.events"


class AuthEvent(Event):
    TOPIC: ClassVar[str] = AUTH_EVENTS
    schema_version: Literal[1] = 1
    # Who made the change: a console member's email; None for the operator's CLI and the system.
    actor: str | None = None


class IntegrationCreated(AuthEvent):
    event_type: Literal["IntegrationCreated"] = "IntegrationCreated"
    client_id: str
    name: str


class SecretRotated(AuthEvent):
    event_type: Literal["SecretRotated"] = "SecretRotated"
    client_id: str
    old_secret_valid_until: datetime | None = None


class IntegrationRevoked(AuthEvent):
    event_type: Literal["IntegrationRevoked"] = "IntegrationRevoked"
    client_id: str


class TokenIssued(AuthEvent):
    event_type: Literal["TokenIssued"] = "TokenIssued"
    client_id: str
    token_fingerprint: str
    expires_at: datetime


class DriverRegistered(AuthEvent):
    event_type: Literal["DriverRegistered"] = "DriverRegistered"
    email: str
    name: str | None = None
    active: bool = True


class DriverRemoved(AuthEvent):
    event_type: Literal["DriverRemoved"] = "DriverRemoved"
    email: str


class WebhookEndpointDisabled(AuthEvent):
    """A webhook endpoint stopped receiving: it answered 410, or failed for longer than allowed."""

    event_type: Literal["WebhookEndpointDisabled"] = "WebhookEndpointDisabled"
    endpoint_id: str
    url_host: str
    reason: str


MemberRole = Literal["admin", "developer", "viewer"]


class MemberInvited(AuthEvent):
    """A member was added to an organization; they choose a password through a set-up link."""

    event_type: Literal["MemberInvited"] = "MemberInvited"
    member_id: str
    email: str
    role: MemberRole


class MemberRoleChanged(AuthEvent):
    event_type: Literal["MemberRoleChanged"] = "MemberRoleChanged"
    member_id: str
    email: str
    role: MemberRole


class MemberRemoved(AuthEvent):
    event_type: Literal["MemberRemoved"] = "MemberRemoved"
    member_id: str
    email: str


class MemberPasswordSet(AuthEvent):
    event_type: Literal["MemberPasswordSet"] = "MemberPasswordSet"
    member_id: str
    email: str


class MemberSignedIn(AuthEvent):
    event_type: Literal["MemberSignedIn"] = "MemberSignedIn"
    member_id: str
    email: str
