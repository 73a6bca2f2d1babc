"""The console over HTTP through the real edge: CSRF, roles, organizations, sessions, secrets."""

import re
import ssl
import uuid

import httpx
import pytest

from shared.testing.stack import EDGE_TLS, TLS_CA, VAR
from tests.conftest import EXAMPLE, routemate
from tests.console_session import PASSWORD, ConsoleUser, add_member, new_org


@pytest.fixture
def admin(platform):
    org = new_org()
    user = ConsoleUser(platform)
    email = add_member(org, "admin")
    assert user.sign_in(email).status_code == 303
    yield user
    user.close()


def created(user: ConsoleUser, name: str = "ERP") -> tuple[str, str]:
    page = user.post("/settings/integrations", {"name": name})
    assert page.status_code == 201, page.text[:300]
    client_id = re.search(r'data-testid="client-id" id="client-id">([^<]+)<', page.text).group(1)
    secret = re.search(r'data-testid="client-secret" id="client-secret">([^<]+)<', page.text).group(1)
    return client_id, secret


def test_a_form_without_the_sessions_csrf_token_is_refused(admin):
    missing = admin.http.post("/settings/integrations", data={"name": "no token"})
    wrong = admin.post("/settings/integrations", {"name": "wrong token"}, token="x" * 43)
    assert (missing.status_code, wrong.status_code) == (403, 403)
    anonymous = ConsoleUser(admin.http.base_url)
    anonymous.http.get("/login")
    assert anonymous.http.post("/login", data={"email": "a@b.c", "password": "x"}).status_code == 403
    assert "wrong token" not in admin.http.get("/settings/integrations").text  # nothing was created


def test_a_viewer_reads_jobs_but_cannot_create_credentials(platform):
    org = new_org()
    viewer = ConsoleUser(platform)
    assert viewer.sign_in(add_member(org, "viewer")).status_code == 303
    assert viewer.http.get("/jobs").status_code == 200
    assert viewer.post("/settings/integrations", {"name": "sneaky"}).status_code == 403
    assert viewer.http.get("/members").status_code == 403
    assert 'action="/settings/integrations"' not in viewer.http.get("/settings/integrations").text


async def test_another_organizations_job_and_integration_are_not_found(admin, platform):
    client_id, secret = created(admin)
    async with httpx.AsyncClient(base_url=platform, timeout=60) as api:
        token = (await api.post("/v1/integration-token", json={"client_id": client_id, "client_secret": secret})).json()
        body = {**EXAMPLE, "external_job_id": f"CONSOLE-{client_id[-6:]}"}
        job = await api.post(
            "/v1/integration-import", json=body, headers={"Authorization": f"Bearer {token['access_token']}"}
        )
    assert job.status_code == 201, job.text
    job_id = job.json()["job_id"]
    assert admin.http.get(f"/jobs/{job_id}").status_code == 200
    other = ConsoleUser(platform)
    assert other.sign_in(add_member(new_org(), "admin")).status_code == 303
    assert other.http.get(f"/jobs/{job_id}").status_code == 404
    assert job_id not in other.http.get("/jobs").text
    assert other.post(f"/settings/integrations/{client_id}/revoke", {}).status_code == 404
    assert other.post(f"/settings/integrations/{client_id}/rotate", {"grace_seconds": "0"}).status_code == 404
    assert client_id not in other.http.get("/settings/integrations").text


def test_the_session_id_changes_at_sign_in_and_dies_at_sign_out(platform):
    email = add_member(new_org(), "admin")
    user = ConsoleUser(platform)
    token = user.csrf("/login")
    before = user.http.cookies["rm_console"]
    assert user.http.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token}).status_code == 303
    after = user.http.cookies["rm_console"]
    assert after != before
    planted = httpx.Client(base_url=platform, cookies={"rm_console": before})
    assert planted.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token}).status_code == 403
    assert user.http.get("/jobs").status_code == 200
    assert user.post("/logout", {}).status_code == 303
    stale = httpx.Client(base_url=platform, cookies={"rm_console": after})
    gone = stale.get("/jobs")
    assert gone.status_code == 303 and gone.headers["location"] == "/login"


def test_cookies_are_http_only_lax_and_secure_over_tls(platform):
    plain = httpx.get(f"{platform}/login").headers["set-cookie"].lower()
    tls = httpx.get(f"{EDGE_TLS}/login", verify=ssl.create_default_context(cafile=str(TLS_CA)))
    secure = tls.headers["set-cookie"].lower()
    assert "httponly" in plain and "samesite=lax" in plain and "secure" not in plain
    assert "httponly" in secure and "samesite=lax" in secure and "; secure" in secure
    csp = tls.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "style-src 'self'" in csp


def test_wrong_passwords_are_throttled_like_the_token_endpoint(platform):
    email = add_member(new_org(), "admin")
    user = ConsoleUser(platform)
    codes = [user.sign_in(email, "not the password").status_code for _ in range(6)]
    assert codes == [401] * 5 + [429]
    assert user.sign_in(email).status_code == 429  # locked for this address, even with the right one


def test_a_secret_is_shown_once_and_never_logged(admin):
    _, secret = created(admin, "Shown once")
    assert secret not in admin.http.get("/settings/integrations").text
    rotated = admin.post(
        "/settings/integrations/"
        + re.search(r'data-client-id="([^"]+)"', admin.http.get("/settings/integrations").text).group(1)
        + "/rotate",
        {"grace_seconds": "0"},
    )
    new_secret = re.search(r'data-testid="client-secret" id="client-secret">([^<]+)<', rotated.text).group(1)
    assert new_secret not in admin.http.get("/settings/integrations").text
    logs = "".join(p.read_text(errors="replace") for p in (VAR / "log").glob("*.log"))
    for value in (secret, new_secret, PASSWORD):
        assert value not in logs


def test_a_set_up_link_works_once_and_the_member_signs_in_after_it(platform):
    email = f"invited-{uuid.uuid4().hex[:8]}@example.com"
    added = routemate("user", "add", "--org", new_org(), "--email", email, "--role", "viewer")
    assert added["active"] is False and "setup_token" not in added
    path = "/" + added["setup_link"].split("/", 3)[3]
    user = ConsoleUser(platform)
    assert user.sign_in(email).status_code == 401  # no password yet
    form = {"token": path.split("token=")[1], "password": PASSWORD, "password_again": PASSWORD}
    assert user.http.post("/setup", data={**form, "csrf_token": user.csrf(path)}).status_code == 303
    assert user.http.post("/setup", data={**form, "csrf_token": user.csrf(path)}).status_code == 400
    assert user.sign_in(email).status_code == 303


def test_a_webhook_endpoint_of_another_organization_cannot_be_deleted(admin, platform):
    created = admin.post("/settings/webhooks", {"url": "https://hooks.example.com/a", "events": "job.routed"})
    assert created.status_code == 201
    endpoint = re.search(r'data-endpoint-id="([^"]+)"', created.text).group(1)
    other = ConsoleUser(platform)
    assert other.sign_in(add_member(new_org(), "admin")).status_code == 303
    assert endpoint not in other.http.get("/settings/webhooks").text
    assert other.post(f"/settings/webhooks/{endpoint}/delete", {}).status_code == 404
    assert endpoint in admin.http.get("/settings/webhooks").text
