"""The webhooks API through create_app: tenant-scoped, secrets shown once, problems with pointers."""

import httpx
import pytest

from services.notifier.tests.conftest import DNS, OTHER_ORG, Notifier, auth, settings

BASE = "/v1/integration-webhooks"
URL = "https://hooks.example.com/routemate"


async def test_an_endpoint_is_created_listed_read_changed_and_deleted(notifier: Notifier):
    created = await notifier.endpoint(URL, ["job.routed", "stop.status_changed", "job.routed"])
    assert created["secret"].startswith("whsec_") and created["status"] == "active"
    assert created["events"] == ["job.routed", "stop.status_changed"]
    assert created["id"].startswith("wh_") and created["created_at"].endswith("Z")
    listed = (await notifier.http.get(BASE, headers=auth())).json()["endpoints"]
    assert [e["id"] for e in listed] == [created["id"]] and "secret" not in listed[0]
    one = await notifier.http.get(f"{BASE}/{created['id']}", headers=auth())
    assert one.status_code == 200 and "secret" not in one.json()
    changed = await notifier.http.patch(
        f"{BASE}/{created['id']}", json={"events": ["job.completed"], "description": "ERP"}, headers=auth()
    )
    assert changed.status_code == 200
    assert changed.json()["events"] == ["job.completed"] and changed.json()["description"] == "ERP"
    assert (await notifier.http.delete(f"{BASE}/{created['id']}", headers=auth())).status_code == 204
    assert (await notifier.http.get(f"{BASE}/{created['id']}", headers=auth())).status_code == 404


async def test_another_organizations_endpoint_does_not_exist(notifier: Notifier):
    created = await notifier.endpoint(URL)
    for method, path in [
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("POST", "/rotate-secret"),
        ("POST", "/test"),
        ("GET", "/deliveries"),
    ]:
        kwargs = {"json": {}} if method in ("PATCH", "POST") else {}
        answer = await notifier.http.request(method, f"{BASE}/{created['id']}{path}", headers=auth(OTHER_ORG), **kwargs)
        assert answer.status_code == 404, (method, path)
        assert answer.json()["code"] == "webhook_not_found"
    assert (await notifier.http.get(BASE, headers=auth(OTHER_ORG))).json()["endpoints"] == []


@pytest.mark.parametrize(
    ("body", "pointer", "code"),
    [
        ({"url": "ftp://hooks.example.com/x", "events": ["job.routed"]}, "/url", "invalid_webhook_url"),
        ({"url": "http://127.0.0.1:9/x", "events": ["job.routed"]}, "/url", "invalid_webhook_url"),
        ({"url": "http://internal.example.com/x", "events": ["job.routed"]}, "/url", "invalid_webhook_url"),
        ({"url": URL, "events": ["job.routed", "job.exploded"]}, "/events/1", "validation_failed"),
        ({"url": URL, "events": []}, "/events", "validation_failed"),
        ({"url": URL}, "/events", "validation_failed"),
        ({"url": URL, "events": ["job.routed"], "secret": "mine"}, "/secret", "validation_failed"),
    ],
)
async def test_bad_registrations_are_422_with_a_pointer(tmp_path, body, pointer, code):
    from services.notifier.tests.conftest import fake_resolver  # noqa: F401 - the DNS the fixture uses

    DNS["internal.example.com"] = ["10.0.0.7"]
    async with _strict(tmp_path) as strict:
        answer = await strict.http.post(BASE, json=body, headers=auth())
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == code
    assert pointer in [e["pointer"] for e in answer.json()["errors"]]


async def test_production_requires_https(tmp_path):
    production = {
        "environment": "production",
        "webhook_secret_key": "k" * 40,
        "admin_token": "a" * 40,
        "token_signing_key": "Zk3q9VbX2mN7pL4tR8wY1cH6jD0sF5gA",
        "data_key_encryption_key": "Qw8eR4tY2uI6oP0aS3dF7gH1jK5lZ9xC",
    }
    async with _strict(tmp_path, **production) as prod:
        answer = await prod.http.post(
            BASE, json={"url": "http://hooks.example.com/x", "events": ["job.routed"]}, headers=auth()
        )
        assert answer.status_code == 422 and "https" in answer.json()["detail"]
        assert (
            await prod.http.post(BASE, json={"url": URL, "events": ["job.routed"]}, headers=auth())
        ).status_code == 201


