"""Organizations on the auth admin API: how long their finished jobs are kept, and offboarding.

Both are announced on the auth topic: the status service keeps the retention setting (its
retention task reads it) and erases the organization's jobs when it reads OrganizationErased.
"""

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlmodel import Session, delete, select

from services.auth.adapters.store import AuthStore
from services.auth.adapters.tables import AuditRow, DriverRow, IntegrationRow, MemberRow, OrganizationRow
from services.auth.adapters.tokens import TokenStore
from services.auth.admin_handlers import NotFound, Publisher, publish_all
from services.auth.deps import AdminOnly, CorrelationId
from services.auth.routes import OrgName, _as_problems
from shared.events import OrganizationErased, OrgRetentionSet
from shared.pii import DataKeys, org_subject

router = APIRouter(prefix="/admin/v1/orgs")


@dataclass(frozen=True)
class Organizations:
    store: AuthStore
    tokens: TokenStore
    keys: DataKeys
    bus: Publisher

    async def set_retention(self, org_name: str, days: float | None, correlation_id: str) -> dict[str, Any]:
        org = await self._org(org_name)
        event = OrgRetentionSet(org_id=org.org_id, job_retention_days=days, correlation_id=correlation_id)
        await publish_all(self.bus, [event])
        return {"org_id": org.org_id, "org": org.name, "job_retention_days": days}

    async def erase(self, org_name: str, correlation_id: str) -> dict[str, Any]:
        """Tokens ended; integrations, drivers, console members and activity deleted; the
        organization key destroyed (its driver directory in the log opens no more); then
        OrganizationErased for everyone else."""
        org = await self._org(org_name)
        clients = await asyncio.to_thread(_client_ids, self.store, org.org_id)
        tokens = sum([await self.tokens.revoke_all(client_id) for client_id in clients])
        await self.keys.destroy([org_subject(org.org_id)])
        drivers = await asyncio.to_thread(_delete_org, self.store, org.org_id)
        await publish_all(self.bus, [OrganizationErased(org_id=org.org_id, correlation_id=correlation_id)])
        return {"org_id": org.org_id, "integrations": len(clients), "tokens_revoked": tokens, "drivers": drivers}

    async def _org(self, name: str) -> OrganizationRow:
        org = await asyncio.to_thread(self.store.organization, name, False)
        if org is None:
            raise NotFound(f"no organization {name!r}")
        return org


def _client_ids(store: AuthStore, org_id: str) -> list[str]:
    with Session(store.engine) as s:
        return list(s.exec(select(IntegrationRow.client_id).where(IntegrationRow.org_id == org_id)).all())


def _delete_org(store: AuthStore, org_id: str) -> int:
    with Session(store.engine) as s:
        drivers = len(s.exec(select(DriverRow.email).where(DriverRow.org_id == org_id)).all())
        s.exec(delete(DriverRow).where(DriverRow.org_id == org_id))
        s.exec(delete(IntegrationRow).where(IntegrationRow.org_id == org_id))
        s.exec(delete(MemberRow).where(MemberRow.org_id == org_id))  # console members: emails, password hashes
        s.exec(delete(AuditRow).where(AuditRow.org_id == org_id))  # their activity names them
        s.exec(delete(OrganizationRow).where(OrganizationRow.org_id == org_id))
        s.commit()
    return drivers


def _organizations(request: Request) -> Organizations:
    return request.app.state.organizations


OrganizationsDep = Annotated[Organizations, Depends(_organizations)]


class RetentionIn(BaseModel):
    job_retention_days: float | None = Field(None, gt=0, le=36500, description="None: kept for ever")


@router.put("/{org}/retention")
async def set_retention(
    org: OrgName, body: RetentionIn, _: AdminOnly, orgs: OrganizationsDep, cid: CorrelationId
) -> dict[str, Any]:
    with _as_problems():
        return await orgs.set_retention(org, body.job_retention_days, cid)


@router.post("/{org}/erase")
async def erase(org: OrgName, _: AdminOnly, orgs: OrganizationsDep, cid: CorrelationId) -> dict[str, Any]:
    with _as_problems():
        return await orgs.erase(org, cid)
