"""Auth over the real stack: error shapes, rotation, revocation, expiry, lockout, no secret in logs."""

import asyncio
import uuid

import httpx
import pytest

from shared.testing.stack import ADMIN_URL, extra_port, service_url
from tests.conftest import ROOT, Tenant, extra_process, routemate

TOKEN_URL = "/v1/integration-token"


def assert_oauth_error(answer: httpx.Response, status: int, error: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == error and answer.json()["error_description"]
    assert answer.headers["Cache-Control"] == "no-store"
    if status == 401:
        assert answer.headers["WWW-Authenticate"].startswith("Basic")


async def test_token_endpoint_errors_follow_rfc6749(http: httpx.AsyncClient, tenant: Tenant):
    cid = tenant.creds["client_id"]
    assert_oauth_error(await http.post(TOKEN_URL, json={"client_id": cid}), 400, "invalid_request")
    assert_oauth_error(
        await http.post(TOKEN_URL, content=b"{oops", headers={"Content-Type": "application/json"}),
        400,
        "invalid_request",
    )
    assert_oauth_error(
        await http.post(TOKEN_URL, data={"grant_type": "password", "client_id": cid, "client_secret": "x"}),
        400,
        "unsupported_grant_type",
    )
    assert_oauth_error(
        await http.post(TOKEN_URL, content=b"x", headers={"Content-Type": "text/plain"}), 415, "invalid_request"
    )
    assert_oauth_error(
        await http.post(TOKEN_URL, json={"client_id": "\u00fc" * 10, "client_secret": "x"}), 401, "invalid_client"
    )
    big = await http.post(TOKEN_URL, json={"client_id": "a" * 20_000, "client_secret": "x"})
    assert_oauth_error(big, 413, "invalid_request")


async def test_an_unknown_client_and_a_wrong_secret_look_the_same(http: httpx.AsyncClient, tenant: Tenant):
    wrong = await http.post(TOKEN_URL, json={"client_id": tenant.creds["client_id"], "client_secret": "rm_cs_nope"})
    unknown = await http.post(TOKEN_URL, json={"client_id": "rm_ci_" + uuid.uuid4().hex, "client_secret": "rm_cs_nope"})
    assert_oauth_error(wrong, 401, "invalid_client")
    assert (wrong.status_code, wrong.json(), wrong.headers["WWW-Authenticate"]) == (
        unknown.status_code,
        unknown.json(),
        unknown.headers["WWW-Authenticate"],
    )


async def test_repeated_wrong_secrets_lock_the_client_out_and_say_nothing_of_its_existence(http: httpx.AsyncClient):
    existing = routemate("integration", "create", "--org", f"lock-{uuid.uuid4().hex[:8]}")["client_id"]
    locked = []
    for cid in (existing, "rm_ci_" + uuid.uuid4().hex):
        answers = [
            await http.post(TOKEN_URL, json={"client_id": cid, "client_secret": "rm_cs_guess"}) for _ in range(6)
        ]
        assert [a.status_code for a in answers] == [401] * 5 + [429]
        assert int(answers[-1].headers["Retry-After"]) > 0
        locked.append(answers[-1].json())
    assert locked[0] == locked[1]


async def test_revoking_an_integration_kills_its_live_tokens_at_once(http: httpx.AsyncClient, tenant: Tenant):
    assert (await http.get("/v1/integration-jobs", headers=tenant.auth)).status_code == 200
    for _ in range(3):  # ingest now keeps the verified token in its cache (shared.tokens.TokenCache)
        imported = await http.post(
            "/v1/integration-import", headers={**tenant.auth, "Prefer": "respond-async"}, json=tenant.job()
        )
        assert imported.status_code == 202, imported.text
    routemate("integration", "revoke", tenant.creds["client_id"])
    for path in ("/v1/integration-jobs", "/v1/integration-import"):
        answer = await (
            http.get(path, headers=tenant.auth)
            if path.endswith("jobs")
            else http.post(path, headers=tenant.auth, json=tenant.job())
        )
        assert answer.status_code == 401 and answer.json()["code"] == "invalid_token"
        assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
    again = await http.post(
        TOKEN_URL, json={"client_id": tenant.creds["client_id"], "client_secret": tenant.creds["client_secret"]}
    )
    assert again.status_code == 401


async def test_rotation_replaces_the_secret_and_ends_the_old_tokens(http: httpx.AsyncClient, tenant: Tenant):
    rotated = routemate("integration", "rotate", tenant.creds["client_id"])
    assert rotated["client_secret"] != tenant.creds["client_secret"]
    assert (await http.get("/v1/integration-jobs", headers=tenant.auth)).status_code == 401
    old = await http.post(
        TOKEN_URL, json={"client_id": tenant.creds["client_id"], "client_secret": tenant.creds["client_secret"]}
    )
    new = await http.post(
        TOKEN_URL, json={"client_id": tenant.creds["client_id"], "client_secret": rotated["client_secret"]}
    )
    assert old.status_code == 401 and new.status_code == 200
    listed = routemate("integration", "list", "--org", tenant.org)["integrations"]
    assert "client_secret" not in str(listed) and listed[0]["active"] is True


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer rm_at_short", "Token abc", "Bearer " + "rm_at_" + "x" * 43])
async def test_missing_malformed_or_unknown_tokens_get_401_problems(http: httpx.AsyncClient, header):
    answer = await http.get("/v1/integration-jobs", headers={"Authorization": header} if header else {})
    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


async def test_tokens_expire_after_their_ttl(http: httpx.AsyncClient, tenant: Tenant):
    """A second auth process with a 2 s TTL (same Redis and database), checked by ingest and status."""
    with extra_process("auth", extra_port("auth"), TOKEN_TTL_SECONDS="2") as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as short:
            answer = await short.post(
                TOKEN_URL, json={"client_id": tenant.creds["client_id"], "client_secret": tenant.creds["client_secret"]}
            )
        assert answer.json()["expires_in"] == 2
        auth = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        assert (await http.get("/v1/integration-jobs", headers=auth)).status_code == 200
        await asyncio.sleep(2.5)
        assert (await http.get("/v1/integration-jobs", headers=auth)).status_code == 401
        assert (await http.post("/v1/integration-import", headers=auth, json=tenant.job())).status_code == 401


async def test_admin_api_needs_the_admin_token(http: httpx.AsyncClient):
    async with httpx.AsyncClient(base_url=ADMIN_URL) as admin:
        for auth in ({}, {"Authorization": "Bearer wrong"}):
            answer = await admin.post("/admin/v1/integrations", json={"org": "x"}, headers=auth)
            assert answer.status_code == 401 and answer.json()["code"] == "invalid_admin_token"
    assert (await http.post("/admin/v1/integrations", json={"org": "x"})).status_code == 404  # not on the edge
    async with httpx.AsyncClient(base_url=service_url("auth")) as public:  # nor on auth's public listener
        assert (await public.post("/admin/v1/integrations", json={"org": "x"})).status_code == 404


async def test_no_secret_or_token_ever_reaches_the_logs(tenant: Tenant):
    await tenant.import_job(Prefer="respond-async")
    logs = "".join(
        (ROOT / "var/log" / f"{s}.log").read_text(errors="replace")
        for s in ("auth", "ingest", "status", "geocoder", "optimizer")
    )
    assert tenant.creds["client_secret"] not in logs
    assert tenant.token not in logs and tenant.token[6:] not in logs
