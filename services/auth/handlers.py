"""Auth logic on typed values: authenticate a client, manage integrations and drivers.

No HTTP, Kafka or Redis here: every function takes the store and returns what changed and
the events that tell the rest of the platform.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.auth.secrets import hash_secret, new_client_id, new_secret, secret_matches
from services.auth.store import AuthStore, still_valid
from services.auth.tables import IntegrationRow
from shared.events import (
    DriverRegistered,
    DriverRemoved,
    Event,
    IntegrationCreated,
    IntegrationRevoked,
    SecretRotated,
    utcnow,
)


class NotFound(LookupError):
    """The named integration, organization or driver does not exist."""


@dataclass(frozen=True)
class IssuedSecret:
    client_id: str
    client_secret: str
    org_id: str
    org: str
    name: str
    old_secret_valid_until: datetime | None = None


def authenticate(store: AuthStore, pepper: str, client_id: str, secret: str, now: datetime) -> IntegrationRow | None:
    """The live integration these credentials belong to, or None. Same work for unknown ids."""
    row = store.integration(client_id)
    current = secret_matches(secret, row.secret_hash if row else None, pepper)
    previous = secret_matches(secret, row.previous_secret_hash if row else None, pepper)
    if row is None or row.revoked_at is not None:
        return None
    if current or (previous and still_valid(row.previous_valid_until, now)):
        return row
    return None


def create_integration(
    store: AuthStore, pepper: str, org_name: str, name: str | None, correlation_id: str
) -> tuple[IssuedSecret, list[Event]]:
    org = store.organization(org_name)
    assert org is not None
    secret, now = new_secret(), utcnow()
    row = IntegrationRow(
        client_id=new_client_id(),
        org_id=org.org_id,
        name=name or f"{org_name} integration",
        secret_hash=hash_secret(secret, pepper),
        created_at=now,
    )
    store.add_integration(row)
    event = IntegrationCreated(org_id=org.org_id, client_id=row.client_id, name=row.name, correlation_id=correlation_id)
    return IssuedSecret(row.client_id, secret, org.org_id, org.name, row.name), [event]


def _live(store: AuthStore, client_id: str) -> IntegrationRow:
    row = store.integration(client_id)
    if row is None or row.revoked_at is not None:
        raise NotFound(f"no active integration {client_id}")
    return row


def rotate_secret(
    store: AuthStore, pepper: str, client_id: str, grace_seconds: int, correlation_id: str
) -> tuple[IssuedSecret, list[Event]]:
    """A new secret; the old one works for `grace_seconds` more (0: stops at once)."""
    row, now, secret = _live(store, client_id), utcnow(), new_secret()
    until = now + timedelta(seconds=grace_seconds) if grace_seconds > 0 else None
    row.previous_secret_hash = row.secret_hash if until else None
    row.previous_valid_until = until
    row.secret_hash, row.rotated_at = hash_secret(secret, pepper), now
    store.save_integration(row)
    event = SecretRotated(
        org_id=row.org_id, client_id=client_id, old_secret_valid_until=until, correlation_id=correlation_id
    )
    return IssuedSecret(client_id, secret, row.org_id, "", row.name, until), [event]


def revoke_integration(store: AuthStore, client_id: str, correlation_id: str) -> tuple[IntegrationRow, list[Event]]:
    row = _live(store, client_id)
    row.revoked_at = utcnow()
    store.save_integration(row)
    return row, [IntegrationRevoked(org_id=row.org_id, client_id=client_id, correlation_id=correlation_id)]


def register_driver(
    store: AuthStore, org_name: str, email: str, name: str | None, active: bool, correlation_id: str
) -> tuple[dict, list[Event]]:
    org = store.organization(org_name)
    assert org is not None
    row = store.upsert_driver(org.org_id, email.lower(), name, active)
    event = DriverRegistered(
        org_id=org.org_id, email=row.email, name=row.name, active=row.active, correlation_id=correlation_id
    )
    return {"org_id": org.org_id, "org": org.name, "email": row.email, "name": row.name, "active": row.active}, [event]


def remove_driver(store: AuthStore, org_name: str, email: str, correlation_id: str) -> list[Event]:
    org = store.organization(org_name, create=False)
    if org is None or not store.remove_driver(org.org_id, email.lower()):
        raise NotFound(f"no driver {email.lower()} in {org_name}")
    return [DriverRemoved(org_id=org.org_id, email=email.lower(), correlation_id=correlation_id)]
