"""The admin plane: its own app (listener), throttled wrong tokens, strong secrets in production."""

import pytest
from pydantic import ValidationError

from services.auth.settings import LOCAL_ADMIN_TOKEN, AuthSettings
from shared.settings import LOCAL_TOKEN_SIGNING_KEY

STRONG = "q7Rk2vX9mN4pL8sT1wY6zB3cF5hJ0dG2"


def test_the_admin_routes_are_not_on_the_public_app_nor_in_its_openapi(auth):
    public = auth.client.get("/openapi.json").json()["paths"]
    assert not [p for p in public if p.startswith("/admin")] and "/v1/integration-token" in public
    answer = auth.client.post("/admin/v1/integrations", json={"org": "acme"}, headers={"Authorization": "Bearer x"})
    assert answer.status_code == 404
    assert "/admin/v1/integrations" in auth.admin.get("/openapi.json").json()["paths"]


def test_wrong_admin_tokens_are_throttled_per_address(auth, settings):
    wrong = {"Authorization": "Bearer wrong"}
    codes = [auth.admin.get("/admin/v1/integrations", headers=wrong).status_code for _ in range(12)]
    assert codes == [401] * settings.admin_failure_threshold + [429] * (12 - settings.admin_failure_threshold)
    blocked = auth.admin.get("/admin/v1/integrations", headers={"Authorization": f"Bearer {LOCAL_ADMIN_TOKEN}"})
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert blocked.json()["code"] == "too_many_admin_failures"


@pytest.mark.parametrize(
    "env, says",
    [
        ({"token_signing_key": STRONG}, "ADMIN_TOKEN must be set"),
        ({"admin_token": "replace-me", "secret_pepper": STRONG, "token_signing_key": STRONG}, "ADMIN_TOKEN is a"),
        ({"admin_token": LOCAL_ADMIN_TOKEN, "secret_pepper": STRONG, "token_signing_key": STRONG}, "ADMIN_TOKEN is a"),
        ({"admin_token": "short-but-unknown", "secret_pepper": STRONG, "token_signing_key": STRONG}, "shorter"),
        ({"admin_token": STRONG, "secret_pepper": "changeme", "token_signing_key": STRONG}, "SECRET_PEPPER"),
        ({"admin_token": STRONG, "secret_pepper": STRONG, "token_signing_key": LOCAL_TOKEN_SIGNING_KEY}, "SIGNING"),
        ({"admin_token": STRONG, "secret_pepper": STRONG}, "TOKEN_SIGNING_KEY must be set"),
    ],
    ids=["none", "replace-me", "local-default", "short", "weak-pepper", "local-signing-key", "no-signing-key"],
)
def test_production_refuses_to_start_with_a_missing_weak_or_known_secret(env, says):
    with pytest.raises(ValidationError) as refused:
        AuthSettings(environment="production", **env)
    assert says in str(refused.value)


def test_production_starts_with_strong_secrets_and_local_mode_with_its_defaults():
    strong = AuthSettings(
        environment="production",
        admin_token=STRONG,
        secret_pepper=STRONG,
        token_signing_key=STRONG,
        internal_token=STRONG,
    )
    assert strong.signing_key == STRONG.encode()
    assert AuthSettings().admin_token.get_secret_value() == LOCAL_ADMIN_TOKEN


def test_kafka_sasl_needs_its_credentials_and_reaches_every_client():
    with pytest.raises(ValidationError):
        AuthSettings(kafka_security_protocol="SASL_PLAINTEXT")
    sasl = AuthSettings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="auth", kafka_sasl_password="pw")
    assert sasl.kafka_client_security() == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "auth",
        "sasl_plain_password": "pw",
    }
    assert AuthSettings().kafka_client_security() == {}


def test_without_redis_the_admin_api_answers_503_not_an_unthrottled_check(auth):
    auth.redis.down = True
    answer = auth.admin.get("/admin/v1/integrations", headers={"Authorization": f"Bearer {LOCAL_ADMIN_TOKEN}"})
    assert answer.status_code == 503 and answer.json()["code"] == "admin_throttle_unavailable"
    assert answer.headers["Retry-After"] == "2"
