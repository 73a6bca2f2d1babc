"""Authentication over the real stack: the lockout aimed at (client_id, address) pairs, forwarded
addresses believed only from the proxy, token records bound to the server, grace-period tokens,
revocation racing issuance, and the admin API on its own listener."""

import asyncio
import os
import secrets
import subprocess
import sys
import uuid

import httpx
import pytest
import redis.asyncio as aioredis

from shared.testing.stack import ADMIN_URL, REDIS_URL, extra_port, service_url
from shared.testing.waiting import async_wait_until
from shared.tokens import new_token, token_digest, token_key
from tests.conftest import ROOT, Tenant, routemate

TOKEN_URL = "/v1/integration-token"
ATTACKER, OWNER = "203.0.113.66", "198.51.100.7"
ADMIN = {"Authorization": "Bearer routemate-local-admin"}


@pytest.fixture
async def auth(platform):
    """Auth's public listener reached as the edge reaches it: from 127.0.0.1, a trusted proxy,
    whose X-Real-IP names the caller."""
    async with httpx.AsyncClient(base_url=service_url("auth"), timeout=30) as client:
        yield client


def body(creds: dict, secret: str | None = None) -> dict:
    return {"client_id": creds["client_id"], "client_secret": secret or creds["client_secret"]}


async def from_address(auth: httpx.AsyncClient, creds: dict, address: str, secret: str | None = None):
    return await auth.post(TOKEN_URL, json=body(creds, secret), headers={"X-Real-IP": address})


async def jobs_status(http: httpx.AsyncClient, token: str) -> int:
    return (await http.get("/v1/integration-jobs", headers={"Authorization": f"Bearer {token}"})).status_code


async def test_an_attacker_hammering_a_client_id_locks_only_itself_out(auth, http, tenant: Tenant):
    wrong = [(await from_address(auth, tenant.creds, ATTACKER, "rm_cs_guess")).status_code for _ in range(6)]
    assert wrong == [401] * 5 + [429]
    # The pair lock still stops the brute force: even a right guess from the attacker's address waits.
    assert (await from_address(auth, tenant.creds, ATTACKER)).status_code == 429
    # The integration itself, from its own address, is not locked out by someone else's guesses.
    owner = await from_address(auth, tenant.creds, OWNER)
    assert owner.status_code == 200, owner.text
    assert await jobs_status(http, owner.json()["access_token"]) == 200


async def test_forwarding_headers_from_callers_are_not_believed(http, auth, tenant: Tenant):
    """Through the edge, nginx replaces X-Real-IP with the real peer; straight to the service from
    an address that is not a trusted proxy, the headers are ignored. Either way a caller can
    neither aim the lock at someone else's address nor dodge it by changing the headers."""
    for n in range(6):
        spoofed = {"X-Real-IP": OWNER, "X-Forwarded-For": f"{OWNER}, 192.0.2.{n}"}
        answer = await http.post(TOKEN_URL, json=body(tenant.creds, "rm_cs_guess"), headers=spoofed)
    assert answer.status_code == 429  # counted against the caller's real address, whatever it claimed
    untrusted = httpx.AsyncHTTPTransport(local_address="127.0.0.2")  # a peer outside trusted_proxies
    async with httpx.AsyncClient(base_url=service_url("auth"), transport=untrusted, timeout=30) as direct:
        codes = [
            (
                await direct.post(TOKEN_URL, json=body(tenant.creds, "rm_cs_guess"), headers={"X-Real-IP": OWNER})
            ).status_code
            for _ in range(6)
        ]
    assert codes == [401] * 5 + [429]
    assert (await from_address(auth, tenant.creds, OWNER)).status_code == 200  # the owner was never the target


