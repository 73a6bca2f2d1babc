"""The optimizer stage through create_app on FastStream's in-memory broker: event in, event out."""

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage

from services.optimizer import ils
from services.optimizer.adapters import great_circle
from services.optimizer.adapters.matrix import Matrix
from services.optimizer.app import create_app
from services.optimizer.settings import OptimizerSettings
from shared.broker import make_broker
from shared.events import JOBS_FAILED, JOBS_OPTIMIZED, Event, ReplanRequested, decode_event, utcnow
from shared.events.jobs import ReplanStop, StartPoint
from shared.testing.builders import BRISBANE, geocoded
from shared.testing.waiting import async_wait_until
from shared.vocabulary import FailureCode, UnroutedReason

SETTINGS = OptimizerSettings(routing_url=None)


@dataclass
class Stage:
    broker: KafkaBroker
    http: httpx.AsyncClient | None = None
    out: dict[str, list[Event]] = field(default_factory=lambda: {JOBS_OPTIMIZED: [], JOBS_FAILED: []})

    async def send(self, event: Event) -> None:
        """On the topic of the event's lane, as the geocoder publishes it."""
        await self.broker.publish(event.to_bytes(), event.topic, key=event.key)

    async def next_on(self, topic: str) -> Event:
        """The first event the stage published on `topic`."""

        async def probe():
            return self.out[topic]

        return (await async_wait_until(probe, seconds=10, every=0.01, what=f"an event on {topic}"))[0]


@asynccontextmanager
async def optimizer_stage(**deps) -> AsyncIterator[Stage]:
    """The stage as `python -m services.optimizer` builds it, on a test broker, fakes passed in."""
    broker = make_broker(SETTINGS, "optimizer")
    app = create_app(SETTINGS, broker=broker, **deps)
    stage = Stage(broker)
    for topic, seen in stage.out.items():
        _collect(broker, topic, seen)
    async with (
        TestKafkaBroker(broker),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://optimizer") as stage.http,
    ):
        yield stage


def _collect(broker: KafkaBroker, topic: str, seen: list[Event]) -> None:
    @broker.subscriber(topic)
    async def collect(msg: KafkaMessage) -> None:
        seen.append(decode_event(msg.body))


class Watched:
    """Great-circle matrices that note the thread each one was built on."""

    name = "great_circle"

    def __init__(self) -> None:
        self.inner, self.threads = great_circle(SETTINGS), []

    def build(self, points: list[tuple[float, float]]) -> Matrix:
        self.threads.append(threading.current_thread().name)
        return self.inner.build(points)


async def test_geocoded_stops_come_out_as_a_route_with_every_stop_in_order():
    event = geocoded(BRISBANE, depot=(-27.45, 153.03), ret=True).model_copy(update={"correlation_id": "req-7"})
    async with optimizer_stage() as stage:
        await stage.send(event)
        route = await stage.next_on(JOBS_OPTIMIZED)
    assert route.event_type == "RouteOptimized" and route.job_id == event.job_id and route.correlation_id == "req-7"
    assert [leg.sequence for leg in route.route] == [1, 2, 3, 4, 5]
    assert sorted(leg.external_stop_id for leg in route.route) == ["S0", "S1", "S2", "S3", "S4"]
    etas = [leg.eta_offset_minutes for leg in route.route]
    assert etas == sorted(etas) and route.unrouted == ()
    assert (route.solver.solver, route.solver.matrix_provider) == ("exact", "great_circle")


async def test_unplaced_stops_ride_along_as_unrouted():
    async with optimizer_stage() as stage:
        await stage.send(geocoded([BRISBANE[0], None, BRISBANE[2]]))
        route = await stage.next_on(JOBS_OPTIMIZED)
    assert [leg.external_stop_id for leg in route.route] in (["S0", "S2"], ["S2", "S0"])
    assert [(u.external_stop_id, u.reason) for u in route.unrouted] == [("S1", UnroutedReason.GEOCODE_FAILED)]


async def test_a_job_without_a_placed_stop_comes_out_failed():
    async with optimizer_stage() as stage:
        await stage.send(geocoded([None, None]))
        failed = await stage.next_on(JOBS_FAILED)
    assert failed.event_type == "JobFailed" and failed.stage == "optimizer"
    assert failed.code == FailureCode.NO_ROUTABLE_STOPS
    assert stage.out[JOBS_OPTIMIZED] == []


