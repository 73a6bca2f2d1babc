"""The admin use-cases on a temporary SQLite database, fake Redis and a recording event bus."""

from datetime import timedelta
from types import SimpleNamespace

import pytest

from services.auth.adapters.store import AuthStore
from services.auth.adapters.tokens import TokenStore
from services.auth.admin_handlers import Drivers, Integrations, NotFound, NotPublished
from services.auth.handlers import authenticate
from shared.events import DriverRegistered, DriverRemoved, IntegrationCreated, IntegrationRevoked, SecretRotated, utcnow
from shared.testing.fakes import MemoryRedis, RecordingBus
from shared.tokens import Principal, new_token, token_digest, token_key

PEPPER = "test-pepper"


@pytest.fixture
def redis() -> MemoryRedis:
    return MemoryRedis()


@pytest.fixture
def bus() -> RecordingBus:
    return RecordingBus()


@pytest.fixture
def integrations(store: AuthStore, redis: MemoryRedis, bus: RecordingBus) -> Integrations:
    return Integrations(store, TokenStore(redis, b"k"), bus, pepper=PEPPER)


def signs_in(store: AuthStore, client_id: str, secret: str, now=None) -> bool:
    return authenticate(store, PEPPER, client_id, secret, now or utcnow()) is not None


async def live_token(redis: MemoryRedis, client_id: str) -> str:
    token = new_token()
    await TokenStore(redis, b"k").keep(token, Principal("org", client_id), 3600, 0)
    return token


async def test_a_created_integration_authenticates_with_its_secret_only(store, integrations, bus):
    issued = await integrations.create("acme", None, "c1")
    assert issued.client_id.startswith("rm_ci_") and issued.client_secret.startswith("rm_cs_")
    assert isinstance(bus.events[0], IntegrationCreated) and bus.events[0].org_id == issued.org_id
    assert bus.events[0].correlation_id == "c1" and issued.name == "acme integration"
    assert signs_in(store, issued.client_id, issued.client_secret)
    assert not signs_in(store, issued.client_id, "rm_cs_wrong")
    assert not signs_in(store, "rm_ci_unknown", issued.client_secret)
    assert issued.client_secret not in store.integration(issued.client_id).secret_hash


async def test_organizations_are_created_once_by_name(integrations):
    a = await integrations.create("acme", None, "c")
    b = await integrations.create("acme", "second", "c")
    assert a.org_id == b.org_id and a.client_id != b.client_id and b.name == "second"


async def test_rotation_without_grace_stops_the_old_secret_and_its_tokens_at_once(store, redis, integrations, bus):
    issued = await integrations.create("acme", None, "c")
    token = await live_token(redis, issued.client_id)
    new = await integrations.rotate(issued.client_id, 0, "c")
    assert isinstance(bus.events[-1], SecretRotated) and new.old_secret_valid_until is None
    assert not signs_in(store, issued.client_id, issued.client_secret)
    assert signs_in(store, issued.client_id, new.client_secret)
    assert not await redis.exists(token_key(token_digest(token)))


async def test_rotation_with_grace_keeps_the_old_secret_and_tokens_until_the_deadline(store, redis, integrations):
    issued = await integrations.create("acme", None, "c")
    token = await live_token(redis, issued.client_id)
    new = await integrations.rotate(issued.client_id, 60, "c")
    now = utcnow()
    assert new.old_secret_valid_until > now
    assert signs_in(store, issued.client_id, issued.client_secret, now)
    assert not signs_in(store, issued.client_id, issued.client_secret, now + timedelta(seconds=61))
    assert await redis.exists(token_key(token_digest(token)))


async def test_a_grace_deadline_read_back_without_its_zone_counts_as_utc(store, integrations):
    issued = await integrations.create("acme", None, "c")
    await integrations.rotate(issued.client_id, 60, "c")
    row = store.integration(issued.client_id)
    row.previous_valid_until = row.previous_valid_until.replace(tzinfo=None)  # as a zone-less column gives it
    naive = SimpleNamespace(integration=lambda _: row)
    now = utcnow()
    assert authenticate(naive, PEPPER, issued.client_id, issued.client_secret, now) is not None
    assert authenticate(naive, PEPPER, issued.client_id, issued.client_secret, now + timedelta(seconds=61)) is None


async def test_a_revoked_integration_never_authenticates_again_and_its_tokens_end(store, redis, integrations, bus):
    issued = await integrations.create("acme", None, "c")
    token = await live_token(redis, issued.client_id)
    revoked = await integrations.revoke(issued.client_id, "c")
    assert isinstance(bus.events[-1], IntegrationRevoked)
    assert revoked.tokens_revoked == 1 and revoked.revoked_at is not None
    assert not signs_in(store, issued.client_id, issued.client_secret)
    assert not await redis.exists(token_key(token_digest(token)))
    with pytest.raises(NotFound):
        await integrations.rotate(issued.client_id, 0, "c")
    with pytest.raises(NotFound):
        await integrations.revoke(issued.client_id, "c")


async def test_integrations_are_listed_by_organization(integrations):
    a = await integrations.create("acme", None, "c")
    await integrations.create("globex", None, "c")
    assert [(row.client_id, org) for row, org in await integrations.listed("acme")] == [(a.client_id, "acme")]
    assert len(await integrations.listed(None)) == 2
    assert await integrations.listed("nobody") == []


async def test_a_change_is_kept_even_when_its_event_cannot_be_published(store, integrations, bus):
    bus.down = True
    with pytest.raises(NotPublished):
        await integrations.create("acme", None, "c")
    assert [org for _, org in await integrations.listed("acme")] == ["acme"]


async def test_drivers_are_keyed_by_lower_case_email(store, bus):
    drivers = Drivers(store, bus)
    driver = await drivers.register("acme", "Dana@Example.COM", "Dana", True, "c")
    assert driver["email"] == "dana@example.com" and isinstance(bus.events[0], DriverRegistered)
    await drivers.register("acme", "dana@example.com", None, False, "c")
    assert [(d.name, d.active) for d in await drivers.listed("acme")] == [("Dana", False)]
    await drivers.remove("acme", "DANA@example.com", "c")
    assert isinstance(bus.events[-1], DriverRemoved) and bus.events[-1].email == "dana@example.com"
    assert await drivers.listed("acme") == []
    with pytest.raises(NotFound):
        await drivers.remove("acme", "dana@example.com", "c")
    with pytest.raises(NotFound):
        await drivers.remove("nobody", "dana@example.com", "c")
