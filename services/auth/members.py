"""Console members: invitations with set-up links, passwords, sign-in behind the lockout, roles.

Each change is stored, kept in the organization's activity and published on the auth topic (the
bus given is a RecordedBus). No HTTP or Kafka types here.
"""

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.auth.adapters.lockout import Lockout
from services.auth.adapters.store import AuthStore
from services.auth.adapters.tables import AuditRow, MemberRow
from services.auth.admin_handlers import NotFound, Publisher, publish_all
from services.auth.handlers import LockedOut, LockoutPolicy
from services.auth.passwords import hash_password, new_setup_token, password_matches, setup_digest
from shared.events import MemberInvited, MemberPasswordSet, MemberRemoved, MemberRoleChanged, MemberSignedIn, utcnow
from shared.vocabulary import as_utc

log = logging.getLogger(__name__)
ROLES = ("admin", "developer", "viewer")


class AlreadyMember(Exception):
    """The email belongs to a member already (of this or another organization)."""


class InvalidSetupLink(Exception):
    """The set-up link is unknown, used already or expired."""


class SignInRejected(Exception):
    """Unknown email or wrong password: the caller is not told which."""


class LastAdmin(Exception):
    """The change would leave the organization without an admin."""


@dataclass(frozen=True)
class Member:
    member_id: str
    org_id: str
    org: str
    email: str
    role: str
    active: bool  # has a password: the set-up link was used


@dataclass(frozen=True)
class Invitation:
    member: Member
    setup_token: str | None
    expires_at: datetime | None