def test_production_refuses_the_local_secret_key_and_private_targets():
    signed = {
        "environment": "production",
        "token_signing_key": "Zk3q9VbX2mN7pL4tR8wY1cH6jD0sF5gA",
        "data_key_encryption_key": "Qw8eR4tY2uI6oP0aS3dF7gH1jK5lZ9xC",
    }
    with pytest.raises(ValueError, match="ADMIN_TOKEN"):
        settings(**signed, webhook_allow_private_targets=False, webhook_secret_key="k" * 40)
    with pytest.raises(ValueError, match="WEBHOOK_SECRET_KEY"):
        settings(**signed, webhook_allow_private_targets=False, admin_token="a" * 40)
    with pytest.raises(ValueError, match="local testing only"):
        settings(**signed, webhook_secret_key="k" * 40, admin_token="a" * 40)
    with pytest.raises(ValueError, match="TOKEN_SIGNING_KEY"):
        settings(
            environment="production",
            webhook_secret_key="k" * 40,
            admin_token="a" * 40,
            data_key_encryption_key="Qw8eR4tY2uI6oP0aS3dF7gH1jK5lZ9xC",
        )


async def test_no_token_is_401_and_a_bad_cursor_400(notifier: Notifier):
    assert (await notifier.http.get(BASE)).status_code == 401
    created = await notifier.endpoint(URL)
    answer = await notifier.http.get(f"{BASE}/{created['id']}/deliveries?cursor=abc", headers=auth())
    assert answer.status_code == 400 and answer.json()["code"] == "invalid_cursor"
    missing = await notifier.http.post(f"{BASE}/{created['id']}/deliveries/msg_nope/redeliver", headers=auth())
    assert missing.status_code == 404 and missing.json()["code"] == "delivery_not_found"


async def test_rotating_shows_a_new_secret_once_and_reports_the_grace(notifier: Notifier):
    created = await notifier.endpoint(URL)
    rotated = await notifier.http.post(
        f"{BASE}/{created['id']}/rotate-secret", json={"grace_seconds": 600}, headers=auth()
    )
    assert rotated.status_code == 200
    assert rotated.json()["secret"] != created["secret"] and rotated.json()["previous_secret_valid_until"]
    too_long = await notifier.http.post(
        f"{BASE}/{created['id']}/rotate-secret", json={"grace_seconds": 10**7}, headers=auth()
    )
    assert too_long.status_code == 422 and too_long.json()["errors"][0]["pointer"] == "/grace_seconds"


def _strict(tmp_path, **over):
    """A second notifier that enforces the address rules (the fixture's allows private targets)."""
    from contextlib import asynccontextmanager

    import httpx

    from services.notifier.app import create_app
    from services.notifier.tests.conftest import TOKENS, fake_resolver
    from shared.db import make_engine
    from shared.testing.fakes import MemoryRedis, seed_token

    @asynccontextmanager
    async def running():
        config = settings(**{"webhook_allow_private_targets": False, **over})
        redis = MemoryRedis()
        for org, token in TOKENS.items():
            seed_token(redis, token, org, "rm_ci_x", key=config.signing_key)
        app = create_app(
            config, redis=redis, engine=make_engine(f"sqlite:///{tmp_path / 'strict.db'}"), resolver=fake_resolver
        )
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://n") as http:
            yield Notifier(app, http, None, [])  # type: ignore[arg-type]

    return running()


async def test_the_admin_api_is_on_its_own_listener_needs_the_admin_token_and_scopes_by_organization(
    notifier: Notifier,
):
    admin = {"Authorization": "Bearer routemate-local-admin"}
    body = {"org_id": "org_1", "url": URL, "events": ["job.routed"]}
    public = await notifier.http.post("/admin/v1/webhooks", json=body, headers=admin)
    assert public.status_code == 404  # not on the public listener, whatever the token
    transport = httpx.ASGITransport(app=notifier.app.state.admin_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://notifier-admin") as http:
        assert (await http.post("/admin/v1/webhooks", json=body, headers=auth())).status_code == 401
        created = await http.post("/admin/v1/webhooks", json=body, headers=admin)
        assert created.status_code == 201 and created.json()["secret"].startswith("whsec_")
        listed = await notifier.http.get("/v1/integration-webhooks", headers=auth())
        assert [e["id"] for e in listed.json()["endpoints"]] == [created.json()["id"]]
        other = await http.delete(f"/admin/v1/webhooks/{created.json()['id']}?org_id=org_2", headers=admin)
        assert other.status_code == 404
        gone = await http.delete(f"/admin/v1/webhooks/{created.json()['id']}?org_id=org_1", headers=admin)
        assert gone.status_code == 204
        assert (await http.get("/v1/integration-webhooks", headers=auth())).status_code == 404
        assert (await http.get("/healthz")).status_code == 200


def test_the_admin_port_must_differ_from_the_public_one():
    with pytest.raises(ValueError, match="NOTIFIER_ADMIN_PORT"):
        settings(notifier_port=9000, notifier_admin_port=9000)
