"""The console pages' dependencies: the visitor's session, the signed-in member, checked forms."""

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData

from services.console.adapters.internal_api import ApiRefused, InternalApi
from services.console.adapters.sessions import Session, SessionStore
from services.console.handlers import may
from services.console.metrics import CSRF_REFUSED
from services.console.settings import ConsoleSettings

COOKIE = "rm_console"


class NotSignedIn(Exception):
    """No live session with a member: the browser goes to /login."""


class Forbidden(Exception):
    """The member's role does not allow this (403 page)."""


class CsrfRefused(Exception):
    """A form without the session's CSRF token (403 page)."""


@dataclass
class Visitor:
    session_id: str | None
    session: Session | None


@dataclass(frozen=True)
class Member:
    session_id: str
    session: Session
    member_id: str
    org_id: str
    org: str
    email: str
    role: str

    def may(self, action: str) -> bool:
        return may(self.role, action)


async def _settings(request: Request) -> ConsoleSettings:
    return request.app.state.settings


async def _sessions(request: Request) -> SessionStore:
    return request.app.state.sessions


async def _auth(request: Request) -> InternalApi:
    return request.app.state.auth


async def _status(request: Request) -> InternalApi:
    return request.app.state.status


async def _notifier(request: Request) -> InternalApi:
    return request.app.state.notifier


async def _visitor(request: Request) -> Visitor:
    session_id = request.cookies.get(COOKIE)
    return Visitor(session_id, await request.app.state.sessions.load(session_id))


async def _member(request: Request, visitor: Annotated[Visitor, Depends(_visitor)]) -> Member:
    """The signed-in member as auth knows them now: a removed member's session ends, a changed
    role applies at once."""
    session = visitor.session
    if session is None or session.member_id is None or visitor.session_id is None:
        raise NotSignedIn
    try:
        found = await request.app.state.auth.call("GET", f"/internal/v1/members/{session.member_id}")
    except ApiRefused:
        await request.app.state.sessions.end(visitor.session_id)
        raise NotSignedIn from None
    if found["org_id"] != session.org_id:
        raise NotSignedIn
    return Member(
        visitor.session_id, session, found["member_id"], found["org_id"], found["org"], found["email"], found["role"]
    )


async def _form(request: Request, visitor: Annotated[Visitor, Depends(_visitor)]) -> FormData:
    """The posted form, only when it carries this session's CSRF token."""
    form = await request.form()
    given = form.get("csrf_token")
    expected = visitor.session.csrf if visitor.session else None
    if not isinstance(given, str) or expected is None or not hmac.compare_digest(given.encode(), expected.encode()):
        CSRF_REFUSED.inc()
        raise CsrfRefused
    return form


def allowed(action: str):
    async def check(member: Annotated[Member, Depends(_member)]) -> Member:
        if not member.may(action):
            raise Forbidden
        return member

    return check


SettingsDep = Annotated[ConsoleSettings, Depends(_settings)]
SessionsDep = Annotated[SessionStore, Depends(_sessions)]
AuthApi = Annotated[InternalApi, Depends(_auth)]
StatusApi = Annotated[InternalApi, Depends(_status)]
NotifierApi = Annotated[InternalApi, Depends(_notifier)]
VisitorDep = Annotated[Visitor, Depends(_visitor)]
MemberDep = Annotated[Member, Depends(_member)]
CheckedForm = Annotated[FormData, Depends(_form)]
ManagesIntegrations = Annotated[Member, Depends(allowed("integrations"))]
ManagesDrivers = Annotated[Member, Depends(allowed("drivers"))]
ManagesMembers = Annotated[Member, Depends(allowed("members"))]
ReadsActivity = Annotated[Member, Depends(allowed("activity"))]
