"""The audit trail on Kafka, written in the background so a token answer never waits for the broker."""

import asyncio
import logging

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
