"""Standard Webhooks: secrets, the signed headers and the body of one delivery; the retry schedule."""

import base64
import hashlib
import hmac
import json
import random
import secrets
from datetime import datetime, timedelta
from typing import Any

SECRET_PREFIX = "whsec_"
# Delays after each failed attempt (Standard Webhooks' and Svix's schedule): 8 attempts over ~28 h.
RETRY_SCHEDULE_S = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
JITTER = 0.1  # +-10 %: endpoints that failed together do not all come back at once


def new_secret() -> str:
    """`whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of id.timestamp.body>` under the secret's key bytes."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secrets_: list[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three webhook headers; one signature per secret (old and new during a rotation)."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, msg_id, timestamp, body) for s in secrets_),
        "content-type": "application/json",
        "user-agent": "RouteMate-Webhooks/1.0",
    }


def body(event_type: str, at: datetime, data: dict[str, Any]) -> str:
    """`{"type", "timestamp", "data"}`, compact: the exact bytes every attempt signs and sends."""
    stamp = at.isoformat().replace("+00:00", "Z")
    return json.dumps({"type": event_type, "timestamp": stamp, "data": data}, separators=(",", ":"))


def retry_delay(attempts: int, scale: float = 1.0, rand: random.Random | None = None) -> timedelta | None:
    """How long to wait after the `attempts`-th failed attempt; None when the schedule is used up."""
    if attempts < 1 or attempts > len(RETRY_SCHEDULE_S):
        return None
    base = RETRY_SCHEDULE_S[attempts - 1] * scale
    jitter = (rand or random).uniform(-JITTER, JITTER)
    return timedelta(seconds=base * (1 + jitter))
