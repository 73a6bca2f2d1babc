from datetime import timedelta

import pytest

from services.auth import handlers
from services.auth.store import AuthStore
from shared.db import make_engine
from shared.events import DriverRegistered, IntegrationCreated, IntegrationRevoked, SecretRotated, utcnow

PEPPER = "test-pepper"


@pytest.fixture
def store(tmp_path):
    return AuthStore(make_engine(f"sqlite:///{tmp_path / 'auth.db'}"))


def test_a_created_integration_authenticates_with_its_secret_only(store):
    issued, events = handlers.create_integration(store, PEPPER, "acme", None, "c1")
    assert issued.client_id.startswith("rm_ci_") and issued.client_secret.startswith("rm_cs_")
    assert isinstance(events[0], IntegrationCreated) and events[0].org_id == issued.org_id
    assert handlers.authenticate(store, PEPPER, issued.client_id, issued.client_secret, utcnow()) is not None
    assert handlers.authenticate(store, PEPPER, issued.client_id, "rm_cs_wrong", utcnow()) is None
    assert handlers.authenticate(store, PEPPER, "rm_ci_unknown", issued.client_secret, utcnow()) is None
    row = store.integration(issued.client_id)
    assert issued.client_secret not in row.secret_hash


def test_organizations_are_created_once_by_name(store):
    a, _ = handlers.create_integration(store, PEPPER, "acme", None, "c")
    b, _ = handlers.create_integration(store, PEPPER, "acme", None, "c")
    assert a.org_id == b.org_id and a.client_id != b.client_id


def test_rotation_without_grace_stops_the_old_secret_at_once(store):
    issued, _ = handlers.create_integration(store, PEPPER, "acme", None, "c")
    new, events = handlers.rotate_secret(store, PEPPER, issued.client_id, 0, "c")
    assert isinstance(events[0], SecretRotated)
    assert handlers.authenticate(store, PEPPER, issued.client_id, issued.client_secret, utcnow()) is None
    assert handlers.authenticate(store, PEPPER, issued.client_id, new.client_secret, utcnow()) is not None


def test_rotation_with_grace_keeps_the_old_secret_until_the_deadline(store):
    issued, _ = handlers.create_integration(store, PEPPER, "acme", None, "c")
    handlers.rotate_secret(store, PEPPER, issued.client_id, 60, "c")
    now = utcnow()
    assert handlers.authenticate(store, PEPPER, issued.client_id, issued.client_secret, now) is not None
    later = now + timedelta(seconds=61)
    assert handlers.authenticate(store, PEPPER, issued.client_id, issued.client_secret, later) is None


def test_a_revoked_integration_never_authenticates_again(store):
    issued, _ = handlers.create_integration(store, PEPPER, "acme", None, "c")
    _, events = handlers.revoke_integration(store, issued.client_id, "c")
    assert isinstance(events[0], IntegrationRevoked)
    assert handlers.authenticate(store, PEPPER, issued.client_id, issued.client_secret, utcnow()) is None
    with pytest.raises(handlers.NotFound):
        handlers.rotate_secret(store, PEPPER, issued.client_id, 0, "c")


def test_drivers_are_keyed_by_lower_case_email(store):
    driver, events = handlers.register_driver(store, "acme", "Dana@Example.COM", "Dana", True, "c")
    assert driver["email"] == "dana@example.com" and isinstance(events[0], DriverRegistered)
    handlers.register_driver(store, "acme", "dana@example.com", None, True, "c")
    assert [d.name for d in store.drivers(driver["org_id"])] == ["Dana"]
    handlers.remove_driver(store, "acme", "DANA@example.com", "c")
    assert store.drivers(driver["org_id"]) == []
    with pytest.raises(handlers.NotFound):
        handlers.remove_driver(store, "acme", "dana@example.com", "c")
