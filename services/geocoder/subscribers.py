"""The geocoder's Kafka edge: which event goes to which handler, and the event that comes out."""

import time
from collections.abc import Awaitable, Callable
from functools import partial

from faststream.kafka import KafkaBroker

from services.geocoder.handlers import Geocoder
from shared.broker import EventBus, dispatcher, publish_outcome, subscribe_lanes
from shared.events import Event, ImportRequested
from shared.lanes import LaneGate
from shared.metrics import STAGE_DURATION

GROUP = "routemate-geocoder"


async def geocode_job(geocoder: Geocoder, bus: EventBus, event: ImportRequested) -> None:
    """Publish the job's StopsGeocoded, or its JobFailed when no stop could be placed."""
    started = time.perf_counter()
    await publish_outcome(bus, event, await geocoder.geocode(event), "geocoder")
    STAGE_DURATION.labels("geocode").observe(time.perf_counter() - started)


def routes(geocoder: Geocoder, bus: EventBus) -> dict[type[Event], Callable[[Event], Awaitable[None]]]:
    """The routing table: each event type this stage consumes, and its handler."""
    return {ImportRequested: partial(geocode_job, geocoder, bus)}


def include_subscribers(broker: KafkaBroker, bus: EventBus, geocoder: Geocoder, gate: LaneGate) -> None:
    """Consume both lanes of the routing table's events' topics; bulk only while normal is idle."""
    table = routes(geocoder, bus)

    dispatch = dispatcher(table)

    subscribe_lanes(broker, bus, sorted({event.TOPIC for event in table}), GROUP, dispatch, gate)
