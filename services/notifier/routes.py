"""HTTP edge of the notifier: an organization's webhook endpoints and their deliveries."""

import asyncio
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from services.notifier import handlers
from services.notifier.adapters.crypto import SecretBox
from services.notifier.adapters.sender import Resolver
from services.notifier.adapters.store import DeliveryStore
from services.notifier.handlers import Policy, endpoint_view
from shared.errors import Problem
from shared.http import bearer_matches
from shared.inputs import SafeText
from shared.tokens import CurrentIntegration

router = APIRouter(tags=["webhooks"])
# The operators' API (the `routemate webhook` CLI): on its own listener (app.admin_app).
admin = APIRouter(prefix="/admin/v1/webhooks", include_in_schema=False)
BASE = "/v1/integration-webhooks"


def _store(request: Request) -> DeliveryStore:
    return request.app.state.store


def _box(request: Request) -> SecretBox:
    return request.app.state.box


def _policy(request: Request) -> Policy:
    return request.app.state.policy


def _resolver(request: Request) -> Resolver:
    return request.app.state.resolver


def _poke(request: Request):
    return request.app.state.worker.poke


Store = Annotated[DeliveryStore, Depends(_store)]
Box = Annotated[SecretBox, Depends(_box)]
Rules = Annotated[Policy, Depends(_policy)]
Resolve = Annotated[Resolver, Depends(_resolver)]
Wake = Annotated[Any, Depends(_poke)]
EndpointId = Annotated[str, Field(max_length=100)]
Url = Annotated[str, Field(min_length=8, max_length=2000)]
Events = Annotated[list[Annotated[str, Field(max_length=100)]], Field(min_length=1, max_length=50)]


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: Url
    events: Events
    description: SafeText(500) | None = None


class EndpointPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: Url | None = None
    events: Events | None = None
    description: SafeText(500) | None = None
    status: Literal["active", "disabled"] | None = None


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grace_seconds: int = Field(24 * 3600, ge=0, le=7 * 24 * 3600)


@router.post(BASE, status_code=201, summary="Register a webhook endpoint (its secret is shown only here)")
async def create_endpoint(
    body: EndpointIn, store: Store, box: Box, policy: Rules, resolver: Resolve, who: CurrentIntegration
) -> JSONResponse:
    row, secret = await handlers.create_endpoint(
        store, box, policy, resolver, who.org_id, body.url, body.events, body.description
    )
    return JSONResponse(
        {**endpoint_view(row), "secret": secret}, status_code=201, headers={"Location": f"{BASE}/{row.id}"}
    )


@router.get(BASE, summary="The organization's webhook endpoints")
async def list_endpoints(store: Store, who: CurrentIntegration) -> dict[str, Any]:
    return {"endpoints": [endpoint_view(row) for row in await _endpoints(store, who.org_id)]}


async def _endpoints(store: DeliveryStore, org_id: str):
    return await asyncio.to_thread(store.endpoints, org_id)


@router.get(BASE + "/{endpoint_id}", summary="One webhook endpoint")
async def get_endpoint(endpoint_id: EndpointId, store: Store, who: CurrentIntegration) -> dict[str, Any]:
    return endpoint_view(await handlers.read_endpoint(store, who.org_id, endpoint_id))


@router.patch(BASE + "/{endpoint_id}", summary="Change an endpoint's URL, events, description or status")
async def update_endpoint(
    endpoint_id: EndpointId,
    body: EndpointPatch,
    store: Store,
    policy: Rules,
    resolver: Resolve,
    who: CurrentIntegration,
) -> dict[str, Any]:
    row = await handlers.read_endpoint(store, who.org_id, endpoint_id)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    return endpoint_view(await handlers.update_endpoint(store, policy, resolver, row, changes))


@router.delete(BASE + "/{endpoint_id}", status_code=204, summary="Delete an endpoint and its delivery log")
async def delete_endpoint(endpoint_id: EndpointId, store: Store, who: CurrentIntegration) -> Response:
    row = await handlers.read_endpoint(store, who.org_id, endpoint_id)
    await asyncio.to_thread(store.delete_endpoint, row.id)
    return Response(status_code=204)


