"""The notifier's use-cases: manage an organization's endpoints, schedule a delivery per change and
endpoint, and decide what one attempt's result means. Plain functions of (input, dependencies);
the database is synchronous, so its calls run in a worker thread."""

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.notifier.adapters.crypto import SecretBox
from services.notifier.adapters.sender import AttemptResult, Resolver
from services.notifier.adapters.store import FAILED, PENDING, SUCCEEDED, DeliveryStore, Outcome
from services.notifier.adapters.tables import DeliveryRow, EndpointRow
from services.notifier.signing import body, new_secret, retry_delay
from services.notifier.targets import TargetRefused, check_url, vet
from shared.errors import Problem
from shared.events import CHANGE_TYPES, JobChanged, utcnow
from shared.vocabulary import as_utc

ERASED_CHANGE = "job.erased"  # status's outbox announces an erased job (services/status/adapters/erasure.py)

TEST_EVENT = "webhook.test"
MAX_GRACE = timedelta(days=7)


@dataclass(frozen=True)
class Policy:
    """Where webhooks may go and how failures are treated (from the settings)."""

    https_only: bool
    allow_private: bool
    retry_scale: float
    disable_after: timedelta
    max_endpoints: int


def endpoint_view(row: EndpointRow) -> dict[str, Any]:
    """The public shape of an endpoint (never its secret)."""
    return {
        "id": row.id,
        "url": row.url,
        "events": row.events,
        "description": row.description,
        "status": row.status,
        "disabled_reason": row.disabled_reason,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
        "previous_secret_valid_until": _iso(row.old_secret_until) if _in_grace(row, utcnow()) else None,
    }


def _iso(value: datetime | None) -> str | None:
    value = as_utc(value)
    return value.isoformat().replace("+00:00", "Z") if value else None


def _invalid(pointer: str, reason: str, code: str = "validation_failed") -> Problem:
    return Problem(422, code, reason, errors=[{"pointer": pointer, "reason": reason, "type": code}])


async def check_target(url: str, policy: Policy, resolver: Resolver) -> None:
    """A URL a webhook may be registered for: its shape, and where its host resolves now."""
    try:
        host, port = check_url(url, https_only=policy.https_only)
        addresses = await resolver(host, port)
        if addresses:  # a host that does not resolve yet is checked again at every attempt
            vet(addresses, allow_private=policy.allow_private)
    except TargetRefused as exc:
        raise _invalid("/url", f"This URL cannot receive webhooks: {exc}.", "invalid_webhook_url") from None


def check_events(events: list[str]) -> list[str]:
    for i, name in enumerate(events):
        if name not in CHANGE_TYPES:
            raise _invalid(f"/events/{i}", f"Unknown event type {name!r}; known: {', '.join(CHANGE_TYPES)}.")
    return list(dict.fromkeys(events))


async def create_endpoint(
    store: DeliveryStore,
    box: SecretBox,
    policy: Policy,
    resolver: Resolver,
    org_id: str,
    url: str,
    events: list[str],
    description: str | None,
) -> tuple[EndpointRow, str]:
    """A new endpoint and its signing secret (the only time the secret is shown)."""
    events = check_events(events)
    await check_target(url, policy, resolver)
    if len(await asyncio.to_thread(store.endpoints, org_id)) >= policy.max_endpoints:
        raise Problem(409, "too_many_endpoints", f"An organization may have {policy.max_endpoints} endpoints.")
    secret, now = new_secret(), utcnow()
    row = EndpointRow(
        id="wh_" + uuid.uuid4().hex,
        org_id=org_id,
        url=url,
        description=description,
        events=events,
        secret=box.seal(secret),
        created_at=now,
        updated_at=now,
    )
    return await asyncio.to_thread(store.add_endpoint, row), secret


async def read_endpoint(store: DeliveryStore, org_id: str, endpoint_id: str) -> EndpointRow:
    """One endpoint of this organization; another organization's does not exist for the caller."""
    row = await asyncio.to_thread(store.endpoint, org_id, endpoint_id)
    if row is None:
        raise Problem(404, "webhook_not_found", "No such webhook endpoint for this organization.")
    return row


async def update_endpoint(
    store: DeliveryStore, policy: Policy, resolver: Resolver, row: EndpointRow, changes: dict[str, Any]
) -> EndpointRow:
    """Change url, events, description or status; enabling again forgets the failures."""
    if "url" in changes:
        await check_target(changes["url"], policy, resolver)
    if "events" in changes:
        changes["events"] = check_events(changes["events"])
    if changes.get("status") == "active" and row.status != "active":
        changes |= {"disabled_reason": None, "failing_since": None}
    elif changes.get("status") == "disabled" and row.status != "disabled":
        changes["disabled_reason"] = "disabled by the organization"
    updated = row.model_copy(update={**changes, "updated_at": utcnow()})
    return await asyncio.to_thread(store.save_endpoint, updated)


async def rotate_secret(store: DeliveryStore, box: SecretBox, row: EndpointRow, grace: timedelta) -> tuple:
    """A new secret; the old one keeps signing (beside the new) for `grace`."""
    if grace < timedelta(0) or grace > MAX_GRACE:
        raise _invalid("/grace_seconds", f"grace_seconds must be from 0 to {int(MAX_GRACE.total_seconds())}.")
    secret, now = new_secret(), utcnow()
    updated = row.model_copy(
        update={
            "secret": box.seal(secret),
            "old_secret": row.secret,
            "old_secret_until": now + grace,
            "updated_at": now,
        }
    )
    return await asyncio.to_thread(store.save_endpoint, updated), secret


