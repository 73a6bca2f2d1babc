"""The geocoder stage through create_app on FastStream's in-memory broker: event in, event out."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage

from services.geocoder.app import create_app
from services.geocoder.handlers import Found
from services.geocoder.settings import GeocoderSettings
from shared.broker import make_broker
from shared.events import (
    DEADLETTER,
    JOBS_FAILED,
    JOBS_GEOCODED,
    JOBS_GEOCODED_BULK,
    JOBS_REQUESTED,
    JOBS_REQUESTED_BULK,
    Event,
    decode_event,
)
from shared.testing.builders import import_requested, stop
from shared.testing.fakes import MemoryRedis
from shared.testing.waiting import async_wait_until
from shared.vocabulary import FailureCode, WarningCode

QUEEN_ST = "1 Queen St, Brisbane QLD 4000"


@dataclass
class Stage:
    broker: KafkaBroker
    http: httpx.AsyncClient | None = None
    out: dict[str, list] = field(
        default_factory=lambda: {JOBS_GEOCODED: [], JOBS_GEOCODED_BULK: [], JOBS_FAILED: [], DEADLETTER: []}
    )

    async def send(self, event: Event) -> None:
        """On the topic of the event's lane, as ingest publishes it."""
        await self.broker.publish(event.to_bytes(), event.topic, key=event.key)

    async def next_on(self, topic: str):
        """The first message the stage published on `topic` (an event, or a dead letter's bytes)."""

        async def probe():
            return self.out[topic]

        return (await async_wait_until(probe, seconds=5, every=0.01, what=f"a message on {topic}"))[0]


@asynccontextmanager
async def geocoder_stage(redis: MemoryRedis | None = None, **deps) -> AsyncIterator[Stage]:
    """The stage as `python -m services.geocoder` builds it, on a test broker, fakes passed in."""
    settings = GeocoderSettings(geocoder_providers="gazetteer")
    broker = make_broker(settings, "geocoder")
    deps.setdefault("keys_redis", MemoryRedis())  # the durable Redis of the jobs' data keys
    app = create_app(settings, redis=redis or MemoryRedis(), broker=broker, **deps)
    stage = Stage(broker)
    for topic, seen in stage.out.items():
        _collect(broker, topic, seen)
    async with (
        TestKafkaBroker(broker),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://geocoder") as stage.http,
    ):
        yield stage


def _collect(broker: KafkaBroker, topic: str, seen: list) -> None:
    @broker.subscriber(topic)
    async def collect(msg: KafkaMessage) -> None:
        seen.append(msg if topic == DEADLETTER else decode_event(msg.body))


class Rooftop:
    """A provider that places every address on one rooftop."""

    name = "fake"

    async def lookup(self, address: str) -> Found:
        return Found(-27.47, 153.02, "rooftop", self.name)

    async def close(self) -> None:
        pass


async def test_an_import_comes_out_geocoded_and_garbage_goes_to_the_dead_letter_topic():
    event = import_requested(stop(1, QUEEN_ST)).model_copy(update={"correlation_id": "req-9"})
    async with geocoder_stage() as stage:
        await stage.send(event)
        await stage.broker.publish(b"\x00not json", JOBS_REQUESTED, key=b"j")
        out = await stage.next_on(JOBS_GEOCODED)
        dead = await stage.next_on(DEADLETTER)
    assert out.event_type == "StopsGeocoded" and out.correlation_id == "req-9" and out.job_id == event.job_id
    assert out.locations[0].precision == "postcode" and out.locations[0].provider == "gazetteer"
    assert [w.code for w in out.warnings] == [WarningCode.GEOCODE_APPROXIMATE]
    # parked as it came (original bytes), with the reason and its origin in the headers
    assert dead.body == b"\x00not json" and "not JSON" in dead.headers["reason"]
    assert dead.headers["source_topic"] == JOBS_REQUESTED and dead.headers["service"] == "geocoder"


async def test_a_job_whose_addresses_all_fail_comes_out_failed():
    async with geocoder_stage() as stage:
        await stage.send(import_requested(stop(1, "nowhere at all"), stop(2, "also nowhere")))
        failed = await stage.next_on(JOBS_FAILED)
    assert failed.event_type == "JobFailed" and failed.stage == "geocoder"
    assert failed.code == FailureCode.GEOCODE_FAILED_ALL
    assert [(w.code, w.external_stop_id) for w in failed.warnings] == [
        (WarningCode.GEOCODE_FAILED, "S1"),
        (WarningCode.GEOCODE_FAILED, "S2"),
    ]
    assert stage.out[JOBS_GEOCODED] == []


async def test_the_chain_given_to_the_app_places_the_stops():
    async with geocoder_stage(chain=[Rooftop()]) as stage:
        await stage.send(import_requested(stop(1, "anything at all")))
        out = await stage.next_on(JOBS_GEOCODED)
    assert (out.locations[0].precision, out.locations[0].provider) == ("rooftop", "fake")
    assert out.warnings == ()


