"""Wiring of the optimizer: a Kafka consumer stage; solves run off the event loop."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

from fastapi import FastAPI
from faststream.kafka import KafkaBroker

from services.optimizer import ils
from services.optimizer.adapters import matrix_provider
from services.optimizer.adapters.matrix import MatrixProvider
from services.optimizer.line import SolverLine
from services.optimizer.settings import OptimizerSettings
from services.optimizer.subscribers import GROUP, include_subscribers
from shared.broker import EventBus, make_broker
from shared.lanes import LaneGate, bulk_group
from shared.service import consumer_stage_app

SERVICE = "optimizer"


def create_app(
    settings: OptimizerSettings | None = None,
    *,
    broker: KafkaBroker | None = None,
    matrices: MatrixProvider | None = None,
) -> FastAPI:
    """The optimizer stage; every argument defaults to the production adapter."""
    settings = settings or OptimizerSettings()
    broker = broker or make_broker(settings, SERVICE)
    # One solve at a time per process, on this thread, off the event loop; the local search
    # releases the GIL, so heartbeats and /metrics stay live. Each lane keeps SOLVER_IN_HAND jobs
    # in hand (a consumer each, committing its own partitions in order), waiting their turn at
    # the line, normal lane first. Scale solving with processes, one per core.
    pool = ThreadPoolExecutor(1, thread_name_prefix="solver")
    gate = LaneGate.from_settings(SERVICE, settings)
    line = SolverLine.from_settings(pool, settings)
    include_subscribers(broker, EventBus(broker, SERVICE), settings, matrices or matrix_provider(settings), line, gate)

    async def warm_up() -> None:
        await asyncio.get_running_loop().run_in_executor(pool, ils.warm_up)

    async def close() -> None:
        pool.shutdown(wait=False, cancel_futures=True)

    return consumer_stage_app(SERVICE, settings, broker, (GROUP, bulk_group(GROUP)), close, warm_up)
