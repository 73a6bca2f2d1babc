"""The lane gate (bulk work starts only while the normal lane is idle, and never waits unbounded)
and the lane an event travels."""

import asyncio
import time

import pytest
from faststream.kafka import KafkaBroker
from prometheus_client import REGISTRY

from shared.broker import EventBus, subscribe_lanes
from shared.events import (
    ALL_TOPICS,
    JOBS_GEOCODED,
    JOBS_GEOCODED_BULK,
    JOBS_OPTIMIZED,
    JOBS_REQUESTED_BULK,
    RouteOptimized,
    StopsGeocoded,
    caused_by,
)
from shared.lanes import LaneGate, current_lane
from shared.testing.builders import geocoded, import_requested, routed, stop


def capped(service: str) -> float:
    return REGISTRY.get_sample_value("routemate_lane_wait_capped_total", {"service": service}) or 0.0


async def test_bulk_work_starts_at_once_when_the_normal_lane_is_idle():
    gate = LaneGate("t-idle", grace_s=0.05)
    assert await gate.bulk_turn() < 0.01


async def test_bulk_work_waits_for_the_normal_message_in_hand_then_starts():
    gate = LaneGate("t-wait", grace_s=0.05, max_wait_s=3.0)
    order: list[str] = []

    async def normal():
        async with gate.normal():
            await asyncio.sleep(0.3)
            order.append("normal done")

    async def bulk():
        await asyncio.sleep(0.01)  # the normal message is in hand first
        waited = await gate.bulk_turn()
        order.append("bulk starts")
        return waited

    _, waited = await asyncio.gather(normal(), bulk())
    assert order == ["normal done", "bulk starts"]
    # its normal message plus the grace; far short of the cap (3 s), with room for a loaded machine
    assert 0.3 <= waited < 1.5


async def test_the_gap_between_two_normal_messages_of_a_poll_does_not_let_bulk_work_in():
    gate = LaneGate("t-gap", grace_s=0.1)
    order: list[str] = []

    async def normal_poll():
        for n in range(3):
            async with gate.normal():
                await asyncio.sleep(0.1)
                order.append(f"normal {n}")
            await asyncio.sleep(0.02)  # the consumer commits and takes the next record

    async def bulk():
        await asyncio.sleep(0.01)
        await gate.bulk_turn()
        order.append("bulk")

    await asyncio.gather(normal_poll(), bulk())
    assert order == ["normal 0", "normal 1", "normal 2", "bulk"]


async def test_a_normal_lane_that_is_never_idle_holds_bulk_work_no_longer_than_the_bound():
    gate = LaneGate("t-cap", grace_s=0.05, max_wait_s=0.3)
    before = capped("t-cap")
    async with gate.normal():
        started = time.monotonic()
        await gate.bulk_turn()
        # the consumer polls again: it keeps its group membership (room for a loaded machine)
        assert 0.3 <= time.monotonic() - started < 1.3
    assert capped("t-cap") == before + 1


def test_a_stage_keeps_its_input_lane_and_publishes_on_the_lanes_topic():
    imported = import_requested(stop(1, "1 Queen St")).model_copy(update={"lane": "bulk"})
    assert imported.topic == JOBS_REQUESTED_BULK
    geo = StopsGeocoded(**caused_by(imported, "StopsGeocoded"), job_id="j", job=imported.job, locations=())
    assert (geo.lane, geo.topic) == ("bulk", JOBS_GEOCODED_BULK)
    route = routed(geocoded([(-27.47, 153.02)]).model_copy(update={"lane": "bulk"}), [0])
    assert isinstance(route, RouteOptimized)
    assert route.topic == JOBS_OPTIMIZED  # one topic for every job's outcome: the status service reads it
    assert geocoded([(-27.47, 153.02)]).topic == JOBS_GEOCODED  # no lane said: normal, as before lanes
    assert {JOBS_REQUESTED_BULK, JOBS_GEOCODED_BULK} <= set(ALL_TOPICS)


@pytest.mark.parametrize("raw_lane", [None, "normal"])
def test_events_without_a_lane_decode_into_the_normal_lane(raw_lane):
    from shared.events import decode_event

    raw = import_requested(stop(1, "1 Queen St")).model_dump(mode="json")
    if raw_lane is None:
        raw.pop("lane")
    import json

    assert decode_event(json.dumps(raw).encode()).lane == "normal"


def test_the_bulk_lane_has_its_own_group_one_message_per_poll_and_a_poll_interval_beyond_the_gates_bound():
    broker = KafkaBroker("127.0.0.1:1")

    async def handler(event) -> None:
        pass

    gate = LaneGate("t-wiring", max_wait_s=200)
    subscribe_lanes(broker, EventBus(broker, "t"), [JOBS_GEOCODED], "routemate-x", handler, gate, max_poll_records=4)
    # FastStream keeps the consumer's settings in _connection_args
    wired = {
        s.group_id: (s.topic_names, s._connection_args["max_poll_records"], s._connection_args["max_poll_interval_ms"])
        for s in broker.subscribers
    }
    assert wired == {
        "routemate-x": ([JOBS_GEOCODED], 4, 300_000),
        "routemate-x-bulk": ([JOBS_GEOCODED_BULK], 1, 400_000),  # twice the longest wait at the gate
    }


def test_each_lane_can_keep_several_messages_in_hand_one_consumer_each_on_its_one_topic():
    from faststream.kafka.subscriber.usecase import ConcurrentBetweenPartitionsSubscriber

    from shared.broker import ConsumerCommitters, subscribe

    broker = KafkaBroker("127.0.0.1:1")

    async def handler(event) -> None:
        pass

    subscribe_lanes(broker, EventBus(broker, "t"), [JOBS_GEOCODED], "g", handler, LaneGate("t-hand"), in_hand=2)
    assert sorted((s.group_id, s.max_workers, type(s._listener)) for s in broker.subscribers) == [
        ("g", 2, ConsumerCommitters),  # each consumer commits its own partitions
        ("g-bulk", 2, ConsumerCommitters),
    ]
    assert all(isinstance(s, ConcurrentBetweenPartitionsSubscriber) for s in broker.subscribers)
    with pytest.raises(ValueError, match="one topic"):  # a consumer each per topic is not what FastStream runs
        subscribe(broker, EventBus(broker, "t"), [JOBS_GEOCODED, JOBS_OPTIMIZED], "h", handler, in_hand=2)


async def test_a_handler_knows_the_lane_of_the_message_it_handles():
    from faststream.kafka import TestKafkaBroker

    broker = KafkaBroker("127.0.0.1:1")
    seen: list[tuple[str, str]] = []

    async def handler(event) -> None:
        seen.append((event.job_id, current_lane()))

    subscribe_lanes(broker, EventBus(broker, "t"), [JOBS_GEOCODED], "g", handler, LaneGate("t-lane", grace_s=0))
    async with TestKafkaBroker(broker) as test:
        for lane, topic in (("normal", JOBS_GEOCODED), ("bulk", JOBS_GEOCODED_BULK)):
            event = geocoded([(1.0, 2.0)], job_id=f"j-{lane}")
            await test.publish(event.to_bytes(), topic, key=event.key)
    assert seen == [("j-normal", "normal"), ("j-bulk", "bulk")]
    assert current_lane() == "normal"  # outside a handler
