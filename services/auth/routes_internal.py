"""The console's internal API on the admin listener (never routed by the edge): members, sign-in,
set-up links, and each organization's integrations, drivers, members and activity.

Every path under /orgs/{org_id} is scoped to that organization: the console passes the signed-in
member's; another organization's integration or member does not exist here (404).
"""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, EmailStr, Field

from services.auth.admin_handlers import NotFound, NotPublished
from services.auth.deps import (
    AdminOnly,
    CorrelationId,
    DriversDep,
    IntegrationsDep,
    InternalOnly,
    MembersDep,
    StoreDep,
    TokensDep,
)
from services.auth.handlers import LockedOut
from services.auth.members import AlreadyMember, InvalidSetupLink, LastAdmin, Member, SignInRejected
from services.auth.passwords import MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS
from services.auth.routes import OrgName
from shared.errors import Problem

internal = APIRouter(prefix="/internal/v1")
members_admin = APIRouter(prefix="/admin/v1")
Role = Literal["admin", "developer", "viewer"]
Password = Annotated[str, Field(min_length=MIN_PASSWORD_CHARS, max_length=MAX_PASSWORD_CHARS)]
Actor = Annotated[str, Field(max_length=320)] | None


class SignInIn(BaseModel):
    email: Annotated[str, Field(min_length=1, max_length=320)]
    password: Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_CHARS)]
    address: Annotated[str, Field(max_length=100)] = "unknown"


class SetupIn(BaseModel):
    token: Annotated[str, Field(min_length=1, max_length=200)]
    password: Password


class InviteIn(BaseModel):
    email: EmailStr
    role: Role
    actor: Actor = None


class OperatorInviteIn(BaseModel):
    org: OrgName
    email: EmailStr
    role: Role = "admin"
    password: Password | None = None


class RoleIn(BaseModel):
    role: Role
    actor: Actor = None


class ActorIn(BaseModel):
    actor: Actor = None


class NameIn(ActorIn):
    name: Annotated[str, Field(min_length=1, max_length=100)]


class RotateIn(ActorIn):
    grace_seconds: Annotated[int, Field(ge=0, le=7 * 86_400)] = 0


class DriverIn(ActorIn):
    email: EmailStr
    name: Annotated[str, Field(max_length=200)] | None = None


class DriverOut(ActorIn):
    email: Annotated[str, Field(max_length=320)]


@contextmanager
def _as_problems() -> Iterator[None]:
    try:
        yield
    except NotFound as exc:
        raise Problem(404, "not_found", str(exc)) from None
    except AlreadyMember as exc:
        raise Problem(409, "already_member", str(exc)) from None
    except LastAdmin as exc:
        raise Problem(409, "last_admin", str(exc)) from None
    except InvalidSetupLink as exc:
        raise Problem(404, "setup_link_invalid", str(exc)) from None
    except NotPublished:
        raise Problem(
            503, "event_publish_failed", "The change was stored but its event could not be published.",
            headers={"Retry-After": "5"},
        ) from None  # fmt: skip


def member_out(m: Member) -> dict[str, Any]:
    return {"member_id": m.member_id, "org_id": m.org_id, "org": m.org, "email": m.email, "role": m.role,
            "active": m.active}  # fmt: skip


# ---- the operator's (ADMIN_TOKEN): the first admin of an organization ----


@members_admin.post("/members", status_code=201)
async def add_member(
    body: OperatorInviteIn, _: AdminOnly, members: MembersDep, store: StoreDep, cid: CorrelationId
) -> dict[str, Any]:
    org = await asyncio.to_thread(store.organization, body.org)
    assert org is not None
    with _as_problems():
        invited = await members.invite(org.org_id, str(body.email), body.role, None, cid, body.password)
    return {**member_out(invited.member), "setup_token": invited.setup_token, "setup_expires_at": invited.expires_at}


class PasswordIn(BaseModel):
    email: EmailStr
    password: Password


@members_admin.post("/members/password")
async def reset_password(body: PasswordIn, _: AdminOnly, members: MembersDep, cid: CorrelationId) -> dict[str, Any]:
    with _as_problems():
        return member_out(await members.reset_password(str(body.email), body.password, cid))


# ---- the console's (INTERNAL_TOKEN) ----


@internal.post("/sign-in")
async def sign_in(body: SignInIn, _: InternalOnly, members: MembersDep, cid: CorrelationId) -> dict[str, Any]:
    try:
        return member_out(await members.sign_in(body.email, body.password, body.address, cid))
    except LockedOut as exc:
        raise Problem(429, "too_many_sign_in_failures", "Too many failed sign-ins; try again later.",
                      headers={"Retry-After": str(exc.retry_after)}) from None  # fmt: skip
    except SignInRejected:
        raise Problem(401, "invalid_credentials", "Wrong email or password.") from None


@internal.post("/setup")
async def use_setup_link(body: SetupIn, _: InternalOnly, members: MembersDep, cid: CorrelationId) -> dict[str, Any]:
    with _as_problems():
        return member_out(await members.set_password(body.token, body.password, cid))


@internal.get("/members/{member_id}")
async def member(member_id: str, _: InternalOnly, members: MembersDep) -> dict[str, Any]:
    with _as_problems():
        return member_out(await members.get(member_id))


@internal.get("/orgs/{org_id}/members")
async def list_members(org_id: str, _: InternalOnly, members: MembersDep) -> dict[str, Any]:
    return {"members": [member_out(m) for m in await members.listed(org_id)]}


