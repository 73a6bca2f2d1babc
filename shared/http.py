"""HTTP edge helpers shared by the gateways: request ids, bounded bodies, client addresses."""

import asyncio
import functools
import hashlib
import hmac
import ipaddress
import logging
import uuid
from typing import TYPE_CHECKING

from shared import logs
from shared.errors import Problem, problem_response

if TYPE_CHECKING:  # FastAPI in annotations only: `routemate optimize` imports ingest's handlers without it
    from fastapi import FastAPI, Request

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


# Paths whose answers carry personal data or credentials: the public API (tokens, imports, jobs,
# stop updates) and auth's private admin API (client secrets).
PERSONAL_PREFIXES = ("/v1/", "/admin/", "/internal/")


class SecurityHeaders:
    """Pure ASGI middleware: `X-Content-Type-Options: nosniff` on every answer, and
    `Cache-Control: no-store` on every answer under PERSONAL_PREFIXES, so no browser or shared
    cache keeps a copy of a token, an address or a job. The edge sets the same headers; these are
    for whoever reaches a service directly (a Kubernetes Service, a sidecar, a test). no-store
    replaces any weaker Cache-Control a route may set; other headers (an ETag, Location) are kept,
    so a client that keeps its own copy can still revalidate with If-None-Match."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        personal = scope["path"].startswith(PERSONAL_PREFIXES)

        async def with_headers(message) -> None:
            if message["type"] == "http.response.start":
                skip = {b"x-content-type-options", b"cache-control"} if personal else {b"x-content-type-options"}
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in skip]
                headers.append((b"x-content-type-options", b"nosniff"))
                if personal:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


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


def install_request_ids(app: "FastAPI") -> None:
    app.add_middleware(RequestIds)


async def read_body(request: "Request", limit: int) -> bytes:
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


@functools.lru_cache(maxsize=32)
def _networks(trusted: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in trusted)


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None, trusted: tuple[str, ...]) -> bool:
    return address is not None and any(address in network for network in _networks(trusted))


def client_address(request: "Request", trusted_proxies: tuple[str, ...]) -> str:
    """The caller's address. Forwarding headers are believed only from a configured proxy (an
    address or CIDR network in `trusted_proxies`): its X-Real-IP, else the right-most
    X-Forwarded-For hop that is not itself a trusted proxy. Anyone else is taken at its word
    of nothing: the TCP peer is the caller."""
    peer = request.client.host if request.client else "unknown"
    if not _trusted(_ip(peer), trusted_proxies):
        return peer
    if (real := _ip(request.headers.get("x-real-ip", "")[:64])) is not None:
        return str(real)
    hops = [hop for value in request.headers.getlist("x-forwarded-for") for hop in value.split(",")]
    for hop in reversed(hops[-16:]):
        address = _ip(hop[:64])
        if address is None:
            break  # a garbled hop: nothing left of it can be trusted
        if not _trusted(address, trusted_proxies):
            return str(address)
    return peer


async def publish_or_unavailable(bus: "EventBus", event: "Event", seconds: float, what: str) -> None:
    """Publish `event` and return once Kafka acknowledged it; otherwise a 503 problem saying that
    `what` was not recorded (nothing is accepted unless the broker has it)."""
    from shared.broker import EventTooLarge  # here: the broker module imports this one's neighbours

    try:
        await asyncio.wait_for(bus.publish(event), seconds)
    except EventTooLarge as exc:  # the request itself is too big to ever be published: not an outage
        raise Problem(
            413,
            "event_too_large",
            f"{what} is too large to carry through the platform ({exc.size} bytes of event over the "
            f"{exc.budget}-byte budget); split it into smaller ones.",
            size_bytes=exc.size,
            limit_bytes=exc.budget,
        ) from None
    except Exception as exc:  # noqa: BLE001 - any other publish failure means: not accepted
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


def bearer_matches(authorization: str | None, *accepted: str) -> bool:
    """Whether an Authorization header carries one of the `accepted` secrets as its bearer token.
    Digests are compared, in constant time, so neither a secret's length nor a prefix leaks."""
    scheme, _, given = (authorization or "").partition(" ")
    digest = hashlib.sha256(given.encode()).digest()
    same = [hmac.compare_digest(digest, hashlib.sha256(secret.encode()).digest()) for secret in accepted]
    return scheme.lower() == "bearer" and any(same)