def signing_secrets(row: EndpointRow, box: SecretBox, now: datetime) -> list[str]:
    """The secrets that sign now: the current one, and the previous one during its grace."""
    current = [box.open(row.secret)]
    return current + [box.open(row.old_secret)] if row.old_secret and _in_grace(row, now) else current


def _in_grace(row: EndpointRow, now: datetime) -> bool:
    until = as_utc(row.old_secret_until)
    return bool(row.old_secret and until and until > now)


def delivery_for(endpoint: EndpointRow, change_id: str, job_id: str, event_type: str, payload: str, at: datetime):
    now = utcnow()
    return DeliveryRow(
        id="msg_" + uuid.uuid4().hex,
        endpoint_id=endpoint.id,
        org_id=endpoint.org_id,
        change_id=change_id,
        job_id=job_id,
        event_type=event_type,
        body=payload,
        source_at=at,
        next_attempt_at=now,
        created_at=now,
    )


async def schedule(
    store: DeliveryStore,
    changes: list[JobChanged],
    open_changes: Callable[[list[JobChanged]], Awaitable[list[JobChanged]]] | None = None,
) -> int:
    """Durably schedule one delivery per change and subscribed endpoint of its organization
    (before the changes' offsets are committed); a change seen before adds nothing. Only the
    changes some endpoint subscribes to are opened (`open_changes`: their job views unsealed):
    the others cost no data key and no decryption."""
    erased = [c.job_id for c in changes if c.change_type == ERASED_CHANGE]
    if erased:  # the job was erased: what is pending for it is never sent, and no copy is kept
        await asyncio.to_thread(store.forget_jobs, erased)
        changes = [c for c in changes if c.job_id not in erased]
    if not changes:
        return 0
    endpoints = await asyncio.to_thread(store.subscribers, {c.org_id for c in changes})
    wanted = {(e.org_id, name) for e in endpoints for name in e.events}
    changes = [c for c in changes if (c.org_id, c.change_type) in wanted]
    if changes and open_changes is not None:
        changes = await open_changes(changes)
    changes = [c for c in changes if isinstance(c.data, dict)]  # a job erased since: nothing to tell
    if not changes:
        return 0
    deliveries = [
        delivery_for(e, str(c.event_id), c.job_id, c.change_type, _body(c), c.occurred_at)
        for c in changes
        for e in endpoints
        if e.org_id == c.org_id and c.change_type in e.events
    ]
    return await asyncio.to_thread(store.enqueue, deliveries)


def _body(change: JobChanged) -> str:
    # Receivers drop stale events by version: every body carries it, whatever the source put in data.
    return body(change.change_type, change.occurred_at, {**change.data, "version": change.version})


async def send_test(store: DeliveryStore, endpoint: EndpointRow) -> DeliveryRow:
    """Schedule a `webhook.test` delivery to the endpoint now."""
    now, change_id = utcnow(), "msg_" + uuid.uuid4().hex
    data = {"endpoint_id": endpoint.id, "message": "A test event from RouteMate."}
    delivery = delivery_for(endpoint, change_id, change_id, TEST_EVENT, body(TEST_EVENT, now, data), now)
    await asyncio.to_thread(store.enqueue, [delivery])
    return delivery


def decide(
    delivery: DeliveryRow, endpoint: EndpointRow, result: AttemptResult, now: datetime, policy: Policy
) -> tuple[Outcome, datetime | None]:
    """What an attempt's result means for the delivery and the endpoint: (outcome, failing_since)."""
    if result.ok:
        return Outcome(SUCCEEDED, None), None
    failing_since = as_utc(endpoint.failing_since) or now
    if result.status_code == 410:
        return Outcome(FAILED, None, "the endpoint answered 410 Gone"), failing_since
    if now - failing_since > policy.disable_after:
        days = policy.disable_after.total_seconds() / 86400
        return Outcome(FAILED, None, f"every delivery failed for more than {days:g} days"), failing_since
    wait = retry_delay(delivery.attempts + 1, policy.retry_scale)
    if wait is None:
        return Outcome(FAILED, None), failing_since
    return Outcome(PENDING, now + wait), failing_since


def delivery_view(delivery: DeliveryRow, attempts: list) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "webhook_id": delivery.change_id,
        "event_type": delivery.event_type,
        "job_id": None if delivery.event_type == TEST_EVENT else delivery.job_id,
        "status": delivery.status,
        "attempt_count": delivery.attempts,
        "next_attempt_at": _iso(delivery.next_attempt_at) if delivery.status == PENDING else None,
        "created_at": _iso(delivery.created_at),
        "payload": json.loads(delivery.body),
        "attempts": [
            {
                "at": _iso(a.at),
                "status_code": a.status_code,
                "latency_ms": a.latency_ms,
                "error": a.error,
                "response": a.response,
            }
            for a in attempts
        ],
    }


async def deliveries_page(store: DeliveryStore, endpoint: EndpointRow, cursor: str | None, size: int) -> dict:
    before = None
    if cursor is not None:
        if not cursor.isdigit():
            raise Problem(400, "invalid_cursor", "The cursor is not one this endpoint returned.")
        before = int(cursor)
    found = await asyncio.to_thread(store.deliveries, endpoint.id, before, size + 1)
    page, more = found[:size], len(found) > size
    return {
        "deliveries": [delivery_view(d, a) for d, a in page],
        "next_cursor": str(page[-1][0].seq) if more and page else None,
    }


async def redeliver(store: DeliveryStore, endpoint: EndpointRow, delivery_id: str) -> DeliveryRow:
    delivery = await asyncio.to_thread(store.delivery, endpoint.id, delivery_id)
    if delivery is None:
        raise Problem(404, "delivery_not_found", "No such delivery for this endpoint.")
    await asyncio.to_thread(store.redeliver, delivery_id)
    return delivery
