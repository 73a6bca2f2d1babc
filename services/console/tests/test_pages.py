"""The console's pages in-process: sessions, CSRF, roles, headers, refreshing lists, refusals as pages."""

import re

from services.console.tests.conftest import MEMBERS, PASSWORD

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def sign_in(console, email: str = "ada@example.com") -> str:
    token = CSRF.search(console.client.get("/login").text).group(1)
    answer = console.client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert answer.status_code == 303 and answer.headers["location"] == "/jobs"
    return CSRF.search(console.client.get("/jobs").text).group(1)


def test_pages_need_a_member_and_the_sign_in_form_carries_a_csrf_token(console):
    console.status.answers["/internal/v1/orgs/org_a/jobs"] = {"jobs": [], "next_cursor": None}
    assert console.client.get("/jobs").headers["location"] == "/login"
    form = console.client.get("/login")
    assert CSRF.search(form.text) and "rm_console" in form.headers["set-cookie"]
    assert "HttpOnly" in form.headers["set-cookie"] and "samesite=lax" in form.headers["set-cookie"].lower()
    assert "Secure" not in form.headers["set-cookie"]
    forged = console.client.get("/login", headers={"X-Forwarded-Proto": "https"})  # not from a trusted proxy
    assert "Secure" not in forged.headers["set-cookie"]
    assert "Secure" in console.client.get("https://testserver/login").headers["set-cookie"]


def test_every_page_has_a_strict_policy_and_is_not_stored(console):
    page = console.client.get("/login")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp and "frame-ancestors 'none'" in csp
    assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "no-referrer"
    assert "<script>" not in page.text and "style=" not in page.text


def test_a_form_without_the_right_csrf_token_is_refused_and_nothing_is_called(console):
    sign_in(console)
    calls = len(console.auth.calls)
    assert console.client.post("/settings/integrations", data={"name": "x"}).status_code == 403
    assert console.client.post("/settings/integrations", data={"name": "x", "csrf_token": "no"}).status_code == 403
    assert [c for c in console.auth.calls[calls:] if c[0] == "POST"] == []


def test_signing_in_replaces_the_session_id_and_signing_out_ends_it(console):
    console.client.get("/login")
    before = console.client.cookies["rm_console"]
    token = sign_in(console)
    after = console.client.cookies["rm_console"]
    assert after != before and len(console.redis.values) == 1  # the anonymous session is gone
    assert console.client.post("/logout", data={"csrf_token": token}).status_code == 303
    assert console.redis.values == {}
    console.client.cookies.set("rm_console", after)
    assert console.client.get("/jobs").headers["location"] == "/login"


def test_a_wrong_password_shows_the_form_again_with_401(console):
    token = CSRF.search(console.client.get("/login").text).group(1)
    wrong = console.client.post("/login", data={"email": "ada@example.com", "password": "no", "csrf_token": token})
    assert wrong.status_code == 401 and "Wrong email or password" in wrong.text and PASSWORD not in wrong.text


def test_a_viewer_is_refused_creating_credentials_with_403(console):
    console.auth.answers["/internal/v1/orgs/org_a/integrations"] = {"integrations": []}
    token = sign_in(console, "vic@example.com")
    assert console.client.post("/settings/integrations", data={"name": "x", "csrf_token": token}).status_code == 403
    assert 'action="/settings/integrations"' not in console.client.get("/settings/integrations").text
    assert console.client.get("/members").status_code == 403


def test_a_created_secret_is_on_that_answer_only(console):
    token = sign_in(console)
    # The fake answers the list and the creation from the same path: one body serves both.
    console.auth.answers["/internal/v1/orgs/org_a/integrations"] = {
        "client_id": "rm_ci_1", "client_secret": "rm_cs_secret", "name": "ERP", "integrations": []
    }  # fmt: skip
    created = console.client.post("/settings/integrations", data={"name": "ERP", "csrf_token": token})
    assert created.status_code == 201 and "will not be shown again" in created.text
    assert 'data-testid="client-secret" id="client-secret">rm_cs_secret<' in created.text
    assert console.auth.calls[-2][2] == {"name": "ERP", "actor": "ada@example.com"}
    assert "rm_cs_secret" not in console.client.get("/settings/integrations").text


def test_the_jobs_page_refreshes_itself_only_while_jobs_are_in_flight(console):
    jobs = "/internal/v1/orgs/org_a/jobs"
    console.status.answers[jobs] = {"jobs": [{"job_id": "j1", "external_job_id": "A", "status": "processing",
                                              "stop_count": 2, "created_at": None}], "next_cursor": "c2"}  # fmt: skip
    sign_in(console)
    moving = console.client.get("/jobs?status=processing&date=2026-11-29")
    assert '<meta http-equiv="refresh" content="5">' in moving.text and "cursor=c2" in moving.text
    assert console.status.calls[-1][2] == {"limit": 25, "status": "processing", "created_on": "2026-11-29"}
    console.status.answers[jobs]["jobs"][0]["status"] = "completed"
    assert "http-equiv" not in console.client.get("/jobs").text


def test_a_job_of_another_organization_is_a_404_page(console):
    sign_in(console)
    missing = console.client.get("/jobs/j_other")
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]


def test_a_member_removed_meanwhile_is_signed_out_at_the_next_page(console, monkeypatch):
    sign_in(console)
    assert console.client.get("/jobs").status_code == 200
    monkeypatch.delitem(MEMBERS, "ada@example.com")  # auth no longer knows the member
    gone = console.client.get("/jobs")
    assert gone.status_code == 303 and gone.headers["location"] == "/login" and console.redis.values == {}


def test_metrics_answer_prometheus_but_not_a_request_relayed_by_a_proxy(console):
    assert console.client.get("/metrics").status_code == 200
    assert console.client.get("/metrics", headers={"X-Forwarded-For": "198.51.100.7"}).status_code == 404
    assert console.client.get("/metrics", headers={"X-Real-IP": "198.51.100.7"}).status_code == 404