async def test_a_redis_outage_costs_cache_hits_not_the_job():
    redis = MemoryRedis()
    redis.down = True
    async with geocoder_stage(redis) as stage:
        await stage.send(import_requested(stop(1, QUEEN_ST)))
        out = await stage.next_on(JOBS_GEOCODED)
    assert out.locations[0].precision == "postcode"


async def test_health_and_metrics_answer_in_process():
    async with geocoder_stage() as stage:
        await stage.send(import_requested(stop(1, QUEEN_ST)))
        await stage.next_on(JOBS_GEOCODED)
        health = await stage.http.get("/healthz")
        metrics = await stage.http.get("/metrics")
    assert health.status_code == 200 and health.json()["checks"] == {"kafka": True}
    assert 'routemate_geocode_cache_total{result="miss"}' in metrics.text
    assert 'routemate_stage_duration_seconds_count{stage="geocode"}' in metrics.text


def test_the_cache_lives_in_the_evictable_redis_never_in_the_durable_one(monkeypatch):
    """Addresses are chosen by callers: their cache entries go to CACHE_REDIS_URL (allkeys-lru),
    so filling it can never push a token or a lockout out of REDIS_URL (noeviction)."""
    import services.geocoder.app as wiring

    opened: list[str | None] = []
    monkeypatch.setattr(wiring, "make_redis", lambda settings, url=None: opened.append(url) or MemoryRedis())
    settings = GeocoderSettings(redis_url="redis://durable:6379/0", cache_redis_url="redis://cache:6380/0")
    create_app(settings, broker=make_broker(settings, "geocoder"))
    assert opened == ["redis://cache:6380/0", None]  # the cache, then the durable one for the data keys only
    assert GeocoderSettings().cache_redis_url == "redis://127.0.0.1:6380/0"


async def test_both_lanes_are_geocoded_and_each_job_stays_in_its_lane():
    bulk = import_requested(stop(1, QUEEN_ST), job_id="j_bulk").model_copy(update={"lane": "bulk"})
    async with geocoder_stage() as stage:
        await stage.send(bulk)
        await stage.send(import_requested(stop(1, QUEEN_ST), job_id="j_normal"))
        from_bulk = await stage.next_on(JOBS_GEOCODED_BULK)
        from_normal = await stage.next_on(JOBS_GEOCODED)
        await stage.broker.publish(b"\x00not json", JOBS_REQUESTED_BULK, key=b"j")
        dead = await stage.next_on(DEADLETTER)
        metrics = (await stage.http.get("/metrics")).text
    assert (from_bulk.job_id, from_bulk.lane) == ("j_bulk", "bulk")
    assert (from_normal.job_id, from_normal.lane) == ("j_normal", "normal")
    assert [e.job_id for e in stage.out[JOBS_GEOCODED]] == ["j_normal"]  # no bulk job in the normal lane
    assert dead.headers["source_topic"] == JOBS_REQUESTED_BULK
    assert 'routemate_lane_wait_seconds_count{service="geocoder"}' in metrics


async def test_sealed_addresses_are_opened_resealed_and_an_erased_jobs_cache_entries_deleted():
    """The import's addresses travel sealed: the geocoder opens them with the job's key, its
    StopsGeocoded leaves sealed, the cache remembers which entries the job created, and JobErased
    deletes them; an erased job's import is dropped."""
    from shared import pii
    from shared.events import JobErased

    cache, durable = MemoryRedis(), MemoryRedis()
    keys = pii.DataKeys(durable, GeocoderSettings().kek_material)
    sealed = await keys.seal(import_requested(stop(1, "9 Unique Lane, Brisbane QLD 4000"), job_id="j1"))
    async with geocoder_stage(redis=cache, keys_redis=durable) as stage:
        await stage.send(sealed)
        out = await stage.next_on(JOBS_GEOCODED)
        assert out.locations[0].lat is not None  # the address was read
        assert pii.is_sealed(out.job.stops[0].address)  # and left sealed
        entries = await cache.smembers("rm:geojob:j1")
        assert len(entries) == 1 and await cache.get(next(iter(entries)).decode()) is not None
        await stage.send(JobErased(org_id="o", job_id="j1"))

        async def forgotten() -> bool:
            return not await cache.exists("rm:geojob:j1", next(iter(entries)).decode())

        await async_wait_until(forgotten, seconds=5, every=0.01, what="the job's cache entries deleted")
        gone = await keys.seal(import_requested(stop(1, QUEEN_ST), job_id="j2"))
        await keys.destroy(["j2"])  # erased while its import was on its way
        await stage.send(gone)
    assert len(stage.out[JOBS_GEOCODED]) == 1 and not stage.out[JOBS_FAILED]  # it produced nothing
