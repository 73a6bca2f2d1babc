"""The private admin API through create_app: integrations and drivers, success and problem+json shapes."""

import asyncio

import httpx
import pytest

from services.auth.settings import LOCAL_ADMIN_TOKEN, AuthSettings
from shared import pii
from shared.settings import LOCAL_TOKEN_SIGNING_KEY
from shared.testing.waiting import wait_until
from shared.tokens import verify_token

ADMIN = {"Authorization": f"Bearer {LOCAL_ADMIN_TOKEN}"}
TOKEN_URL = "/v1/integration-token"
ROUTES = [
    ("POST", "/admin/v1/integrations", {"json": {"org": "acme"}}),
    ("GET", "/admin/v1/integrations", {}),
    ("POST", "/admin/v1/integrations/rm_ci_x/rotate", {}),
    ("POST", "/admin/v1/integrations/rm_ci_x/revoke", {}),
    ("POST", "/admin/v1/drivers", {"json": {"org": "acme", "email": "dana@example.com"}}),
    ("DELETE", "/admin/v1/drivers", {"params": {"org": "acme", "email": "dana@example.com"}}),
    ("GET", "/admin/v1/drivers", {"params": {"org": "acme"}}),
]


def assert_problem(answer: httpx.Response, status: int, code: str) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == code and answer.json()["status"] == status
    return answer.json()


def token_for(auth, creds: dict) -> httpx.Response:
    return auth.client.post(TOKEN_URL, json={k: creds[k] for k in ("client_id", "client_secret")})


def token_works(auth, token: str) -> bool:
    try:
        asyncio.run(verify_token(auth.redis, f"Bearer {token}", LOCAL_TOKEN_SIGNING_KEY.encode()))
    except Exception:  # noqa: BLE001 - the 401 problem of an ended token
        return False
    return True


def create(auth, **body) -> dict:
    answer = auth.admin.post("/admin/v1/integrations", json={"org": "acme", **body}, headers=ADMIN)
    assert answer.status_code == 201, answer.text
    return answer.json()


def opened(auth, event):
    """The event with its personal fields opened by the organization's data key."""
    return asyncio.run(pii.DataKeys(auth.redis, AuthSettings().kek_material).open_all([event]))[0]


def wait_for_event(auth, event_type: str):
    return wait_until(lambda: [e for e in auth.events if e.event_type == event_type], 5, 0.01, event_type)[-1]


