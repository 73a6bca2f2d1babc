"""A consumer is handed its message on the event loop: no worker-thread hop per message or batch
(FastDepends runs a synchronous context field in a thread; shared.broker resolves it on the loop)."""

import anyio.to_thread
from faststream.kafka import KafkaBroker, TestKafkaBroker
from prometheus_client import REGISTRY

from shared.broker import EventBus, subscribe, subscribe_batch
from shared.testing.builders import import_requested, stop
from shared.testing.waiting import async_wait_until


async def test_per_message_and_batch_consumers_take_their_messages_without_a_thread_hop(monkeypatch):
    hops = []
    real = anyio.to_thread.run_sync

    async def counting(func, *args, **kwargs):
        hops.append(getattr(func, "__qualname__", repr(func)))
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    broker = KafkaBroker("localhost:9092")
    bus = EventBus(broker, "test")
    one, many = [], []

    async def handle(event):
        one.append(event)

    async def handle_many(events):
        many.extend(events)

    def batches() -> tuple[float, float]:
        return tuple(  # type: ignore[return-value]
            REGISTRY.get_sample_value(f"routemate_consumer_batch_events_{part}", {"service": "test"}) or 0.0
            for part in ("count", "sum")
        )

    before = batches()
    subscribe(broker, bus, ["routemate.jobs.requested"], "g1", handle)
    subscribe_batch(broker, bus, ["routemate.jobs.requested"], "g2", handle_many, handle, linger_ms=5)
    async with TestKafkaBroker(broker) as test:
        for i in range(3):
            event = import_requested(stop(0, "1 Lane"), job_id=f"j{i}")
            await test.publish(event.to_bytes(), "routemate.jobs.requested", key=event.key)

        async def delivered() -> bool:
            return len(one) == 3 and len(many) == 3

        await async_wait_until(delivered, what="both consumers to take the three events")
    assert hops == []
    # the batch consumer's batches are observed, with the events each held
    count, events = (after - earlier for after, earlier in zip(batches(), before, strict=True))
    assert count >= 1 and events == 3