@internal.post("/orgs/{org_id}/members", status_code=201)
async def invite(org_id: str, body: InviteIn, _: InternalOnly, members: MembersDep, cid: CorrelationId) -> dict:
    with _as_problems():
        invited = await members.invite(org_id, str(body.email), body.role, body.actor, cid)
    return {**member_out(invited.member), "setup_token": invited.setup_token, "setup_expires_at": invited.expires_at}


@internal.post("/orgs/{org_id}/members/{member_id}/role")
async def change_role(
    org_id: str, member_id: str, body: RoleIn, _: InternalOnly, members: MembersDep, cid: CorrelationId
) -> dict[str, Any]:
    with _as_problems():
        return member_out(await members.change_role(org_id, member_id, body.role, body.actor, cid))


@internal.post("/orgs/{org_id}/members/{member_id}/remove")
async def remove_member(
    org_id: str, member_id: str, body: ActorIn, _: InternalOnly, members: MembersDep, cid: CorrelationId
) -> dict[str, Any]:
    with _as_problems():
        await members.remove(org_id, member_id, body.actor, cid)
    return {"member_id": member_id, "removed": True}


@internal.get("/orgs/{org_id}/activity")
async def activity(
    org_id: str, _: InternalOnly, members: MembersDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> dict[str, Any]:
    rows = await members.activity(org_id, limit)
    return {"activity": [{"at": r.at, "event_type": r.event_type, "actor": r.actor, "subject": r.subject}
                         for r in rows]}  # fmt: skip


async def _org_name(store, org_id: str) -> str:
    org = await asyncio.to_thread(store.organization_by_id, org_id)
    if org is None:
        raise Problem(404, "not_found", f"no organization {org_id}")
    return org.name


async def _own_integration(store, org_id: str, client_id: str) -> None:
    row = await asyncio.to_thread(store.integration, client_id)
    if row is None or row.org_id != org_id:
        raise Problem(404, "not_found", f"no integration {client_id}")


@internal.get("/orgs/{org_id}/integrations")
async def integrations(
    org_id: str, _: InternalOnly, integrations: IntegrationsDep, store: StoreDep, tokens: TokensDep
) -> dict[str, Any]:
    rows = await integrations.listed(await _org_name(store, org_id))
    try:
        used = await tokens.last_used([r.client_id for r, _ in rows])
    except OSError:
        used = {}
    return {"integrations": [
        {"client_id": r.client_id, "name": r.name, "created_at": r.created_at, "rotated_at": r.rotated_at,
         "revoked_at": r.revoked_at, "active": r.revoked_at is None, "last_used_at": used.get(r.client_id)}
        for r, _ in rows
    ]}  # fmt: skip


@internal.post("/orgs/{org_id}/integrations", status_code=201)
async def create_integration(
    org_id: str, body: NameIn, _: InternalOnly, integrations: IntegrationsDep, store: StoreDep, cid: CorrelationId
) -> dict[str, Any]:
    org = await _org_name(store, org_id)
    with _as_problems():
        issued = await integrations.create(org, body.name, cid, body.actor)
    return {"client_id": issued.client_id, "client_secret": issued.client_secret, "name": issued.name}


@internal.post("/orgs/{org_id}/integrations/{client_id}/rotate")
async def rotate(
    org_id: str, client_id: str, body: RotateIn, _: InternalOnly, integrations: IntegrationsDep, store: StoreDep,
    cid: CorrelationId,
) -> dict[str, Any]:  # fmt: skip
    await _own_integration(store, org_id, client_id)
    with _as_problems():
        issued = await integrations.rotate(client_id, body.grace_seconds, cid, body.actor)
    return {"client_id": client_id, "client_secret": issued.client_secret, "name": issued.name,
            "old_secret_valid_until": issued.old_secret_valid_until}  # fmt: skip


@internal.post("/orgs/{org_id}/integrations/{client_id}/revoke")
async def revoke(
    org_id: str, client_id: str, body: ActorIn, _: InternalOnly, integrations: IntegrationsDep, store: StoreDep,
    cid: CorrelationId,
) -> dict[str, Any]:  # fmt: skip
    await _own_integration(store, org_id, client_id)
    with _as_problems():
        done = await integrations.revoke(client_id, cid, body.actor)
    return {"client_id": client_id, "revoked_at": done.revoked_at, "tokens_revoked": done.tokens_revoked}


@internal.get("/orgs/{org_id}/drivers")
async def drivers(org_id: str, _: InternalOnly, drivers: DriversDep, store: StoreDep) -> dict[str, Any]:
    rows = await drivers.listed(await _org_name(store, org_id))
    return {"drivers": [{"email": r.email, "name": r.name, "active": r.active} for r in rows]}


@internal.post("/orgs/{org_id}/drivers", status_code=201)
async def add_driver(
    org_id: str, body: DriverIn, _: InternalOnly, drivers: DriversDep, store: StoreDep, cid: CorrelationId
) -> dict[str, Any]:
    org = await _org_name(store, org_id)
    with _as_problems():
        return await drivers.register(org, str(body.email), body.name, True, cid, body.actor)


@internal.post("/orgs/{org_id}/drivers/remove")
async def remove_driver(
    org_id: str, body: DriverOut, _: InternalOnly, drivers: DriversDep, store: StoreDep, cid: CorrelationId
) -> dict[str, Any]:
    org = await _org_name(store, org_id)
    with _as_problems():
        await drivers.remove(org, body.email, cid, body.actor)
    return {"email": body.email.lower(), "removed": True}
