"""webhooks.verify against the independent `standardwebhooks` package."""

import base64
import json
import os
import time
from datetime import datetime, timedelta, timezone

import pytest
import standardwebhooks

from routemate_client import webhooks

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
BODY = json.dumps({"type": "job.assigned", "data": {"job_id": "job_1"}})


def signed(body: str = BODY, when: datetime | None = None, msg_id: str = "msg_1", secret: str = SECRET) -> dict:
    when = when or datetime.now(timezone.utc)
    signature = standardwebhooks.Webhook(secret).sign(msg_id, when, body)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(when.timestamp())), "webhook-signature": signature}


def test_a_standard_webhooks_signature_verifies():
    assert webhooks.verify(SECRET, signed(), BODY) == json.loads(BODY)
    assert webhooks.verify(SECRET, {k.title(): v for k, v in signed().items()}, BODY.encode())


def test_one_valid_signature_among_several_is_enough():
    headers = signed()
    headers["webhook-signature"] = "v1,AAAA " + headers["webhook-signature"]
    assert webhooks.verify(SECRET, headers, BODY)


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        (signed(), BODY.replace("job_1", "job_2")),  # altered body
        (signed(secret="whsec_" + base64.b64encode(b"another secret key").decode()), BODY),
        (signed(when=datetime.now(timezone.utc) - timedelta(minutes=6)), BODY),  # too old
        (signed(when=datetime.now(timezone.utc) + timedelta(minutes=6)), BODY),  # too new
        ({"webhook-id": "msg_1", "webhook-timestamp": str(int(time.time()))}, BODY),  # unsigned
    ],
    ids=["altered", "other-secret", "too-old", "too-new", "unsigned"],
)
def test_forged_or_stale_callbacks_are_refused(headers, body):
    with pytest.raises(webhooks.WebhookVerificationError):
        webhooks.verify(SECRET, headers, body)


def test_what_we_sign_the_reference_verifies():
    stamp = int(time.time())
    headers = {
        "webhook-id": "msg_2",
        "webhook-timestamp": str(stamp),
        "webhook-signature": webhooks.sign(SECRET, "msg_2", stamp, BODY),
    }
    assert standardwebhooks.Webhook(SECRET).verify(BODY, headers) == json.loads(BODY)
