"""Rebuild the read model from the topics: replay every event from the start into an empty database."""

import logging
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import inspect

from services.status.projection import Projection
from shared.db import make_engine
from shared.events import (
    AUTH_EVENTS,
    JOBS_FAILED,
    JOBS_GEOCODED,
    JOBS_OPTIMIZED,
    JOBS_REQUESTED,
    STOPS_STATUS,
    UndecodableEvent,
    decode_event,
)
from shared.settings import PlatformSettings

log = logging.getLogger(__name__)
REBUILD_BATCH = 500  # events per transaction
TOPICS = (AUTH_EVENTS, JOBS_REQUESTED, JOBS_GEOCODED, JOBS_OPTIMIZED, JOBS_FAILED, STOPS_STATUS)


class NotEmpty(RuntimeError):
    """The target database already holds a read model."""


@dataclass
class RebuildReport:
    events: int = 0
    skipped: int = 0
    jobs: int = 0


async def read_all(settings: PlatformSettings) -> list:
    """Every record of the read model's topics up to their current end, oldest first."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        client_id="routemate-status-rebuild",
        **settings.kafka_client_security(),
    )
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()  # aiokafka has no public call for this
        partitions = [TopicPartition(t, p) for t in TOPICS for p in sorted(cluster.partitions_for_topic(t) or ())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records, remaining = [], {tp for tp, end in ends.items() if end > 0}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000, max_records=5000)
            for tp, rows in batch.items():
                records += rows
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        # The live projection saw the topics interleaved in time; replay them in that order.
        return sorted(records, key=lambda r: (r.timestamp, r.topic, r.partition, r.offset))
    finally:
        await consumer.stop()


async def rebuild(settings: PlatformSettings, database_url: str) -> RebuildReport:
    engine = make_engine(database_url)
    if "status_jobs" in inspect(engine).get_table_names():
        with engine.connect() as conn:
            if conn.exec_driver_sql("SELECT 1 FROM status_jobs LIMIT 1").first():
                raise NotEmpty(f"{database_url} already has a read model; rebuild into an empty database")
    projection, report, events = Projection(engine), RebuildReport(), []
    for record in await read_all(settings):
        try:
            events.append(decode_event(record.value))
        except UndecodableEvent:
            report.skipped += 1  # the live consumer dead-lettered it too
    for start in range(0, len(events), REBUILD_BATCH):
        projection.apply_many(events[start : start + REBUILD_BATCH])
    report.events = len(events)
    with engine.connect() as conn:
        report.jobs = conn.exec_driver_sql("SELECT COUNT(*) FROM status_jobs").scalar_one()
    return report
