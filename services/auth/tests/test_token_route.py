"""POST /v1/integration-token through create_app: every success and RFC 6749 error shape, in-process."""

import asyncio
import base64

import httpx
import pytest

from services.auth.adapters.tokens import TokenStore
from services.auth.admin_handlers import Integrations
from services.auth.settings import LOCAL_ADMIN_TOKEN
from shared.settings import LOCAL_TOKEN_SIGNING_KEY
from shared.testing.fakes import MemoryRedis, RecordingBus
from shared.testing.waiting import wait_until
from shared.tokens import Principal, fingerprint, verify_token

TOKEN_URL = "/v1/integration-token"
KEY = LOCAL_TOKEN_SIGNING_KEY.encode()
ADMIN = {"Authorization": f"Bearer {LOCAL_ADMIN_TOKEN}"}


@pytest.fixture
def creds(auth) -> dict:
    return auth.admin.post("/admin/v1/integrations", json={"org": "acme"}, headers=ADMIN).json()


def assert_oauth_error(answer: httpx.Response, status: int, error: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == error and answer.json()["error_description"]
    assert answer.headers["Cache-Control"] == "no-store" and answer.headers["Pragma"] == "no-cache"
    if status == 401:
        assert answer.headers["WWW-Authenticate"] == 'Basic realm="routemate", error="invalid_client"'


def assert_token(auth, answer: httpx.Response, creds: dict) -> str:
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and body["access_token"].startswith("rm_at_")
    assert answer.headers["Cache-Control"] == "no-store"
    owner = asyncio.run(verify_token(auth.redis, f"Bearer {body['access_token']}", KEY))
    assert owner == Principal(creds["org_id"], creds["client_id"])  # ingest and status accept it
    return body["access_token"]


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def test_the_public_json_body_gets_a_token_and_an_audit_event(auth, creds):
    token = assert_token(auth, auth.client.post(TOKEN_URL, json=creds), creds)
    issued = wait_until(lambda: [e for e in auth.events if e.event_type == "TokenIssued"], 5, 0.01, "TokenIssued")
    assert issued[0].token_fingerprint == fingerprint(token) and issued[0].client_id == creds["client_id"]
    assert token not in issued[0].model_dump_json()


def test_the_rfc6749_form_body_gets_a_token(auth, creds):
    form = {"grant_type": "client_credentials", **{k: creds[k] for k in ("client_id", "client_secret")}}
    assert_token(auth, auth.client.post(TOKEN_URL, data=form), creds)


def test_http_basic_with_a_form_grant_gets_a_token(auth, creds):
    answer = auth.client.post(
        TOKEN_URL, data={"grant_type": "client_credentials"}, headers=basic(creds["client_id"], creds["client_secret"])
    )
    assert_token(auth, answer, creds)


def test_a_wrong_secret_and_an_unknown_client_get_the_same_invalid_client(auth, creds):
    wrong = auth.client.post(TOKEN_URL, json={"client_id": creds["client_id"], "client_secret": "rm_cs_nope"})
    unknown = auth.client.post(TOKEN_URL, json={"client_id": "rm_ci_nobody", "client_secret": "rm_cs_nope"})
    assert_oauth_error(wrong, 401, "invalid_client")
    assert (wrong.json(), wrong.headers["WWW-Authenticate"]) == (unknown.json(), unknown.headers["WWW-Authenticate"])


JSON, FORM_GRANT = {"Content-Type": "application/json"}, {"grant_type": "client_credentials"}


@pytest.mark.parametrize(
    "kwargs, status, error, says",
    [
        ({"json": {"client_id": "rm_ci_a"}}, 400, "invalid_request", "client_secret is required"),
        ({"content": b"{oops", "headers": JSON}, 400, "invalid_request", "not valid JSON"),
        ({"data": {"client_id": "a", "client_secret": "b"}}, 400, "invalid_request", "grant_type is required"),
        ({"data": {**FORM_GRANT, "grant_type": "password"}}, 400, "unsupported_grant_type", "client_credentials"),
        ({"content": b"x", "headers": {"Content-Type": "text/plain"}}, 415, "invalid_request", "application/json"),
        ({"json": {"client_id": "\u00fc" * 10, "client_secret": "x"}}, 401, "invalid_client", "failed"),
        ({"data": FORM_GRANT, "headers": {"Authorization": "Basic !!"}}, 401, "invalid_client", "Malformed"),
        ({"content": b"{}", "headers": {**JSON, "Content-Length": "x"}}, 400, "invalid_request", "Content-Length"),
    ],
    ids=[
        "no-secret",
        "bad-json",
        "no-grant",
        "password-grant",
        "text-plain",
        "non-ascii-id",
        "bad-basic",
        "bad-length",
    ],
)
def test_every_bad_request_gets_its_rfc6749_error(auth, kwargs, status, error, says):
    answer = auth.client.post(TOKEN_URL, **kwargs)
    assert_oauth_error(answer, status, error)
    assert says in answer.json()["error_description"]


def test_an_oversized_body_is_refused_with_413(auth, settings):
    big = auth.client.post(TOKEN_URL, json={"client_id": "a" * settings.max_token_request_bytes, "client_secret": "x"})
    assert_oauth_error(big, 413, "invalid_request")


def test_repeated_failures_lock_out_and_say_nothing_of_the_clients_existence(auth, creds, settings):
    locked = []
    for client_id in (creds["client_id"], "rm_ci_nobody"):
        body = {"client_id": client_id, "client_secret": "rm_cs_guess"}
        answers = [auth.client.post(TOKEN_URL, json=body) for _ in range(settings.lockout_threshold + 1)]
        assert [a.status_code for a in answers] == [401] * settings.lockout_threshold + [429]
        assert_oauth_error(answers[-1], 429, "invalid_client")
        assert 0 < int(answers[-1].headers["Retry-After"]) <= settings.lockout_seconds
        locked.append(answers[-1].json())
    assert locked[0] == locked[1]
    assert auth.client.post(TOKEN_URL, json=creds).status_code == 429  # even the right secret waits


def test_without_redis_the_token_endpoint_answers_503_with_retry_after(auth, creds):
    auth.redis.down = True
    answer = auth.client.post(TOKEN_URL, json=creds)
    assert_oauth_error(answer, 503, "temporarily_unavailable")
    assert answer.headers["Retry-After"] == "2"


def test_a_token_is_issued_even_when_its_audit_event_cannot_be_published(auth_without_kafka, store, settings):
    pepper = settings.secret_pepper.get_secret_value()
    integrations = Integrations(store, TokenStore(MemoryRedis(), KEY), RecordingBus(), pepper=pepper)
    made = asyncio.run(integrations.create("acme", None, "c"))
    creds = {"client_id": made.client_id, "client_secret": made.client_secret, "org_id": made.org_id}
    answer = auth_without_kafka.client.post(TOKEN_URL, json={k: creds[k] for k in ("client_id", "client_secret")})
    assert_token(auth_without_kafka, answer, creds)


def test_deep_json_at_the_token_endpoint_is_a_400_oauth_error_not_a_500(auth):
    deep = auth.client.post(TOKEN_URL, content=b"[" * 4000 + b"]" * 4000, headers={"Content-Type": "application/json"})
    assert_oauth_error(deep, 400, "invalid_request")
    assert "nests deeper" in deep.json()["error_description"]


def test_minting_past_the_clients_burst_is_429_slow_down_and_wrong_secrets_spend_none_of_it(auth, creds):
    """Ten tokens at once (the default burst), then RFC 8628's slow_down with Retry-After; the
    bucket is taken only once the secret matched, so guessing cannot spend another client's budget."""
    wrong = {"client_id": creds["client_id"], "client_secret": "rm_cs_nope"}
    assert_oauth_error(auth.client.post(TOKEN_URL, json=wrong), 401, "invalid_client")
    minted = [auth.client.post(TOKEN_URL, json=creds) for _ in range(11)]
    assert [m.status_code for m in minted] == [200] * 10 + [429]
    assert_oauth_error(minted[-1], 429, "slow_down")
    assert int(minted[-1].headers["Retry-After"]) >= 1 and minted[-1].headers["RateLimit-Remaining"] == "0"
    issued = wait_until(lambda: len([e for e in auth.events if e.event_type == "TokenIssued"]) >= 10, 5, 0.01)
    assert issued and len([e for e in auth.events if e.event_type == "TokenIssued"]) == 10  # none for the refusal
    other = auth.admin.post("/admin/v1/integrations", json={"org": "acme"}, headers=ADMIN).json()
    assert_token(auth, auth.client.post(TOKEN_URL, json=other), other)
