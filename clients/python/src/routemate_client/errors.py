"""Errors the client raises: one per kind of answer, all carrying the problem+json details."""

from __future__ import annotations

from typing import Any

import httpx


class RouteMateError(Exception):
    """An answer the client could not turn into a result.

    `code` is the stable machine code (`validation_failed`, `idempotency_conflict`, `invalid_client`…),
    `errors` the field errors of a 422 (`{"pointer", "reason"}`), `request_id` the `X-Request-ID` to
    quote to the operator, `problem` the whole body.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        problem: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.errors = status, code, errors or []
        self.request_id, self.retry_after, self.problem = request_id, retry_after, problem or {}

    def __str__(self) -> str:
        where = f" (request {self.request_id})" if self.request_id else ""
        return f"{self.status or '-'} {self.code or 'error'}: {self.args[0]}{where}"


class AuthenticationError(RouteMateError):
    """Wrong client credentials, or a token the platform refused even after a fresh one."""


class InvalidRequestError(RouteMateError):
    """400, 413, 415 or 422: the request itself is wrong; see `errors`."""


class NotFoundError(RouteMateError):
    """No such job or stop for this organization."""


class ConflictError(RouteMateError):
    """409: `idempotency_conflict` (another body under the same external_job_id) or `illegal_transition`."""


class PreconditionFailed(RouteMateError):
    """412: the job changed since the ETag you sent (`If-Match`); `current_etag` is its ETag now:
    read the job again, apply your change to it, and send it with that ETag."""

    @property
    def current_etag(self) -> str | None:
        version = self.problem.get("current_version")
        return self._etag or (f'"{version}"' if version is not None else None)

    _etag: str | None = None


class RateLimitedError(RouteMateError):
    """429, still refused after the retries; `retry_after` says how long to wait."""


class UnavailableError(RouteMateError):
    """503 or another 5xx, still failing after the retries; nothing was recorded."""


class ConnectionFailedError(RouteMateError):
    """The platform could not be reached, even after the retries."""


class JobWaitTimeout(RouteMateError):
    """`import_job(wait=True)` gave up waiting for the job to settle; it is still being routed."""


_BY_STATUS: dict[int, type[RouteMateError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    409: ConflictError,
    412: PreconditionFailed,
    413: InvalidRequestError,
    415: InvalidRequestError,
    422: InvalidRequestError,
    429: RateLimitedError,
}


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds; an HTTP date counts as unknown)."""
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def error_from(response: httpx.Response) -> RouteMateError:
    """The exception for an error answer: problem+json, an RFC 6749 error, or anything else."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    code = body.get("code") or body.get("error")
    message = body.get("detail") or body.get("error_description") or body.get("title") or response.reason_phrase
    kind = _BY_STATUS.get(response.status_code, UnavailableError if response.status_code >= 500 else RouteMateError)
    error = kind(
        str(message),
        status=response.status_code,
        code=code,
        errors=body.get("errors"),
        request_id=response.headers.get("x-request-id"),
        retry_after=retry_after(response),
        problem=body,
    )
    if isinstance(error, PreconditionFailed):
        error._etag = response.headers.get("etag")
    return error
