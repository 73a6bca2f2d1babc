"""The admin API's use-cases: integrations (create, rotate, revoke) and the driver directory.

Each change is stored first, then published on Kafka for the audit trail and the status service;
no HTTP or Kafka types here, the adapters come in as arguments.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from services.auth.adapters.store import AuthStore
from services.auth.adapters.tables import DriverRow, IntegrationRow
from services.auth.adapters.tokens import TokenStore
from services.auth.secrets import hash_secret, new_client_id, new_secret
from shared.events import (
    DriverRegistered,
    DriverRemoved,
    Event,
    IntegrationCreated,
    IntegrationRevoked,
    SecretRotated,
    utcnow,
)

log = logging.getLogger(__name__)


class NotFound(LookupError):
    """The named integration, organization or driver does not exist."""


class NotPublished(Exception):
    """The change is stored but its event did not reach Kafka; the operator repeats the command."""


class Publisher(Protocol):
    async def publish(self, event: Event) -> None: ...


@dataclass(frozen=True)
class IssuedSecret:
    client_id: str
    client_secret: str
    org_id: str
    org: str
    name: str
    old_secret_valid_until: datetime | None = None


@dataclass(frozen=True)
class Revocation:
    client_id: str
    revoked_at: datetime | None
    tokens_revoked: int


async def publish_all(bus: Publisher, events: list[Event]) -> None:
    """Tell Kafka about a stored change, or NotPublished."""
    try:
        for event in events:
            await bus.publish(event)
    except Exception:  # noqa: BLE001 - the change is stored; the event must be retried by the operator
        log.error("stored the change but could not publish %s", [e.event_type for e in events])
        raise NotPublished from None


class Integrations:
    """Create, rotate, revoke and list integrations; each change is stored first, then published."""

    def __init__(self, store: AuthStore, tokens: TokenStore, bus: Publisher, *, pepper: str) -> None:
        self.store, self.tokens, self.bus, self.pepper = store, tokens, bus, pepper

    async def create(
        self, org_name: str, name: str | None, correlation_id: str, actor: str | None = None
    ) -> IssuedSecret:
        org = await asyncio.to_thread(self.store.organization, org_name)
        assert org is not None
        secret = new_secret()
        row = IntegrationRow(
            client_id=new_client_id(),
            org_id=org.org_id,
            name=name or f"{org_name} integration",
            secret_hash=hash_secret(secret, self.pepper),
            created_at=utcnow(),
        )
        await asyncio.to_thread(self.store.add_integration, row)
        event = IntegrationCreated(
            org_id=org.org_id, client_id=row.client_id, name=row.name, correlation_id=correlation_id, actor=actor
        )
        await publish_all(self.bus, [event])
        return IssuedSecret(row.client_id, secret, org.org_id, org.name, row.name)

    async def rotate(
        self, client_id: str, grace_seconds: int, correlation_id: str, actor: str | None = None
    ) -> IssuedSecret:
        """A new secret; the old one works for `grace_seconds` more (0: stops at once, with its tokens)."""
        row, now, secret = await self._live(client_id), utcnow(), new_secret()
        until = now + timedelta(seconds=grace_seconds) if grace_seconds > 0 else None
        row.previous_secret_hash = row.secret_hash if until else None
        row.previous_valid_until = until
        row.secret_hash, row.rotated_at = hash_secret(secret, self.pepper), now
        await asyncio.to_thread(self.store.save_integration, row)
        if not until:  # a rotation without grace is a compromise response: live tokens go too
            await self.tokens.revoke_all(client_id)
        event = SecretRotated(
            org_id=row.org_id,
            client_id=client_id,
            old_secret_valid_until=until,
            correlation_id=correlation_id,
            actor=actor,
        )
        await publish_all(self.bus, [event])
        return IssuedSecret(client_id, secret, row.org_id, "", row.name, until)

    async def revoke(self, client_id: str, correlation_id: str, actor: str | None = None) -> Revocation:
        """The integration authenticates no more and its live tokens end at once."""
        row = await self._live(client_id)
        row.revoked_at = utcnow()
        await asyncio.to_thread(self.store.save_integration, row)
        revoked = await self.tokens.revoke_all(client_id)
        await publish_all(
            self.bus,
            [IntegrationRevoked(org_id=row.org_id, client_id=client_id, correlation_id=correlation_id, actor=actor)],
        )
        return Revocation(client_id, row.revoked_at, revoked)

    async def listed(self, org_name: str | None) -> list[tuple[IntegrationRow, str]]:
        """Every integration with its organization's name, of one organization when named."""
        org = await asyncio.to_thread(self.store.organization, org_name, False) if org_name else None
        if org_name and org is None:
            return []
        return await asyncio.to_thread(self.store.integrations, org.org_id if org else None)

    async def _live(self, client_id: str) -> IntegrationRow:
        row = await asyncio.to_thread(self.store.integration, client_id)
        if row is None or row.revoked_at is not None:
            raise NotFound(f"no active integration {client_id}")
        return row


class Drivers:
    """The driver directory of each organization, keyed by lower-case email."""

    def __init__(self, store: AuthStore, bus: Publisher) -> None:
        self.store, self.bus = store, bus

    async def register(
        self, org_name: str, email: str, name: str | None, active: bool, correlation_id: str, actor: str | None = None
    ) -> dict[str, object]:
        org = await asyncio.to_thread(self.store.organization, org_name)
        assert org is not None
        row = await asyncio.to_thread(self.store.upsert_driver, org.org_id, email.lower(), name, active)
        event = DriverRegistered(
            org_id=org.org_id,
            email=row.email,
            name=row.name,
            active=row.active,
            correlation_id=correlation_id,
            actor=actor,
        )
        await publish_all(self.bus, [event])
        return {"org_id": org.org_id, "org": org.name, "email": row.email, "name": row.name, "active": row.active}

    async def remove(self, org_name: str, email: str, correlation_id: str, actor: str | None = None) -> None:
        org = await asyncio.to_thread(self.store.organization, org_name, False)
        if org is None or not await asyncio.to_thread(self.store.remove_driver, org.org_id, email.lower()):
            raise NotFound(f"no driver {email.lower()} in {org_name}")
        event = DriverRemoved(org_id=org.org_id, email=email.lower(), correlation_id=correlation_id, actor=actor)
        await publish_all(self.bus, [event])

    async def listed(self, org_name: str) -> list[DriverRow]:
        org = await asyncio.to_thread(self.store.organization, org_name, False)
        return await asyncio.to_thread(self.store.drivers, org.org_id) if org else []
