"""Our signatures verify with the independent `standardwebhooks` package; the retry schedule."""

import base64
import random
from datetime import timedelta

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from services.notifier.adapters.crypto import SecretBox
from services.notifier.signing import RETRY_SCHEDULE_S, body, new_secret, retry_delay, signed_headers
from shared.events import utcnow


def test_a_delivery_signed_by_us_verifies_with_standardwebhooks():
    secret = new_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    payload = body("job.routed", utcnow(), {"job_id": "job_1", "version": 3}).encode()
    headers = signed_headers([secret], "msg_1", int(utcnow().timestamp()), payload)
    assert Webhook(secret).verify(payload, headers) == {
        "type": "job.routed",
        "timestamp": payload.decode().split('"timestamp":"')[1].split('"')[0],
        "data": {"job_id": "job_1", "version": 3},
    }
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(payload, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(payload.replace(b"job_1", b"job_2"), headers)


def test_during_a_rotation_both_secrets_sign_and_either_verifies():
    old, new = new_secret(), new_secret()
    payload = b'{"type":"webhook.test"}'
    headers = signed_headers([new, old], "msg_2", int(utcnow().timestamp()), payload)
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(payload, headers)
    Webhook(new).verify(payload, headers)


def test_a_stale_timestamp_is_refused_by_receivers():
    secret = new_secret()
    payload = b"{}"
    headers = signed_headers([secret], "msg_3", int((utcnow() - timedelta(minutes=10)).timestamp()), payload)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(payload, headers)


def test_the_retry_schedule_is_the_standard_one_with_jitter_then_gives_up():
    assert RETRY_SCHEDULE_S == (5, 300, 1800, 7200, 18000, 36000, 36000)
    rand = random.Random(7)
    for attempt, base in enumerate(RETRY_SCHEDULE_S, start=1):
        wait = retry_delay(attempt, rand=rand).total_seconds()
        assert base * 0.9 <= wait <= base * 1.1
    assert retry_delay(len(RETRY_SCHEDULE_S) + 1) is None
    assert retry_delay(1, scale=0.01, rand=rand).total_seconds() == pytest.approx(0.05, rel=0.11)
    waits = {retry_delay(2, rand=rand) for _ in range(20)}
    assert len(waits) > 1  # jittered


def test_secrets_are_stored_encrypted_and_only_our_key_opens_them():
    box = SecretBox("a key of the notifier, long enough")
    secret = new_secret()
    sealed = box.seal(secret)
    assert secret not in sealed and box.seal(secret) != sealed  # a fresh nonce each time
    assert box.open(sealed) == secret
    with pytest.raises(Exception):  # noqa: B017 - cryptography's InvalidTag
        SecretBox("another key, just as long as that").open(sealed)
