"""The optimizer's Kafka edge: which event goes to which handler; solves run off the event loop."""

import time
from collections.abc import Awaitable, Callable
from functools import partial

from faststream.kafka import KafkaBroker

from services.optimizer import metrics
from services.optimizer.adapters.matrix import MatrixProvider
from services.optimizer.handlers import optimize, replan
from services.optimizer.line import SolverLine
from services.optimizer.settings import OptimizerSettings
from shared.broker import EventBus, dispatcher, publish_outcome, subscribe_lanes
from shared.events import Event, ReplanRequested, RouteOptimized, StopsGeocoded
from shared.lanes import LaneGate
from shared.metrics import STAGE_DURATION

GROUP = "routemate-optimizer"


async def route_job(
    settings: OptimizerSettings,
    matrices: MatrixProvider,
    solver: SolverLine,
    bus: EventBus,
    event: StopsGeocoded | ReplanRequested,
) -> None:
    """Publish the job's RouteOptimized, or its JobFailed when no stop can be routed."""
    started = time.perf_counter()
    solve = replan if isinstance(event, ReplanRequested) else optimize
    outcome = await solver.run(solve, event, settings, matrices)
    if isinstance(outcome, RouteOptimized):
        metrics.observe_route(outcome)
    await publish_outcome(bus, event, outcome, "optimizer")
    STAGE_DURATION.labels("optimize").observe(time.perf_counter() - started)


def routes(
    settings: OptimizerSettings, matrices: MatrixProvider, solver: SolverLine, bus: EventBus
) -> dict[type[Event], Callable[[Event], Awaitable[None]]]:
    """The routing table: each event type this stage consumes, and its handler."""
    route = partial(route_job, settings, matrices, solver, bus)
    return {StopsGeocoded: route, ReplanRequested: route}


def include_subscribers(
    broker: KafkaBroker,
    bus: EventBus,
    settings: OptimizerSettings,
    matrices: MatrixProvider,
    solver: SolverLine,
    gate: LaneGate,
) -> None:
    """Consume both lanes of the routing table's events' topics: the normal lane a few jobs per
    poll, the bulk lane one job per poll and only while the normal lane has nothing in hand, so a
    normal job waits behind at most one bulk solve on the one solver thread (the line serves the
    normal lane first). Each lane keeps SOLVER_IN_HAND jobs in hand, so the solver thread does not
    wait while the event loop publishes one job and decodes the next."""
    table = routes(settings, matrices, solver, bus)

    dispatch = dispatcher(table)

    # A solve takes up to SOLVER_MAX_SECONDS (a fleet job's budget): take a few jobs per poll, so a
    # new process joining the group gets its partitions within seconds, and allow several times the
    # longest batch between polls. Membership meanwhile rests on aiokafka's heartbeat task, which
    # runs on the event loop while the solve runs on the worker thread (session.timeout.ms applies).
    batch = settings.solver_poll_records
    subscribe_lanes(
        broker,
        bus,
        sorted({event.TOPIC for event in table}),
        GROUP,
        dispatch,
        gate,
        max_poll_records=batch,
        max_poll_interval_ms=max(300_000, int(batch * settings.solver_max_seconds * 1000 * 10)),
        in_hand=settings.solver_in_hand,
    )