async def test_the_solve_runs_on_the_solver_thread_not_the_event_loop():
    matrices = Watched()
    async with optimizer_stage(matrices=matrices) as stage:
        await stage.send(geocoded(BRISBANE))
        await stage.next_on(JOBS_OPTIMIZED)
    assert len(matrices.threads) == 1 and matrices.threads[0].startswith("solver")


async def test_health_and_metrics_answer_in_process():
    async with optimizer_stage() as stage:
        await stage.send(geocoded([BRISBANE[0], None, BRISBANE[2]]))
        await stage.next_on(JOBS_OPTIMIZED)
        health = await stage.http.get("/healthz")
        metrics = await stage.http.get("/metrics")
    assert health.status_code == 200 and health.json()["checks"] == {"kafka": True}
    assert 'routemate_solver_seconds_count{engine="exact",size="1-8"}' in metrics.text
    assert "routemate_route_stops_count" in metrics.text
    assert 'routemate_unrouted_stops_total{reason="GEOCODE_FAILED"}' in metrics.text
    assert 'routemate_stage_duration_seconds_count{stage="optimize"}' in metrics.text


async def test_the_local_search_is_happened_up_on_the_solver_thread_before_the_broker_starts(monkeypatch):
    happened: list[str] = []
    monkeypatch.setattr(ils, "warm_up", lambda: happened.append(threading.current_thread().name))
    settings = OptimizerSettings(routing_url=None, kafka_bootstrap_servers="127.0.0.1:1")
    broker = make_broker(settings, "optimizer")
    app = create_app(settings, broker=broker)
    monkeypatch.setattr(broker, "start", lambda: _started(happened))  # no Kafka here: note the moment instead
    async with app.router.lifespan_context(app):
        pass
    assert happened[0].startswith("solver") and happened[1] == "broker started"


async def _started(log: list[str]) -> None:
    log.append("broker started")


async def test_a_route_over_the_event_budget_fails_the_job_instead_of_blocking_the_partition(monkeypatch):
    """The derived event can never be published: the job fails with a code, nothing is retried."""
    monkeypatch.setattr("shared.broker.EVENT_BUDGET_BYTES", 4000)
    points = [(BRISBANE[i % 5][0] + i / 1000, BRISBANE[i % 5][1]) for i in range(20)]
    async with optimizer_stage() as stage:
        await stage.send(geocoded(points).model_copy(update={"spec_version": 2}))
        failed = await stage.next_on(JOBS_FAILED)
    assert failed.code == FailureCode.EVENT_TOO_LARGE and failed.stage == "optimizer"
    assert failed.spec_version == 2  # the spec it failed: status ignores a refused or replaced one's
    assert "size budget" in failed.message and stage.out[JOBS_OPTIMIZED] == []


async def test_a_bulk_lane_job_is_routed_and_its_route_published_where_every_route_goes():
    async with optimizer_stage() as stage:
        await stage.send(geocoded(BRISBANE, job_id="j_bulk").model_copy(update={"lane": "bulk"}))
        route = await stage.next_on(JOBS_OPTIMIZED)
        metrics = (await stage.http.get("/metrics")).text
    assert (route.job_id, route.lane, len(route.route)) == ("j_bulk", "bulk", len(BRISBANE))
    assert 'routemate_lane_wait_seconds_count{service="optimizer"}' in metrics


async def test_a_replan_request_comes_out_as_a_route_of_the_remaining_stops():
    stops = tuple(
        ReplanStop(stop_id=f"j.{i}", external_stop_id=f"S{i}", lat=lat, lng=lng)
        for i, (lat, lng) in enumerate(BRISBANE)
    )
    here = StartPoint(lat=BRISBANE[2][0], lng=BRISBANE[2][1], origin="current_location")
    command = ReplanRequested(org_id="o", job_id="j", stops=stops[1:], start=here, start_time=utcnow(), spec_version=2)
    async with optimizer_stage() as stage:
        await stage.send(command)
        route = await stage.next_on(JOBS_OPTIMIZED)
    assert route.event_type == "RouteOptimized" and route.remaining_only and route.spec_version == 2
    assert route.route[0].external_stop_id == "S2" and route.route[0].leg_distance_km == 0
    assert sorted(leg.external_stop_id for leg in route.route) == ["S1", "S2", "S3", "S4"]
