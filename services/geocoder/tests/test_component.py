"""The geocoder stage on FastStream's in-memory broker: event in, event out, poison dead-lettered."""

import asyncio

from faststream.kafka import TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage

from services.geocoder.app import create_app
from services.geocoder.settings import GeocoderSettings
from shared.broker import make_broker
from shared.events import DEADLETTER, JOBS_GEOCODED, ImportRequested, decode_event
from shared.events.jobs import JobSpec, RequestedStop
from tests.fakes import MemoryRedis


async def test_an_import_comes_out_geocoded_and_garbage_goes_to_the_dead_letter_topic():
    settings = GeocoderSettings()
    broker = make_broker(settings, "geocoder")
    create_app(settings, redis=MemoryRedis(), broker=broker)
    seen: dict[str, list[bytes]] = {JOBS_GEOCODED: [], DEADLETTER: []}

    @broker.subscriber(JOBS_GEOCODED)
    async def geocoded(msg: KafkaMessage) -> None:
        seen[JOBS_GEOCODED].append(msg.body)

    @broker.subscriber(DEADLETTER)
    async def dead(msg: KafkaMessage) -> None:
        seen[DEADLETTER].append(msg.body)

    spec = JobSpec(
        external_job_id="X",
        title="t",
        payload_hash="h",
        stops=(RequestedStop(stop_id="j.1", external_stop_id="S1", address="1 Queen St, Brisbane QLD 4000"),),
    )
    event = ImportRequested(org_id="o", job_id="j", integration_id="c", job=spec, correlation_id="req-9")
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(event.to_bytes(), "routemate.jobs.requested", key=b"j")
        await test_broker.publish(b"\x00not json", "routemate.jobs.requested", key=b"j")
        for _ in range(50):
            if seen[JOBS_GEOCODED] and seen[DEADLETTER]:
                break
            await asyncio.sleep(0.02)
    out = decode_event(seen[JOBS_GEOCODED][0])
    assert out.event_type == "StopsGeocoded" and out.correlation_id == "req-9"
    assert out.locations[0].precision == "postcode"
    assert b"not JSON" in seen[DEADLETTER][0]