@pytest.mark.parametrize("method, path, kwargs", ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_every_admin_route_needs_the_admin_token(auth, method, path, kwargs):
    for header in (None, "Bearer wrong", f"Basic {LOCAL_ADMIN_TOKEN}", f"Bearer {LOCAL_ADMIN_TOKEN}x"):
        answer = auth.admin.request(method, path, headers={"Authorization": header} if header else {}, **kwargs)
        assert_problem(answer, 401, "invalid_admin_token")
        assert answer.headers["WWW-Authenticate"] == 'Bearer realm="routemate-admin"'
    assert auth.events == []


def test_a_created_integration_is_shown_its_secret_once_and_can_sign_in(auth):
    creds = create(auth, name="shop")
    assert creds["client_id"].startswith("rm_ci_") and creds["client_secret"].startswith("rm_cs_")
    assert (creds["org"], creds["name"]) == ("acme", "shop") and creds["org_id"].startswith("org_")
    event = wait_for_event(auth, "IntegrationCreated")
    assert (event.client_id, event.org_id) == (creds["client_id"], creds["org_id"])
    assert token_for(auth, creds).status_code == 200
    listed = auth.admin.get("/admin/v1/integrations", params={"org": "acme"}, headers=ADMIN).json()["integrations"]
    assert [(i["client_id"], i["active"], i["revoked_at"]) for i in listed] == [(creds["client_id"], True, None)]
    assert creds["client_secret"] not in str(listed)


@pytest.mark.parametrize("body", [{}, {"org": ""}, {"org": "bad/org"}, {"org": "acme", "name": ""}])
def test_an_integration_without_a_proper_organization_is_refused_with_422(auth, body):
    answer = auth.admin.post("/admin/v1/integrations", json=body, headers=ADMIN)
    assert assert_problem(answer, 422, "validation_failed")["errors"]
    assert auth.events == []


def test_integrations_are_listed_per_organization(auth):
    acme, globex = create(auth), create(auth, org="globex")
    everyone = auth.admin.get("/admin/v1/integrations", headers=ADMIN).json()["integrations"]
    assert {(i["client_id"], i["org"]) for i in everyone} == {
        (acme["client_id"], "acme"),
        (globex["client_id"], "globex"),
    }
    nobody = auth.admin.get("/admin/v1/integrations", params={"org": "nobody"}, headers=ADMIN)
    assert nobody.json() == {"integrations": []}


def test_rotation_without_grace_ends_the_old_secret_and_its_tokens(auth):
    creds = create(auth)
    token = token_for(auth, creds).json()["access_token"]
    rotated = auth.admin.post(f"/admin/v1/integrations/{creds['client_id']}/rotate", headers=ADMIN)
    assert rotated.status_code == 200 and rotated.json()["old_secret_valid_until"] is None
    assert rotated.json()["client_secret"] != creds["client_secret"]
    assert wait_for_event(auth, "SecretRotated").client_id == creds["client_id"]
    assert not token_works(auth, token)
    assert token_for(auth, creds).status_code == 401
    assert token_for(auth, {**creds, "client_secret": rotated.json()["client_secret"]}).status_code == 200


def test_rotation_with_grace_keeps_the_old_secret_for_a_while(auth):
    creds = create(auth)
    token = token_for(auth, creds).json()["access_token"]
    rotated = auth.admin.post(
        f"/admin/v1/integrations/{creds['client_id']}/rotate", json={"grace_seconds": 60}, headers=ADMIN
    )
    assert rotated.status_code == 200 and rotated.json()["old_secret_valid_until"]
    assert token_works(auth, token) and token_for(auth, creds).status_code == 200


def test_revoking_ends_the_integration_and_its_live_tokens(auth):
    creds = create(auth)
    token = token_for(auth, creds).json()["access_token"]
    revoked = auth.admin.post(f"/admin/v1/integrations/{creds['client_id']}/revoke", headers=ADMIN)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["tokens_revoked"] == 1 and revoked.json()["revoked_at"]
    assert wait_for_event(auth, "IntegrationRevoked").client_id == creds["client_id"]
    assert not token_works(auth, token) and token_for(auth, creds).status_code == 401
    listed = auth.admin.get("/admin/v1/integrations", headers=ADMIN).json()["integrations"]
    assert listed[0]["active"] is False


@pytest.mark.parametrize("action", ["rotate", "revoke"])
def test_rotating_or_revoking_an_unknown_or_revoked_integration_is_404(auth, action):
    assert_problem(auth.admin.post(f"/admin/v1/integrations/rm_ci_nobody/{action}", headers=ADMIN), 404, "not_found")
    creds = create(auth)
    auth.admin.post(f"/admin/v1/integrations/{creds['client_id']}/revoke", headers=ADMIN)
    again = auth.admin.post(f"/admin/v1/integrations/{creds['client_id']}/{action}", headers=ADMIN)
    assert_problem(again, 404, "not_found")


def test_drivers_are_added_listed_and_removed_by_lower_case_email(auth):
    added = auth.admin.post(
        "/admin/v1/drivers", json={"org": "acme", "email": "Dana@Example.com", "name": "Dana"}, headers=ADMIN
    )
    assert added.status_code == 201, added.text
    assert {k: added.json()[k] for k in ("org", "email", "name", "active")} == {
        "org": "acme",
        "email": "dana@example.com",
        "name": "Dana",
        "active": True,
    }
    joined = wait_for_event(auth, "DriverRegistered")
    assert pii.is_sealed(joined.email) and pii.is_sealed(joined.name)  # the log holds the directory sealed
    assert opened(auth, joined).email == "dana@example.com"
    listed = auth.admin.get("/admin/v1/drivers", params={"org": "acme"}, headers=ADMIN)
    assert listed.json() == {"drivers": [{"email": "dana@example.com", "name": "Dana", "active": True}]}
    params = {"org": "acme", "email": "DANA@example.com"}
    removed = auth.admin.delete("/admin/v1/drivers", params=params, headers=ADMIN)
    assert removed.json() == {"org": "acme", "email": "dana@example.com", "removed": True}
    assert opened(auth, wait_for_event(auth, "DriverRemoved")).email == "dana@example.com"
    assert auth.admin.get("/admin/v1/drivers", params={"org": "acme"}, headers=ADMIN).json() == {"drivers": []}
    assert_problem(auth.admin.delete("/admin/v1/drivers", params=params, headers=ADMIN), 404, "not_found")


def test_a_driver_without_a_valid_email_or_organization_is_refused_with_422(auth):
    answer = auth.admin.post("/admin/v1/drivers", json={"org": "acme", "email": "not-an-email"}, headers=ADMIN)
    assert_problem(answer, 422, "validation_failed")
    assert_problem(auth.admin.get("/admin/v1/drivers", headers=ADMIN), 422, "validation_failed")
    assert auth.admin.get("/admin/v1/drivers", params={"org": "nobody"}, headers=ADMIN).json() == {"drivers": []}


def test_a_change_whose_event_cannot_be_published_answers_503_and_is_kept(auth_without_kafka):
    auth = auth_without_kafka
    for method, path, kwargs in (ROUTES[0], ROUTES[4]):
        answer = auth.admin.request(method, path, headers=ADMIN, **kwargs)
        assert_problem(answer, 503, "event_publish_failed")
        assert answer.headers["Retry-After"] == "5"
    assert len(auth.admin.get("/admin/v1/integrations", headers=ADMIN).json()["integrations"]) == 1
    assert len(auth.admin.get("/admin/v1/drivers", params={"org": "acme"}, headers=ADMIN).json()["drivers"]) == 1
