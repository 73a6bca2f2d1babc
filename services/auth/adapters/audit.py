"""The audit trail on Kafka, written in the background so a token answer never waits for the broker."""

import asyncio
import logging

from services.auth.adapters.tables import AuditRow
from shared.events import Event

log = logging.getLogger(__name__)


class AuditTrail:
    """Publishes audit events (TokenIssued) after the answer; a failure is logged, never raised."""

    def __init__(self, bus) -> None:
        self.bus = bus
        self.pending: set[asyncio.Task[None]] = set()

    def record(self, event: Event) -> None:
        task = asyncio.create_task(self._send(event))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def _send(self, event: Event) -> None:
        try:
            await self.bus.publish(event)
        except Exception:  # noqa: BLE001 - an audit event never fails a token request
            log.warning("could not publish %s", event.event_type)

    async def drain(self) -> None:
        """Wait for the events still on their way (at shutdown)."""
        for task in list(self.pending):
            await task


def subject_of(event: Event) -> str:
    """What a change was about, for the activity page: an integration, a driver or a member."""
    subject = str(getattr(event, "client_id", None) or getattr(event, "email", None) or "")
    role = getattr(event, "role", None)
    return f"{subject} ({role})" if role else subject


class RecordedBus:
    """Publishes each change and keeps it in the organization's activity (the console shows it).
    The row is written first: a change the console made is on its page even if Kafka is down."""

    def __init__(self, bus, store) -> None:
        self.bus, self.store = bus, store

    async def publish(self, event: Event) -> None:
        row = AuditRow(
            org_id=event.org_id,
            at=event.occurred_at,
            event_type=event.event_type,
            actor=getattr(event, "actor", None),
            subject=subject_of(event),
        )
        await asyncio.to_thread(self.store.add_audit, row)
        await self.bus.publish(event)
