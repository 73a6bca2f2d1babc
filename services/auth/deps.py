"""The FastAPI dependencies of the auth routes, declared once as `Annotated` aliases."""

from typing import Annotated

from fastapi import Depends, Request

from services.auth.adapters.lockout import AdminThrottle
from services.auth.adapters.store import AuthStore
from services.auth.adapters.tokens import TokenStore
from services.auth.admin_handlers import Drivers, Integrations
from services.auth.handlers import TokenIssuer
from services.auth.members import Members
from services.auth.settings import AuthSettings
from shared import logs
from shared.errors import Problem
from shared.http import bearer_matches, client_address


async def _settings(request: Request) -> AuthSettings:
    return request.app.state.settings


async def _issuer(request: Request) -> TokenIssuer:
    return request.app.state.issuer


async def _integrations(request: Request) -> Integrations:
    return request.app.state.integrations


async def _drivers(request: Request) -> Drivers:
    return request.app.state.drivers


async def _members(request: Request) -> Members:
    return request.app.state.members


async def _tokens(request: Request) -> TokenStore:
    return request.app.state.tokens


async def _store(request: Request) -> AuthStore:
    return request.app.state.store


async def _require_internal(request: Request) -> None:
    """The console's internal credential (INTERNAL_TOKEN), compared in constant time."""
    settings: AuthSettings = request.app.state.settings
    assert settings.internal_token is not None
    if bearer_matches(request.headers.get("authorization"), settings.internal_token.get_secret_value()):
        return
    raise Problem(401, "invalid_internal_token", "A valid internal token is required.")


async def _correlation_id() -> str:
    return logs.correlation_id.get()


def _admin_problem(status: int, code: str, detail: str, **headers: str) -> Problem:
    return Problem(status, code, detail, headers={"WWW-Authenticate": 'Bearer realm="routemate-admin"', **headers})


async def _require_admin(request: Request) -> None:
    """The admin token, compared in constant time; an address presenting wrong ones is throttled."""
    settings: AuthSettings = request.app.state.settings
    throttle: AdminThrottle = request.app.state.admin_throttle
    address = client_address(request, settings.trusted_proxies)
    try:
        if wait := await throttle.blocked_for(address):
            raise _admin_problem(
                429,
                "too_many_admin_failures",
                "Too many wrong admin tokens; try again later.",
                **{"Retry-After": str(wait)},
            )
        assert settings.admin_token is not None
        if bearer_matches(request.headers.get("authorization"), settings.admin_token.get_secret_value()):
            return
        await throttle.failed(address)
    except OSError:
        raise _admin_problem(
            503, "admin_throttle_unavailable", "Admin tokens cannot be checked right now.", **{"Retry-After": "2"}
        ) from None
    raise _admin_problem(401, "invalid_admin_token", "A valid admin token is required.")


SettingsDep = Annotated[AuthSettings, Depends(_settings)]
IssuerDep = Annotated[TokenIssuer, Depends(_issuer)]
IntegrationsDep = Annotated[Integrations, Depends(_integrations)]
DriversDep = Annotated[Drivers, Depends(_drivers)]
CorrelationId = Annotated[str, Depends(_correlation_id)]
AdminOnly = Annotated[None, Depends(_require_admin)]
MembersDep = Annotated[Members, Depends(_members)]
TokensDep = Annotated[TokenStore, Depends(_tokens)]
StoreDep = Annotated[AuthStore, Depends(_store)]
InternalOnly = Annotated[None, Depends(_require_internal)]
