"""Standard Webhooks signatures (https://www.standardwebhooks.com), as RouteMate signs its callbacks.

A callback carries `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`: one or
more space-separated `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed with the endpoint's
secret `whsec_<base64>`. Verify the raw body, before parsing it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

TOLERANCE_SECONDS = 5 * 60
PREFIX = "whsec_"


class WebhookVerificationError(Exception):
    """The callback is not from RouteMate, was altered, or is too old (or too new) to trust."""


def _key(secret: str | bytes) -> bytes:
    if isinstance(secret, bytes):
        return secret
    return base64.b64decode(secret.removeprefix(PREFIX))


def sign(secret: str | bytes, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """The `webhook-signature` value for a body (what the sender computes)."""
    raw = body.encode() if isinstance(body, str) else body
    mac = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode() + raw, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance: int = TOLERANCE_SECONDS,
    now: float | None = None,
) -> Any:
    """Check a callback's signature and timestamp; return its JSON payload or raise
    `WebhookVerificationError`."""
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        msg_id, stamp, signatures = lower["webhook-id"], lower["webhook-timestamp"], lower["webhook-signature"]
    except KeyError as missing:
        raise WebhookVerificationError(f"missing header {missing}") from None
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookVerificationError("invalid webhook-timestamp") from None
    current = time.time() if now is None else now
    if timestamp < current - tolerance:
        raise WebhookVerificationError("message timestamp too old")
    if timestamp > current + tolerance:
        raise WebhookVerificationError("message timestamp too new")
    expected = sign(secret, msg_id, timestamp, body).split(",", 1)[1]
    for candidate in signatures.split(" "):
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected.encode()):
            return json.loads(body)
    raise WebhookVerificationError("no matching signature")
