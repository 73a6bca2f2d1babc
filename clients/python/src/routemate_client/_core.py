"""What the sync and async clients share: settings, the token cache, retry decisions, request shapes."""

from __future__ import annotations

import logging
import random
import time
from datetime import datetime, timezone
from typing import Any

import httpx
from pydantic import BaseModel

from routemate_client.errors import AuthenticationError, ConnectionFailedError, error_from, retry_after
from routemate_client.models import ImportAccepted, JobLinks, Token

__version__ = "0.1.0"
log = logging.getLogger("routemate_client")

TOKEN_PATH = "/v1/integration-token"
IMPORT_PATH = "/v1/integration-import"
JOBS_PATH = "/v1/integration-jobs"
WEBHOOKS_PATH = "/v1/integration-webhooks"
RETRY_STATUSES = frozenset({429, 502, 503, 504})


def etag(version: str | int) -> str:
    """An ETag as the platform sends it (`"7"`), from the tag itself or the job's `version`."""
    text = str(version).strip()
    return text if text.startswith(('"', "W/")) else f'"{text}"'


def replanned(job: Any, base: int) -> bool:
    """After an update (or a re-plan) from version `base`: the job moved on, and every stop still
    to visit has its place on the new route (or was found unroutable)."""
    if not job.settled or (job.version or 0) <= base:
        return False
    return all(s.sequence is not None or s.status != "pending" for s in job.stops)


def version_of(tag: str | int) -> int:
    text = str(tag).removeprefix("W/").strip('"')
    return int(text) if text.isdigit() else 0


def webhook_body(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


class Settings:
    """The knobs both clients take, with their defaults."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_retry_after: float = 120.0,
        refresh_margin: float = 60.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_id, self.client_secret = client_id, client_secret
        self.timeout, self.max_retries = timeout, max_retries
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.max_retry_after, self.refresh_margin = max_retry_after, refresh_margin
        self.headers = {"User-Agent": f"routemate-client-python/{__version__}", "Accept": "application/json"}


class TokenCache:
    """One bearer token per client, refreshed `refresh_margin` seconds (at most a tenth of its
    lifetime) before it expires, or when the platform refused it. Locking is the caller's."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.token: str | None = None
        self.refresh_at = 0.0

    def fresh(self) -> str | None:
        return self.token if self.token and time.monotonic() < self.refresh_at else None

    def store(self, response: httpx.Response) -> str:
        if response.status_code != 200:
            error = error_from(response)
            if response.status_code in (400, 401):
                raise AuthenticationError(
                    str(error.args[0]),
                    status=error.status,
                    code=error.code,
                    request_id=error.request_id,
                    problem=error.problem,
                )
            raise error
        token = Token.model_validate(response.json())
        margin = min(self.settings.refresh_margin, token.expires_in / 10)
        self.token, self.refresh_at = token.access_token, time.monotonic() + token.expires_in - margin
        return token.access_token

    def forget(self, token: str | None) -> None:
        """Drop `token` if it is still the cached one: of many callers refused at once, only the
        first causes a refresh; the rest find the new token already there."""
        if token is not None and token == self.token:
            self.token, self.refresh_at = None, 0.0

    def request_body(self) -> dict[str, str]:
        return {"client_id": self.settings.client_id, "client_secret": self.settings.client_secret}


def retry_delay(settings: Settings, attempt: int, response: httpx.Response | None) -> float | None:
    """Seconds to wait before retry `attempt` (0-based), or None to give up now.

    Exponential backoff with jitter (between half and all of base·2^attempt, capped); a
    `Retry-After` from the platform is honoured as a floor, unless it exceeds `max_retry_after`.
    """
    if attempt >= settings.max_retries:
        return None
    ceiling = min(settings.backoff_max, settings.backoff_base * 2**attempt)
    jittered = random.uniform(ceiling / 2, ceiling)
    told = retry_after(response) if response is not None else None
    if told is None:
        return jittered
    if told > settings.max_retry_after:
        return None
    return told + random.uniform(0, min(1.0, ceiling / 2))


def give_up_connecting(method: str, path: str, exc: Exception) -> ConnectionFailedError:
    return ConnectionFailedError(f"{method} {path} failed: {exc!r}", code="connection_failed")


def log_retry(method: str, path: str, why: str, delay: float, attempt: int, settings: Settings) -> None:
    log.info(
        "routemate: retrying %s %s after %s in %.2f s (retry %d of %d)",
        method,
        path,
        why,
        delay,
        attempt + 1,
        settings.max_retries,
    )


def dump(body: BaseModel | dict[str, Any]) -> dict[str, Any]:
    if isinstance(body, BaseModel):
        return body.model_dump(mode="json", exclude_none=True)
    return body


def accepted_from(job: dict[str, Any]) -> ImportAccepted:
    """The 202 shape for an import the platform answered with the whole job (a replay)."""
    location = f"{JOBS_PATH}/{job['job_id']}"
    return ImportAccepted(
        job_id=job["job_id"], external_job_id=job["external_job_id"], status=job["status"], links=JobLinks(job=location)
    )


def stop_status_body(status: str, occurred_at: datetime | None, **fields: Any) -> dict[str, Any]:
    """The body of a stop update. `occurred_at` is fixed here, so a retried update is the same report."""
    when = occurred_at or datetime.now(timezone.utc)
    body = {"status": status, "occurred_at": when.isoformat(), **{k: v for k, v in fields.items() if v is not None}}
    return body


def list_params(
    status: str | None, updated_since: datetime | None, driver_email: str | None, page_size: int, cursor: str | None
) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": page_size}
    if status:
        params["status"] = status
    if updated_since:
        params["updated_since"] = updated_since.isoformat()
    if driver_email:
        params["driver_email"] = driver_email
    if cursor:
        params["cursor"] = cursor
    return params
