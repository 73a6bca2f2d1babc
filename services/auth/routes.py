"""HTTP edge of the auth service: the public token endpoint and the private admin API."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, EmailStr, Field

from services.auth.admin_handlers import NotFound, NotPublished
from services.auth.credentials import TokenRequestError, read_credentials
from services.auth.deps import AdminOnly, CorrelationId, DriversDep, IntegrationsDep, IssuerDep, SettingsDep
from services.auth.handlers import ClientRejected, LockedOut, TokenServiceUnavailable
from services.auth.mint_limit import MintRateLimited
from shared.errors import Problem
from shared.http import client_address, read_body

log = logging.getLogger(__name__)
public = APIRouter()

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
async def issue_token(
    request: Request, settings: SettingsDep, issuer: IssuerDep, correlation_id: CorrelationId
) -> JSONResponse:
    """OAuth2 client-credentials grant: JSON body, form body or HTTP Basic."""
    try:
        body = await read_body(request, settings.max_token_request_bytes)
        creds = read_credentials(request.headers.get("content-type", ""), body, request.headers.get("authorization"))
        address = client_address(request, settings.trusted_proxies)
        issued = await issuer.issue(creds, address, correlation_id)
    except Problem as problem:
        return _oauth_error("invalid_request", problem.detail, problem.status)
    except TokenRequestError as exc:
        return _oauth_error(exc.error, exc.description, exc.status)
    except LockedOut as exc:
        retry = {"Retry-After": str(exc.retry_after)}
        return _oauth_error("invalid_client", "Too many failed attempts; try again later.", 429, retry)
    except ClientRejected:
        return _oauth_error("invalid_client", "Client authentication failed.", 401)
    except MintRateLimited as exc:  # RFC 8628's slow_down: reuse the token you hold until it expires
        return _oauth_error(
            "slow_down", "Too many tokens minted for this client; reuse the last one.", 429, exc.headers
        )
    except TokenServiceUnavailable:
        log.warning("token store unavailable")
        retry = {"Retry-After": "2"}
        return _oauth_error("temporarily_unavailable", "The token service is unavailable; retry shortly.", 503, retry)
    answer = TokenResponse(access_token=issued.access_token, expires_in=issued.expires_in)
    return JSONResponse(answer.model_dump(), headers=NO_STORE)


# ---- admin API (private: not routed by the edge proxy) ----

admin = APIRouter(prefix="/admin/v1")
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


@contextmanager
def _as_problems() -> Iterator[None]:
    """The admin handlers' refusals as problem+json answers."""
    try:
        yield
    except NotFound as exc:
        raise Problem(404, "not_found", str(exc)) from None
    except NotPublished:
        raise Problem(
            503,
            "event_publish_failed",
            "The change was stored but its event could not be published; repeat the command.",
            headers={"Retry-After": "5"},
        ) from None


@admin.post("/integrations", status_code=201)
async def create_integration(
    body: IntegrationIn, _: AdminOnly, integrations: IntegrationsDep, cid: CorrelationId
) -> dict[str, Any]:
    with _as_problems():
        issued = await integrations.create(body.org, body.name, cid)
    return {
        "client_id": issued.client_id,
        "client_secret": issued.client_secret,
        "org_id": issued.org_id,
        "org": issued.org,
        "name": issued.name,
    }


@admin.get("/integrations")
async def list_integrations(
    _: AdminOnly, integrations: IntegrationsDep, org: str | None = Query(None, max_length=100)
) -> dict[str, Any]:
    rows = await integrations.listed(org)
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


@admin.post("/integrations/{client_id}/rotate")
async def rotate(
    client_id: str, _: AdminOnly, integrations: IntegrationsDep, cid: CorrelationId, body: RotateIn | None = None
) -> dict[str, Any]:
    with _as_problems():
        issued = await integrations.rotate(client_id, (body or RotateIn()).grace_seconds, cid)
    return {
        "client_id": client_id,
        "client_secret": issued.client_secret,
        "old_secret_valid_until": issued.old_secret_valid_until,
    }


@admin.post("/integrations/{client_id}/revoke")
async def revoke(client_id: str, _: AdminOnly, integrations: IntegrationsDep, cid: CorrelationId) -> dict[str, Any]:
    with _as_problems():
        done = await integrations.revoke(client_id, cid)
    return {"client_id": done.client_id, "revoked_at": done.revoked_at, "tokens_revoked": done.tokens_revoked}


@admin.post("/drivers", status_code=201)
async def add_driver(body: DriverIn, _: AdminOnly, drivers: DriversDep, cid: CorrelationId) -> dict[str, Any]:
    with _as_problems():
        return await drivers.register(body.org, str(body.email), body.name, body.active, cid)


@admin.delete("/drivers")
async def delete_driver(
    _: AdminOnly,
    drivers: DriversDep,
    cid: CorrelationId,
    org: str = Query(..., max_length=100),
    email: str = Query(..., max_length=320),
) -> dict[str, Any]:
    with _as_problems():
        await drivers.remove(org, email, cid)
    return {"org": org, "email": email.lower(), "removed": True}


@admin.get("/drivers")
async def list_drivers(_: AdminOnly, drivers: DriversDep, org: str = Query(..., max_length=100)) -> dict[str, Any]:
    rows = await drivers.listed(org)
    return {"drivers": [{"email": r.email, "name": r.name, "active": r.active} for r in rows]}
