"""The delivery worker: leases due deliveries and attempts them concurrently, at most a few per
endpoint and a cap overall, so one slow or dead endpoint never holds up another; a job's
deliveries to an endpoint go out in event order (the store leases only the first pending one)."""

import asyncio
import logging
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlsplit

from services.notifier import metrics
from services.notifier.adapters.crypto import SecretBox
from services.notifier.adapters.sender import AttemptResult, WebhookSender
from services.notifier.adapters.store import SUCCEEDED, DeliveryStore
from services.notifier.adapters.tables import AttemptRow, DeliveryRow, EndpointRow
from services.notifier.handlers import Policy, decide, signing_secrets
from services.notifier.signing import signed_headers
from shared.background import Background, woken
from shared.broker import EventBus
from shared.events import WebhookEndpointDisabled, utcnow
from shared.vocabulary import as_utc

log = logging.getLogger(__name__)
BACKLOG_EVERY_S = 5.0
PREFETCH = 4  # leased per endpoint, in multiples of its in-flight limit
CLAIM_GAP_S = 0.02


class DeliveryWorker(Background):
    def __init__(
        self,
        store: DeliveryStore,
        sender: WebhookSender,
        box: SecretBox,
        policy: Policy,
        bus: EventBus | None,
        *,
        per_endpoint: int,
        overall: int,
        poll_s: float,
        timeout_s: float,
    ) -> None:
        self.store, self.sender, self.box, self.policy, self.bus = store, sender, box, policy, bus
        self.per_endpoint, self.overall, self.poll_s = per_endpoint, overall, poll_s
        # Long enough for the attempts queued ahead (PREFETCH - 1 rounds of timeouts) and its own; a
        # crashed worker's leases lapse after this and another attempt (the same webhook-id) follows.
        self.lease = timedelta(seconds=PREFETCH * timeout_s + 5)
        self.owner = uuid.uuid4().hex
        self.in_flight: Counter[str] = Counter()  # attempts under way, per endpoint
        self.held: Counter[str] = Counter()  # leased: under way or waiting in `queues`
        self.queues: dict[str, deque[tuple[DeliveryRow, EndpointRow]]] = defaultdict(deque)
        self._flying = 0
        self._stopping = False
        self._finished: list[tuple[tuple, asyncio.Future]] = []
        self._writer: asyncio.Task | None = None
        self.tasks: set[asyncio.Task] = set()
        self.wake = asyncio.Event()
        self._last_backlog = 0.0

    def poke(self) -> None:
        """New deliveries were scheduled: look now rather than at the next poll."""
        self.wake.set()

    async def run(self) -> None:
        try:
            while True:
                try:
                    started = await self.dispatch_once()
                    await self._observe_backlog()
                except Exception as exc:  # noqa: BLE001 - the database is down: try again shortly
                    log.warning("delivery pass failed (%s: %s)", type(exc).__name__, exc)
                    started = 0
                    await asyncio.sleep(1)
                await asyncio.sleep(CLAIM_GAP_S)  # one claim query serves many completions
                if started == 0:
                    await woken(self.wake, self.poll_s)
                    self.wake.clear()
        finally:
            for task in list(self.tasks):
                task.cancel()

    async def dispatch_once(self) -> int:
        """Lease what is due within the limits and start attempting it; returns how many were leased.

        Up to PREFETCH times the in-flight limit is leased per endpoint: the next attempts wait in
        memory and start the moment a slot frees, without a database round trip in between."""
        free = PREFETCH * self.overall - sum(self.held.values())
        if free <= 0:
            return 0
        limit = PREFETCH * self.per_endpoint
        capacity = {endpoint: limit - n for endpoint, n in self.held.items() if n}
        claimed = await asyncio.to_thread(self.store.claim, self.owner, capacity, limit, free, self.lease)
        for delivery, endpoint in claimed:
            self.queues[endpoint.id].append((delivery, endpoint))
            self.held[endpoint.id] += 1
        self._start_ready()
        return len(claimed)

    def _start_ready(self) -> None:
        """Start queued attempts wherever an endpoint (and the process) has a free slot."""
        if self._stopping:
            return
        for endpoint_id, queue in list(self.queues.items()):
            while queue and self.in_flight[endpoint_id] < self.per_endpoint and self._flying < self.overall:
                delivery, endpoint = queue.popleft()
                self.in_flight[endpoint_id] += 1
                self._flying += 1
                task = asyncio.create_task(self._attempt_logged(delivery, endpoint))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            if not queue:
                del self.queues[endpoint_id]

    def _slot_free(self, endpoint_id: str) -> None:
        self._flying -= 1
        self.in_flight[endpoint_id] -= 1
        if self.in_flight[endpoint_id] <= 0:
            del self.in_flight[endpoint_id]
        self._start_ready()

    async def _attempt_logged(self, delivery: DeliveryRow, endpoint: EndpointRow) -> None:
        answered = False

        def free_slot() -> None:
            # The request is answered: the endpoint's slot goes to its next queued attempt at once;
            # writing this attempt's outcome does not hold it.
            nonlocal answered
            if not answered:
                answered = True
                self._slot_free(endpoint.id)

        try:
            await self._attempt(delivery, endpoint, free_slot)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - its lease lapses and the delivery is attempted again
            log.warning("attempt of %s failed to complete (%s: %s)", delivery.id, type(exc).__name__, exc)
        finally:
            free_slot()
            self.held[endpoint.id] -= 1
            if self.held[endpoint.id] <= 0:
                del self.held[endpoint.id]
            self.wake.set()  # room to lease more (and the job's next event may be due)

    async def _attempt(self, delivery: DeliveryRow, endpoint: EndpointRow, answered: Callable[[], None]) -> None:
        now = utcnow()
        stamp = int(now.timestamp())
        payload = delivery.body.encode()
        headers = signed_headers(signing_secrets(endpoint, self.box, now), delivery.change_id, stamp, payload)
        result = await self.sender.post(endpoint.url, headers, payload)
        answered()
        finished = utcnow()
        outcome, failing_since = decide(delivery, endpoint, result, finished, self.policy)
        attempt = AttemptRow(
            delivery_id=delivery.id,
            endpoint_id=endpoint.id,
            at=now,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            error=result.error,
            response=result.response,
        )
        await self._record((delivery, attempt, outcome, failing_since))
        self._count(result, outcome.status, delivery)
        if outcome.disable_reason:
            await self._disabled(endpoint, outcome.disable_reason)

    async def _record(self, result: tuple) -> None:
        """Write an attempt's outcome; attempts finishing together share one transaction."""
        done = asyncio.get_running_loop().create_future()
        self._finished.append((result, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_finished())
        await done

    async def _write_finished(self) -> None:
        while self._finished:
            batch, self._finished = self._finished, []
            try:
                await asyncio.to_thread(self.store.finish_many, [result for result, _ in batch])
            except Exception as exc:  # noqa: BLE001 - each attempt's task sees the failure
                for _, done in batch:
                    done.set_exception(exc)
                continue
            for _, done in batch:
                done.set_result(None)

    def _count(self, result: AttemptResult, status: str, delivery: DeliveryRow) -> None:
        metrics.ATTEMPT_LATENCY.observe(result.latency_ms / 1000)
        if result.ok:
            kind = "success"
        elif result.refused:
            kind = "refused"
        elif result.status_code is not None:
            kind = "http_error"
        else:
            kind = "timeout" if (result.error or "").startswith("timeout") else "connection_error"
        metrics.ATTEMPTS.labels(kind).inc()
        if status == SUCCEEDED:
            metrics.DELIVERIES.labels("succeeded").inc()
            metrics.SOURCE_TO_RECEIPT.observe(max(0.0, (utcnow() - as_utc(delivery.source_at)).total_seconds()))
        elif status != "pending":
            metrics.DELIVERIES.labels("failed").inc()

    async def _disabled(self, endpoint: EndpointRow, reason: str) -> None:
        dropped = [delivery.id for delivery, _ in self.queues.pop(endpoint.id, ())]
        if dropped:
            self.held[endpoint.id] -= len(dropped)
            await asyncio.to_thread(self.store.release, dropped)
        metrics.ENDPOINTS_DISABLED.inc()
        log.warning("webhook endpoint %s disabled: %s", endpoint.id, reason)
        if self.bus is None:
            return
        event = WebhookEndpointDisabled(
            org_id=endpoint.org_id,
            endpoint_id=endpoint.id,
            url_host=urlsplit(endpoint.url).hostname or "",
            reason=reason,
        )
        try:
            await self.bus.publish(event)
        except Exception as exc:  # noqa: BLE001 - the endpoint is disabled either way; the audit line says so
            log.warning("could not publish the disabling of %s: %s", endpoint.id, exc)

    async def _observe_backlog(self) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_backlog < BACKLOG_EVERY_S:
            return
        self._last_backlog = loop.time()
        backlog = await asyncio.to_thread(self.store.backlog)
        due_since = await asyncio.to_thread(self.store.overdue_since)
        now = utcnow()
        metrics.DUE_LAG.set(max(0.0, (now - due_since).total_seconds()) if due_since else 0)
        metrics.BACKLOG.set(sum(b.pending for b in backlog))
        metrics.ENDPOINTS_BACKLOGGED.set(len(backlog))
        ages = sorted(((now - b.oldest).total_seconds(), b.endpoint_id) for b in backlog)
        metrics.OLDEST_PENDING.set(ages[-1][0] if ages else 0)
        metrics.ENDPOINT_OLDEST_PENDING.clear()
        for age, endpoint_id in ages[-10:]:
            metrics.ENDPOINT_OLDEST_PENDING.labels(endpoint_id).set(age)

    async def stop(self) -> None:
        self._stopping = True  # nothing new starts; leases of what was queued lapse for the next process
        await super().stop()
        while self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
