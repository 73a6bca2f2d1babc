"""HTTP edge of the auth service: the public token endpoint and the private admin API."""

import asyncio
import hashlib
import hmac
import logging
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import BaseModel, EmailStr, Field
from redis.exceptions import RedisError

from services.auth import handlers
from services.auth.credentials import TokenRequestError, read_credentials
from services.auth.lockout import Lockout
from services.auth.settings import AuthSettings
from services.auth.store import AuthStore
from shared import logs
from shared.broker import EventBus
from shared.errors import Problem
from shared.events import Event, TokenIssued, utcnow
from shared.http import client_address, read_body
from shared.tokens import Principal, fingerprint, new_token, revoke_tokens, store_token

log = logging.getLogger(__name__)
AUTH_FAILURES = Counter("routemate_auth_failures_total", "Token requests refused, by outcome", ["outcome"])
public = APIRouter()
admin = APIRouter(prefix="/admin/v1")

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int


def _oauth_error(error: str, description: str, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    headers = {**NO_STORE, **(headers or {})}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="routemate", error="invalid_client"'
    return JSONResponse({"error": error, "error_description": description}, status_code=status, headers=headers)


@public.post(
    "/v1/integration-token",
    response_model=TokenResponse,
    tags=["auth"],
    summary="Exchange client credentials for a bearer token",
    responses={400: {}, 401: {}, 413: {}, 415: {}, 429: {}, 503: {}},
)
async def issue_token(request: Request) -> JSONResponse:
    """OAuth2 client-credentials grant: JSON body, form body or HTTP Basic."""
    settings: AuthSettings = request.app.state.settings
    try:
        body = await read_body(request, settings.max_token_request_bytes)
        creds = read_credentials(request.headers.get("content-type", ""), body, request.headers.get("authorization"))
    except Problem as problem:
        return _oauth_error("invalid_request", problem.detail, problem.status)
    except TokenRequestError as exc:
        return _oauth_error(exc.error, exc.description, exc.status)
    lockout: Lockout = request.app.state.lockout
    address = client_address(request, settings.trusted_proxies)
    try:
        if wait := await lockout.locked_for(creds.client_id, address):
            AUTH_FAILURES.labels("locked_out").inc()
            return _oauth_error(
                "invalid_client", "Too many failed attempts; try again later.", 429, {"Retry-After": str(wait)}
            )
        row = await asyncio.to_thread(
            handlers.authenticate,
            request.app.state.store,
            settings.secret_pepper.get_secret_value(),
            creds.client_id,
            creds.client_secret,
            utcnow(),
        )
        if row is None:
            AUTH_FAILURES.labels("invalid_client").inc()
            failures = await lockout.failed(creds.client_id, address)
            await asyncio.sleep(min(0.05 * 2 ** max(failures - 2, 0), 1.0))  # slow repeated guessing
            return _oauth_error("invalid_client", "Client authentication failed.", 401)
        await lockout.succeeded(creds.client_id)
        token = new_token()
        await store_token(
            request.app.state.redis, token, Principal(row.org_id, row.client_id), settings.token_ttl_seconds
        )
    except (RedisError, OSError):
        log.warning("token store unavailable")
        return _oauth_error(
            "temporarily_unavailable", "The token service is unavailable; retry shortly.", 503, {"Retry-After": "2"}
        )
    _audit(
        request,
        TokenIssued(
            org_id=row.org_id,
            client_id=row.client_id,
            token_fingerprint=fingerprint(token),
            expires_at=utcnow() + timedelta(seconds=settings.token_ttl_seconds),
            correlation_id=logs.correlation_id.get(),
        ),
    )
    return JSONResponse(
        TokenResponse(access_token=token, expires_in=settings.token_ttl_seconds).model_dump(), headers=NO_STORE
    )


def _audit(request: Request, event: Event) -> None:
    """Publish an audit event without holding up the token response."""
    bus: EventBus = request.app.state.bus
    tasks: set[asyncio.Task[None]] = request.app.state.background

    async def send() -> None:
        try:
            await bus.publish(event)
        except Exception:  # noqa: BLE001 - an audit event never fails a token request
            log.warning("could not publish %s", event.event_type)

    task = asyncio.create_task(send())
    tasks.add(task)
    task.add_done_callback(tasks.discard)


# ---- admin API (private: not routed by the edge proxy) ----


async def require_admin(request: Request) -> None:
    settings: AuthSettings = request.app.state.settings
    scheme, _, given = (request.headers.get("authorization") or "").partition(" ")
    expected = settings.admin_token.get_secret_value()
    same = hmac.compare_digest(hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest())
    if scheme.lower() != "bearer" or not same:
        raise Problem(
            401,
            "invalid_admin_token",
            "A valid admin token is required.",
            headers={"WWW-Authenticate": 'Bearer realm="routemate-admin"'},
        )


Admin = Annotated[None, Depends(require_admin)]
OrgName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[\w .@-]+$")]


class IntegrationIn(BaseModel):
    org: OrgName
    name: Annotated[str, Field(min_length=1, max_length=100)] | None = None


class RotateIn(BaseModel):
    grace_seconds: Annotated[int, Field(ge=0, le=7 * 86_400)] = 0


class DriverIn(BaseModel):
    org: OrgName
    email: EmailStr
    name: Annotated[str, Field(max_length=200)] | None = None
    active: bool = True


async def _commit_events(request: Request, events: list[Event]) -> None:
    bus: EventBus = request.app.state.bus
    try:
        for event in events:
            await bus.publish(event)
    except Exception:  # noqa: BLE001 - the change is stored; the event must be retried by the operator
        log.error("stored the change but could not publish %s", [e.event_type for e in events])
        raise Problem(
            503,
            "event_publish_failed",
            "The change was stored but its event could not be published; repeat the command.",
            headers={"Retry-After": "5"},
        ) from None


def _cid() -> str:
    return logs.correlation_id.get()


@admin.post("/integrations", status_code=201)
async def create_integration(body: IntegrationIn, request: Request, _: Admin) -> dict[str, Any]:
    pepper = request.app.state.settings.secret_pepper.get_secret_value()
    issued, events = await asyncio.to_thread(
        handlers.create_integration, request.app.state.store, pepper, body.org, body.name, _cid()
    )
    await _commit_events(request, events)
    return {
        "client_id": issued.client_id,
        "client_secret": issued.client_secret,
        "org_id": issued.org_id,
        "org": issued.org,
        "name": issued.name,
    }


@admin.get("/integrations")
async def list_integrations(request: Request, _: Admin, org: str | None = Query(None, max_length=100)) -> dict:
    store: AuthStore = request.app.state.store
    org_id = None
    if org:
        found = await asyncio.to_thread(store.organization, org, False)
        if found is None:
            return {"integrations": []}
        org_id = found.org_id
    rows = await asyncio.to_thread(store.integrations, org_id)
    return {
        "integrations": [
            {
                "client_id": r.client_id,
                "org_id": r.org_id,
                "org": org_name,
                "name": r.name,
                "created_at": r.created_at,
                "rotated_at": r.rotated_at,
                "revoked_at": r.revoked_at,
                "active": r.revoked_at is None,
            }
            for r, org_name in rows
        ]
    }


def _not_found(exc: handlers.NotFound) -> Problem:
    return Problem(404, "not_found", str(exc))


@admin.post("/integrations/{client_id}/rotate")
async def rotate(client_id: str, request: Request, _: Admin, body: RotateIn | None = None) -> dict[str, Any]:
    pepper = request.app.state.settings.secret_pepper.get_secret_value()
    grace = (body or RotateIn()).grace_seconds
    try:
        issued, events = await asyncio.to_thread(
            handlers.rotate_secret, request.app.state.store, pepper, client_id, grace, _cid()
        )
    except handlers.NotFound as exc:
        raise _not_found(exc) from None
    if not grace:  # a rotation without grace is a compromise response: live tokens go too
        await revoke_tokens(request.app.state.redis, client_id)
    await _commit_events(request, events)
    return {
        "client_id": client_id,
        "client_secret": issued.client_secret,
        "old_secret_valid_until": issued.old_secret_valid_until,
    }


@admin.post("/integrations/{client_id}/revoke")
async def revoke(client_id: str, request: Request, _: Admin) -> dict[str, Any]:
    try:
        row, events = await asyncio.to_thread(handlers.revoke_integration, request.app.state.store, client_id, _cid())
    except handlers.NotFound as exc:
        raise _not_found(exc) from None
    revoked = await revoke_tokens(request.app.state.redis, client_id)
    await _commit_events(request, events)
    return {"client_id": client_id, "revoked_at": row.revoked_at, "tokens_revoked": revoked}


@admin.post("/drivers", status_code=201)
async def add_driver(body: DriverIn, request: Request, _: Admin) -> dict[str, Any]:
    driver, events = await asyncio.to_thread(
        handlers.register_driver, request.app.state.store, body.org, str(body.email), body.name, body.active, _cid()
    )
    await _commit_events(request, events)
    return driver


@admin.delete("/drivers")
async def delete_driver(
    request: Request, _: Admin, org: str = Query(..., max_length=100), email: str = Query(..., max_length=320)
) -> dict[str, Any]:
    try:
        events = await asyncio.to_thread(handlers.remove_driver, request.app.state.store, org, email, _cid())
    except handlers.NotFound as exc:
        raise _not_found(exc) from None
    await _commit_events(request, events)
    return {"org": org, "email": email.lower(), "removed": True}


@admin.get("/drivers")
async def list_drivers(request: Request, _: Admin, org: str = Query(..., max_length=100)) -> dict[str, Any]:
    store: AuthStore = request.app.state.store
    found = await asyncio.to_thread(store.organization, org, False)
    rows = await asyncio.to_thread(store.drivers, found.org_id) if found else []
    return {"drivers": [{"email": r.email, "name": r.name, "active": r.active} for r in rows]}
