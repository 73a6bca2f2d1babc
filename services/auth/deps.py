"""The FastAPI dependencies of the auth routes, declared once as `Annotated` aliases."""

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, Request

from services.auth.admin_handlers import Drivers, Integrations
from services.auth.handlers import TokenIssuer
from services.auth.settings import AuthSettings
from shared import logs
from shared.errors import Problem


async def _settings(request: Request) -> AuthSettings:
    return request.app.state.settings


async def _issuer(request: Request) -> TokenIssuer:
    return request.app.state.issuer


async def _integrations(request: Request) -> Integrations:
    return request.app.state.integrations


async def _drivers(request: Request) -> Drivers:
    return request.app.state.drivers


async def _correlation_id() -> str:
    return logs.correlation_id.get()


async def _require_admin(request: Request) -> None:
    settings: AuthSettings = request.app.state.settings
    scheme, _, given = (request.headers.get("authorization") or "").partition(" ")
    expected = settings.admin_token.get_secret_value()
    # Compare digests, so neither the length nor a prefix of the admin token leaks through timing.
    same = hmac.compare_digest(hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest())
    if scheme.lower() != "bearer" or not same:
        raise Problem(
            401,
            "invalid_admin_token",
            "A valid admin token is required.",
            headers={"WWW-Authenticate": 'Bearer realm="routemate-admin"'},
        )


SettingsDep = Annotated[AuthSettings, Depends(_settings)]
IssuerDep = Annotated[TokenIssuer, Depends(_issuer)]
IntegrationsDep = Annotated[Integrations, Depends(_integrations)]
DriversDep = Annotated[Drivers, Depends(_drivers)]
CorrelationId = Annotated[str, Depends(_correlation_id)]
AdminOnly = Annotated[None, Depends(_require_admin)]
