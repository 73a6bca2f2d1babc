"""The outbox relay: publishes the public job changes the projection wrote, then marks them sent.

At least once: a change is marked sent only after Kafka acknowledged it, so a crash in between
publishes it again with the same event id (the notifier delivers it once per endpoint). One job's
changes are published one after another (its order holds on its partition); jobs go in parallel.
"""

import asyncio
import logging
from collections import defaultdict
from datetime import timedelta

from services.status.adapters.outbox import Outbox, as_event
from services.status.adapters.tables import OutboxRow
from shared.background import Background, woken
from shared.broker import EventBus

log = logging.getLogger(__name__)
KEEP_SENT = timedelta(days=1)


class OutboxRelay(Background):
    def __init__(self, outbox: Outbox, bus: EventBus, *, batch: int = 500, idle_s: float = 0.5) -> None:
        self.outbox, self.bus, self.batch, self.idle_s = outbox, bus, batch, idle_s
        self.wake = asyncio.Event()
        self._passes = 0

    def poke(self) -> None:
        """The projection committed new changes: publish them now rather than at the next poll."""
        self.wake.set()

    async def run(self) -> None:
        while True:
            try:
                sent = await self.relay_once()
            except Exception as exc:  # noqa: BLE001 - Kafka or the database is down: try again shortly
                log.warning("outbox relay pass failed (%s: %s); retrying", type(exc).__name__, exc)
                sent = 0
                await asyncio.sleep(1)
            if sent < self.batch:
                await woken(self.wake, self.idle_s)
                self.wake.clear()

    async def relay_once(self) -> int:
        """Publish one batch of unsent changes; returns how many were sent."""
        rows = await asyncio.to_thread(self.outbox.pending, self.batch)
        if not rows:
            return 0
        by_job: dict[str, list[OutboxRow]] = defaultdict(list)
        for row in rows:
            by_job[row.job_id].append(row)
        results = await asyncio.gather(*(self._publish_in_order(job_rows) for job_rows in by_job.values()))
        done = [seq for seqs in results for seq in seqs]
        await asyncio.to_thread(self.outbox.mark_sent, done)
        self._passes += 1
        if self._passes % 1000 == 0:
            await asyncio.to_thread(self.outbox.prune, KEEP_SENT)
        return len(done)

    async def _publish_in_order(self, rows: list[OutboxRow]) -> list[int]:
        sent: list[int] = []
        for row in rows:
            try:
                await self.bus.publish(as_event(row))
            except Exception as exc:  # noqa: BLE001 - the rest of this job waits for the next pass
                log.warning("publishing change %s failed (%s); retrying later", row.change_id, exc)
                break
            sent.append(row.seq or 0)
        return sent