async def test_a_token_record_written_into_redis_by_anyone_else_is_refused(http, tenant: Tenant):
    forged, tampered = new_token(), new_token()
    store = aioredis.Redis.from_url(REDIS_URL)
    try:
        await store.hset(token_key(token_digest(forged)), mapping={"org_id": "org_victim", "client_id": "rm_ci_x"})
        real = await store.hgetall(token_key(token_digest(tenant.token)))
        await store.hset(token_key(token_digest(tampered)), mapping={**real, b"org_id": b"org_victim"})
        for key in (token_key(token_digest(forged)), token_key(token_digest(tampered))):
            await store.expire(key, 60)
    finally:
        await store.aclose()
    for token in (forged, tampered):
        answer = await http.get("/v1/integration-jobs", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401 and answer.json()["code"] == "invalid_token"
        assert (
            await http.post("/v1/integration-import", headers={"Authorization": f"Bearer {token}"})
        ).status_code == 401
    assert await jobs_status(http, tenant.token) == 200  # the server's own record still works


async def test_a_token_minted_with_the_old_secret_ends_with_the_rotation_grace(http, tenant: Tenant):
    rotated = routemate("integration", "rotate", tenant.creds["client_id"], "--grace-seconds", "3")
    old = await http.post(TOKEN_URL, json=body(tenant.creds))
    new = await http.post(TOKEN_URL, json=body(tenant.creds, rotated["client_secret"]))
    assert old.status_code == 200 and old.json()["expires_in"] <= 3
    assert new.json()["expires_in"] == 3600
    assert await jobs_status(http, old.json()["access_token"]) == 200

    async def old_token_ended() -> bool:
        return await jobs_status(http, old.json()["access_token"]) == 401

    await async_wait_until(old_token_ended, 8, 0.2, "the grace-period token to end with the grace")
    assert await jobs_status(http, new.json()["access_token"]) == 200


async def test_no_token_minted_while_an_integration_is_revoked_survives_the_revocation(http, auth, tenant: Tenant):
    async def mint() -> httpx.Response:
        return await auth.post(
            TOKEN_URL, json=body(tenant.creds), headers={"X-Real-IP": f"10.9.{uuid.uuid4().int % 250}.1"}
        )

    async def revoke() -> httpx.Response:
        await asyncio.sleep(0.02)  # let the first mints get under way
        async with httpx.AsyncClient(base_url=ADMIN_URL, timeout=30) as admin:
            return await admin.post(f"/admin/v1/integrations/{tenant.creds['client_id']}/revoke", headers=ADMIN)

    *minted, revoked = await asyncio.gather(*[mint() for _ in range(60)], revoke())
    assert revoked.status_code == 200, revoked.text
    tokens = [m.json()["access_token"] for m in minted if m.status_code == 200]
    # 429: past the client's mint burst (README "Limits"); those never got a token either
    assert {m.status_code for m in minted} <= {200, 401, 429}
    survivors = [t for t in tokens + [tenant.token] if await jobs_status(http, t) != 401]
    assert survivors == [], f"{len(survivors)} of {len(tokens)} tokens outlived the revocation"


async def test_the_admin_api_listens_apart_and_throttles_wrong_tokens(http, auth):
    public = (await auth.get("/openapi.json")).json()["paths"]
    assert "/v1/integration-token" in public and not [p for p in public if p.startswith("/admin")]
    assert (await auth.get("/admin/v1/integrations", headers=ADMIN)).status_code == 404
    async with httpx.AsyncClient(base_url=ADMIN_URL, timeout=30) as admin:
        assert (await admin.get("/admin/v1/integrations", headers=ADMIN)).status_code == 200
        wrong = [
            (await admin.get("/admin/v1/integrations", headers={"Authorization": "Bearer guess"})).status_code
            for _ in range(11)
        ]
        assert wrong == [401] * 10 + [429]
        blocked = await admin.get("/admin/v1/integrations", headers=ADMIN)
        assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0


@pytest.mark.parametrize(
    "service, weak",
    [
        ("auth", {"ADMIN_TOKEN": "replace-me"}),
        ("auth", {"SECRET_PEPPER": "changeme"}),
        ("ingest", {"TOKEN_SIGNING_KEY": ""}),
    ],
    ids=["auth-placeholder-admin-token", "auth-known-pepper", "ingest-no-signing-key"],
)
def test_a_production_process_refuses_to_start_with_a_weak_or_missing_secret(service, weak):
    names = ("ADMIN_TOKEN", "SECRET_PEPPER", "TOKEN_SIGNING_KEY", "INTERNAL_TOKEN", "DATA_KEY_ENCRYPTION_KEY")
    strong = {name: secrets.token_hex(32) for name in names}
    env = {**os.environ, **strong, **weak, "ENVIRONMENT": "production", "LOG_FILE": ""}
    env.update({f"{service.upper()}_PORT": str(extra_port(service)), "AUTH_ADMIN_PORT": str(extra_port("auth") + 10)})
    env["NOTIFIER_ADMIN_PORT"] = str(extra_port("notifier") + 10)
    env = {k: v for k, v in env.items() if v != ""}
    done = subprocess.run(
        [sys.executable, "-m", f"services.{service}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert next(iter(weak)) in done.stderr and strong["ADMIN_TOKEN"] not in done.stderr
