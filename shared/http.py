"""HTTP edge helpers shared by the gateways: request ids, bounded bodies, client addresses."""

import uuid
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

from shared import logs
from shared.errors import Problem

REQUEST_ID = "X-Request-ID"


def install_request_ids(app: FastAPI) -> None:
    """Take the caller's (or the proxy's) request id, or make one; it becomes the correlation id."""

    @app.middleware("http")
    async def _request_id(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        incoming = request.headers.get(REQUEST_ID, "")
        rid = incoming if 0 < len(incoming) <= 128 and incoming.isascii() and incoming.isprintable() \
            else uuid.uuid4().hex
        token = logs.correlation_id.set(rid)
        try:
            response = await call_next(request)
        finally:
            logs.correlation_id.reset(token)
        response.headers[REQUEST_ID] = rid
        return response


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
