"""RFC 9457 problem+json: one exception type for the services and the handlers that render it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # FastAPI only when a service renders problems: `routemate optimize` raises them without it
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    412: "Precondition Failed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Problem(Exception):
    """An error a client sees, with a stable machine `code` and optional field errors."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.errors, self.headers, self.extra = errors, headers or {}, extra

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://routemate.dev/problems/{self.code}",
            "title": _TITLES.get(self.status, "Error"),
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


def problem_response(problem: Problem, instance: str | None = None) -> JSONResponse:
    from fastapi.responses import JSONResponse

    return JSONResponse(
        problem.body(instance), status_code=problem.status, headers=problem.headers, media_type=PROBLEM_JSON
    )


def json_pointer(loc: tuple[Any, ...] | list[Any]) -> str:
    """A pydantic error location as an RFC 6901 pointer into the request body."""
    parts = list(loc)
    if parts and parts[0] == "body":
        parts = parts[1:]
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts) if parts else ""


def field_errors(errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [
        {"pointer": json_pointer(e.get("loc", ())), "reason": e.get("msg", "invalid"), "type": e.get("type", "invalid")}
        for e in errors
    ]


async def _validation_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return problem_response(Problem(400, "invalid_json", "The request body is not valid JSON."), request.url.path)
    return problem_response(
        Problem(422, "validation_failed", "The request has invalid fields.", errors=field_errors(errors)),
        request.url.path,
    )


async def _http_handler(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return problem_response(
        Problem(exc.status_code, code, str(exc.detail), headers=dict(exc.headers or {})), request.url.path
    )


async def _problem_handler(request: Request, exc: Problem) -> JSONResponse:
    return problem_response(exc, request.url.path)


async def _unexpected_handler(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(Problem(500, "internal_error", "An unexpected error occurred."), request.url.path)


def install_problem_handlers(app: FastAPI) -> None:
    """Every error leaves the service as problem+json; no stack trace reaches a client."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    app.add_exception_handler(Problem, _problem_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    app.add_exception_handler(Exception, _unexpected_handler)
