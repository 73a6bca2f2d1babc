"""HTTP edge helpers shared by the gateways: request ids, bounded bodies, client addresses."""

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request

from shared import logs
from shared.errors import Problem, problem_response

if TYPE_CHECKING:
    from shared.broker import EventBus
    from shared.events import Event

log = logging.getLogger(__name__)


class RequestIds:
    """Pure ASGI middleware: the caller's (or the proxy's) request id, or a new one, becomes the
    correlation id of the request's logs and events, and is echoed back."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        rid = (
            incoming if 0 < len(incoming) <= 128 and incoming.isascii() and incoming.isprintable() else uuid.uuid4().hex
        )

        async def with_id(message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        token = logs.correlation_id.set(rid)
        try:
            await self.app(scope, receive, with_id)
        finally:
            logs.correlation_id.reset(token)


class RejectNul:
    """Pure ASGI middleware: a NUL in the path or query string is a 400, before any route or
    database sees it (PostgreSQL cannot store NUL; it used to surface as a 500)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and ("\x00" in scope["path"] or b"%00" in scope["query_string"]):
            problem = Problem(400, "invalid_request", "The URL may not contain NUL characters.")
            await problem_response(problem, scope["path"].replace("\x00", ""))(scope, receive, send)
            return
        await self.app(scope, receive, send)


def install_request_ids(app: FastAPI) -> None:
    app.add_middleware(RequestIds)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, or a 413 problem as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Problem(400, "invalid_content_length", "Content-Length must be a number.")
        if int(declared) > limit:
            raise Problem(413, "body_too_large", f"The request body is over {limit} bytes.", limit_bytes=limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, "body_too_large", f"The request body is over {limit} bytes.", limit_bytes=limit)
        chunks.append(chunk)
    return b"".join(chunks)


def client_address(request: Request, trusted_proxies: tuple[str, ...]) -> str:
    """The caller's address; the proxy's X-Real-IP is believed only from a trusted proxy."""
    peer = request.client.host if request.client else "unknown"
    if peer in trusted_proxies:
        forwarded = request.headers.get("x-real-ip", "").strip()
        if forwarded and len(forwarded) <= 64:
            return forwarded
    return peer


async def publish_or_unavailable(bus: "EventBus", event: "Event", seconds: float, what: str) -> None:
    """Publish `event` and return once Kafka acknowledged it; otherwise a 503 problem saying that
    `what` was not recorded (nothing is accepted unless the broker has it)."""
    try:
        await asyncio.wait_for(bus.publish(event), seconds)
    except Exception as exc:  # noqa: BLE001 - any publish failure means: not accepted
        log.warning("%s not accepted, Kafka did not acknowledge: %s", what, type(exc).__name__)
        raise Problem(
            503,
            "dependency_unavailable",
            f"{what} could not be recorded: the event broker is unavailable; retry shortly.",
            headers={"Retry-After": "5"},
        ) from None


def etag_matches(header: str | None, etag: str, *, weak: bool) -> bool:
    """Whether an If-Match (strong comparison) or If-None-Match (`weak`) header names `etag`:
    `*`, or a comma-separated list of entity tags (RFC 9110 section 13.1)."""
    if header is None:
        return False
    for tag in (part.strip() for part in header.split(",")):
        if tag == "*":
            return True
        if tag.startswith("W/"):
            if not weak:
                continue  # a weak tag never matches in a strong comparison
            tag = tag[2:]
        if tag == etag.removeprefix("W/"):
            return True
    return False
