"""The delivery store on SQLite (offline) and PostgreSQL (e2e): scheduling is idempotent, leases
are exclusive, and only each job's first pending delivery to an endpoint is handed out."""

import asyncio
from datetime import timedelta

from services.notifier.adapters.store import FAILED, PENDING, SUCCEEDED, DeliveryStore, Outcome
from services.notifier.adapters.tables import AttemptRow, EndpointRow
from services.notifier.handlers import delivery_for, schedule
from services.notifier.tests.conftest import change
from shared.db import make_engine
from shared.events import utcnow

LEASE = timedelta(seconds=30)


def endpoint(store: DeliveryStore, endpoint_id: str) -> EndpointRow:
    now = utcnow()
    row = EndpointRow(
        id=endpoint_id,
        org_id="org_1",
        url="http://x",
        events=["job.routed"],
        secret="s",
        created_at=now,
        updated_at=now,
    )
    return store.add_endpoint(row)


def attempt(delivery, status_code: int) -> AttemptRow:
    return AttemptRow(
        delivery_id=delivery.id, endpoint_id=delivery.endpoint_id, at=utcnow(), status_code=status_code, latency_ms=1
    )


def test_scheduling_twice_keeps_one_delivery_per_change_and_endpoint(database):
    store = DeliveryStore(make_engine(database("sched")))
    a, b = endpoint(store, "wh_a"), endpoint(store, "wh_b")
    first = [delivery_for(e, "change-1", "job_1", "job.routed", "{}", utcnow()) for e in (a, b)]
    again = [delivery_for(e, "change-1", "job_1", "job.routed", "{}", utcnow()) for e in (a, b)]
    assert store.enqueue(first) == 2
    assert store.enqueue(again) == 0
    assert sum(b.pending for b in store.backlog()) == 2


def test_leases_are_exclusive_limited_per_endpoint_and_in_job_order(database):
    store = DeliveryStore(make_engine(database("claim")))
    busy, quiet = endpoint(store, "wh_busy"), endpoint(store, "wh_quiet")
    at = utcnow()
    store.enqueue([delivery_for(busy, f"c{i}", f"job_{i}", "job.routed", "{}", at) for i in range(10)])
    store.enqueue([delivery_for(busy, "c0-next", "job_0", "job.assigned", "{}", at)])  # job_0's second event
    store.enqueue([delivery_for(quiet, "q1", "job_q", "job.routed", "{}", at)])
    claimed = store.claim("worker-a", {}, 4, 100, LEASE)
    per_endpoint = [e.id for _, e in claimed]
    assert per_endpoint.count("wh_busy") == 4 and per_endpoint.count("wh_quiet") == 1
    assert "c0-next" not in {d.change_id for d, _ in claimed}
    assert store.claim("worker-b", {}, 100, 100, LEASE)[0][0].change_id not in {d.change_id for d, _ in claimed}
    again = store.claim("worker-c", {"wh_busy": 0, "wh_quiet": 0}, 4, 100, LEASE)
    assert again == []  # a full endpoint gets nothing more
    first = next(d for d, _ in claimed if d.change_id == "c0")
    assert "c0-next" not in {d.change_id for d, _ in store.claim("worker-d", {}, 100, 100, LEASE)}
    store.finish(first, attempt(first, 200), Outcome(SUCCEEDED, None), None)
    assert [d.change_id for d, _ in store.claim("worker-e", {}, 100, 100, LEASE)] == ["c0-next"]


def test_a_retry_waits_its_turn_and_a_failure_can_disable_the_endpoint(database):
    store = DeliveryStore(make_engine(database("finish")))
    e = endpoint(store, "wh_e")
    store.enqueue([delivery_for(e, "c1", "job_1", "job.routed", "{}", utcnow())])
    [(d, _)] = store.claim("w", {}, 4, 10, LEASE)
    later = utcnow() + timedelta(minutes=5)
    store.finish(d, attempt(d, 500), Outcome(PENDING, later), utcnow())
    assert store.claim("w", {}, 4, 10, LEASE) == []  # not due yet
    assert store.overdue_since() is None
    store.finish_many([(d, attempt(d, 410), Outcome(FAILED, None, "the endpoint answered 410 Gone"), utcnow())])
    assert store.endpoint("org_1", "wh_e").status == "disabled"
    assert [d.attempts for d, _ in store.deliveries("wh_e", None, 10)] == [2]
    assert len(store.deliveries("wh_e", None, 10)[0][1]) == 2


def test_only_changes_an_endpoint_subscribes_to_are_opened_and_scheduled(database):
    store = DeliveryStore(make_engine(database("opened")))
    endpoint(store, "wh_a")  # org_1 subscribes to job.routed only
    opened: list = []

    async def open_changes(changes):
        opened.extend(changes)
        return changes

    changes = [
        change("job_1", "job.routed", org="org_1"),
        change("job_2", "job.created", org="org_1"),  # a type nobody of org_1 subscribes to
        change("job_3", "job.routed", org="org_2"),  # an organization with no endpoint
    ]
    assert asyncio.run(schedule(store, changes, open_changes)) == 1
    assert [c.job_id for c in opened] == ["job_1"]  # the others cost no data key and no decryption
    assert asyncio.run(schedule(store, changes[1:], open_changes)) == 0 and len(opened) == 1