class Members:
    def __init__(
        self,
        store: AuthStore,
        bus: Publisher,
        lockout: Lockout,
        policy: LockoutPolicy,
        *,
        setup_hours: int,
        pause: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store, self.bus, self.lockout, self.policy = store, bus, lockout, policy
        self.setup_hours, self.pause = setup_hours, pause

    async def _view(self, row: MemberRow) -> Member:
        org = await asyncio.to_thread(self.store.organization_by_id, row.org_id)
        name = org.name if org else ""
        return Member(row.member_id, row.org_id, name, row.email, row.role, row.password_hash is not None)

    async def invite(
        self, org_id: str, email: str, role: str, actor: str | None, cid: str, password: str | None = None
    ) -> Invitation:
        """A new member; with `password` they can sign in at once, else they get a set-up link."""
        token = None if password else new_setup_token()
        expires = utcnow() + timedelta(hours=self.setup_hours) if token else None
        row = MemberRow(
            member_id="mem_" + secrets.token_hex(8),
            org_id=org_id,
            email=email.lower(),
            role=role,
            password_hash=await asyncio.to_thread(hash_password, password) if password else None,
            setup_digest=setup_digest(token) if token else None,
            setup_expires_at=expires,
            created_at=utcnow(),
        )
        if not await asyncio.to_thread(self.store.add_member, row):
            raise AlreadyMember(f"{row.email} is a member already")
        events = [MemberInvited(org_id=org_id, member_id=row.member_id, email=row.email, role=role, actor=actor)]
        if password:
            events.append(MemberPasswordSet(org_id=org_id, member_id=row.member_id, email=row.email, actor=actor))
        await publish_all(self.bus, [e.model_copy(update={"correlation_id": cid}) for e in events])
        return Invitation(await self._view(row), token, expires)

    async def set_password(self, token: str, password: str, cid: str) -> Member:
        """Use a set-up link once: the password is set and the link stops working."""
        row = await asyncio.to_thread(self.store.member_by_setup, setup_digest(token))
        expires = as_utc(row.setup_expires_at) if row else None
        if row is None or expires is None or expires <= utcnow():
            raise InvalidSetupLink("this set-up link is unknown, used or expired")
        row.password_hash = await asyncio.to_thread(hash_password, password)
        row.setup_digest, row.setup_expires_at = None, None
        await asyncio.to_thread(self.store.save_member, row)
        event = MemberPasswordSet(org_id=row.org_id, member_id=row.member_id, email=row.email, correlation_id=cid)
        await publish_all(self.bus, [event])
        return await self._view(row)

    async def reset_password(self, email: str, password: str, cid: str) -> Member:
        """The operator sets a member's password (a local admin for `make run`, a locked-out admin)."""
        row = await asyncio.to_thread(self.store.member_by_email, email.lower())
        if row is None:
            raise NotFound(f"no member {email.lower()}")
        row.password_hash = await asyncio.to_thread(hash_password, password)
        row.setup_digest, row.setup_expires_at = None, None
        await asyncio.to_thread(self.store.save_member, row)
        event = MemberPasswordSet(org_id=row.org_id, member_id=row.member_id, email=row.email, correlation_id=cid)
        await publish_all(self.bus, [event])
        return await self._view(row)

    async def sign_in(self, email: str, password: str, address: str, cid: str) -> Member:
        """The member these credentials belong to; failures are throttled like the token endpoint's."""
        key = "member:" + email.lower()
        if wait := await self.lockout.locked_for(key, address):
            raise LockedOut(wait)
        row = await asyncio.to_thread(self.store.member_by_email, email.lower())
        ok = await asyncio.to_thread(password_matches, password, row.password_hash if row else None)
        if row is None or not ok:
            await self._failed(key, address)
            raise SignInRejected
        await self.lockout.clear(key, address)
        event = MemberSignedIn(
            org_id=row.org_id, member_id=row.member_id, email=row.email, actor=row.email, correlation_id=cid
        )
        try:
            await self.bus.publish(event)
        except Exception:  # noqa: BLE001 - a sign-in does not fail because the audit event could not go out
            log.warning("could not publish MemberSignedIn")
        return await self._view(row)

    async def _failed(self, key: str, address: str) -> None:
        policy = self.policy
        pair_fails, address_fails = await self.lockout.count_failure(key, address, policy.window_seconds)
        if pair_fails >= policy.pair_threshold:
            await self.lockout.lock_pair(key, address, policy.lock_seconds)
        if address_fails >= policy.address_threshold:
            await self.lockout.lock_address(address, policy.lock_seconds)
        await self.pause(policy.delay(pair_fails))

    async def get(self, member_id: str) -> Member:
        row = await asyncio.to_thread(self.store.member, member_id)
        if row is None:
            raise NotFound(f"no member {member_id}")
        return await self._view(row)

    async def listed(self, org_id: str) -> list[Member]:
        rows = await asyncio.to_thread(self.store.members, org_id)
        return [await self._view(r) for r in rows]

    async def _of_org(self, org_id: str, member_id: str) -> MemberRow:
        row = await asyncio.to_thread(self.store.member, member_id)
        if row is None or row.org_id != org_id:
            raise NotFound(f"no member {member_id}")
        return row

    async def _keeps_an_admin(self, org_id: str, leaving: MemberRow) -> None:
        admins = [m for m in await asyncio.to_thread(self.store.members, org_id) if m.role == "admin"]
        if leaving.role == "admin" and [m.member_id for m in admins] == [leaving.member_id]:
            raise LastAdmin("the organization needs at least one admin")

    async def change_role(self, org_id: str, member_id: str, role: str, actor: str | None, cid: str) -> Member:
        row = await self._of_org(org_id, member_id)
        if role != "admin":
            await self._keeps_an_admin(org_id, row)
        row.role = role
        await asyncio.to_thread(self.store.save_member, row)
        event = MemberRoleChanged(
            org_id=org_id, member_id=member_id, email=row.email, role=role, actor=actor, correlation_id=cid
        )
        await publish_all(self.bus, [event])
        return await self._view(row)

    async def remove(self, org_id: str, member_id: str, actor: str | None, cid: str) -> None:
        row = await self._of_org(org_id, member_id)
        await self._keeps_an_admin(org_id, row)
        await asyncio.to_thread(self.store.forget_member, row)
        event = MemberRemoved(org_id=org_id, member_id=member_id, email=row.email, actor=actor, correlation_id=cid)
        await publish_all(self.bus, [event])

    async def activity(self, org_id: str, limit: int) -> list[AuditRow]:
        return await asyncio.to_thread(self.store.activity, org_id, limit)