@router.post(BASE + "/{endpoint_id}/rotate-secret", summary="A new signing secret; the old one signs too for a grace")
async def rotate_secret(
    endpoint_id: EndpointId, store: Store, box: Box, who: CurrentIntegration, body: RotateIn | None = None
) -> dict[str, Any]:
    row = await handlers.read_endpoint(store, who.org_id, endpoint_id)
    grace = timedelta(seconds=(body or RotateIn()).grace_seconds)
    updated, secret = await handlers.rotate_secret(store, box, row, grace)
    return {**endpoint_view(updated), "secret": secret}


@router.post(BASE + "/{endpoint_id}/test", status_code=202, summary="Send a webhook.test event to the endpoint")
async def send_test(endpoint_id: EndpointId, store: Store, wake: Wake, who: CurrentIntegration) -> dict[str, Any]:
    row = await handlers.read_endpoint(store, who.org_id, endpoint_id)
    delivery = await handlers.send_test(store, row)
    wake()
    return {"delivery_id": delivery.id, "webhook_id": delivery.change_id, "event_type": delivery.event_type}


@router.get(BASE + "/{endpoint_id}/deliveries", summary="The endpoint's deliveries, newest first, with attempts")
async def list_deliveries(
    request: Request,
    endpoint_id: EndpointId,
    store: Store,
    who: CurrentIntegration,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
) -> dict[str, Any]:
    row = await handlers.read_endpoint(store, who.org_id, endpoint_id)
    return await handlers.deliveries_page(store, row, cursor, request.app.state.settings.page_size)


@router.post(
    BASE + "/{endpoint_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    summary="Attempt a delivery again now (the same webhook-id)",
)
async def redeliver(
    endpoint_id: EndpointId,
    delivery_id: Annotated[str, Field(max_length=100)],
    store: Store,
    wake: Wake,
    who: CurrentIntegration,
) -> dict[str, Any]:
    row = await handlers.read_endpoint(store, who.org_id, endpoint_id)
    delivery = await handlers.redeliver(store, row, delivery_id)
    wake()
    return {"delivery_id": delivery.id, "webhook_id": delivery.change_id, "status": "pending"}


async def _require_admin(request: Request) -> None:
    """ADMIN_TOKEN (the operator's CLI) or INTERNAL_TOKEN (the console's webhooks page)."""
    settings = request.app.state.settings
    accepted = [t.get_secret_value() for t in (settings.admin_token, settings.internal_token) if t is not None]
    if not bearer_matches(request.headers.get("authorization"), *accepted):
        raise Problem(401, "invalid_admin_token", "A valid admin token is required.")


Admin = Annotated[None, Depends(_require_admin)]
OrgId = Annotated[str, Query(max_length=100)]


class AdminEndpointIn(EndpointIn):
    org_id: Annotated[str, Field(max_length=100)]


@admin.get("")
async def admin_list(org_id: OrgId, store: Store, _: Admin) -> dict[str, Any]:
    return {"endpoints": [endpoint_view(row) for row in await _endpoints(store, org_id)]}


@admin.post("", status_code=201)
async def admin_create(
    body: AdminEndpointIn, store: Store, box: Box, policy: Rules, resolver: Resolve, _: Admin
) -> JSONResponse:
    row, secret = await handlers.create_endpoint(
        store, box, policy, resolver, body.org_id, body.url, body.events, body.description
    )
    return JSONResponse({**endpoint_view(row), "org_id": row.org_id, "secret": secret}, status_code=201)


@admin.delete("/{endpoint_id}", status_code=204)
async def admin_delete(endpoint_id: EndpointId, org_id: OrgId, store: Store, _: Admin) -> Response:
    row = await handlers.read_endpoint(store, org_id, endpoint_id)
    await asyncio.to_thread(store.delete_endpoint, row.id)
    return Response(status_code=204)
