"""The geocoder's Kafka edge: which event goes to which handler, and the event that comes out."""

import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial

from faststream.kafka import KafkaBroker

from services.geocoder.handlers import Geocoder
from shared.broker import EventBus, dispatcher, publish_outcome, subscribe_lanes
from shared.events import Event, ImportRequested, JobErased
from shared.lanes import LaneGate
from shared.metrics import STAGE_DURATION
from shared.pii import DataKeys, SealingBus

GROUP = "routemate-geocoder"
log = logging.getLogger(__name__)


async def geocode_job(geocoder: Geocoder, bus: EventBus, keys: DataKeys, event: ImportRequested) -> None:
    """Publish the job's StopsGeocoded, or its JobFailed when no stop could be placed; an erased
    job's import (its addresses unreadable) is dropped."""
    started = time.perf_counter()
    event, erased = await keys.open(event)  # type: ignore[assignment]
    if erased:
        log.info("import of erased job %s dropped", event.job_id)
        return
    await publish_outcome(bus, event, await geocoder.geocode(event), "geocoder")
    STAGE_DURATION.labels("geocode").observe(time.perf_counter() - started)


async def forget_job(geocoder: Geocoder, keys: DataKeys, event: JobErased) -> None:
    """Delete the geocode cache entries the erased job created; its data key leaves this
    process's cache at once."""
    keys.forget([event.job_id])
    log.info("erased job %s: %d geocode cache entries deleted", event.job_id, await geocoder.forget(event.job_id))


def routes(geocoder: Geocoder, bus: EventBus, keys: DataKeys) -> dict[type[Event], Callable[[Event], Awaitable[None]]]:
    """The routing table: each event type this stage consumes, and its handler."""
    return {ImportRequested: partial(geocode_job, geocoder, bus, keys), JobErased: partial(forget_job, geocoder, keys)}


def include_subscribers(broker: KafkaBroker, bus: EventBus, geocoder: Geocoder, gate: LaneGate, keys: DataKeys) -> None:
    """Consume both lanes of the routing table's events' topics; bulk only while normal is idle.
    What it publishes leaves with the job's personal fields sealed again."""
    bus = SealingBus(bus, keys)  # type: ignore[assignment]
    table = routes(geocoder, bus, keys)

    dispatch = dispatcher(table)

    subscribe_lanes(broker, bus, sorted({event.TOPIC for event in table}), GROUP, dispatch, gate)
