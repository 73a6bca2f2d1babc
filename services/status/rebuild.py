"""Rebuild the read model from the topics: replay every event from the start into an empty database."""

import logging
from dataclasses import dataclass

from aiokafka import ConsumerRecord

from services.status.adapters.outbox import Outbox
from services.status.adapters.projection import Projection
from services.status.adapters.queries import JobQueries, holds_jobs
from services.status.settings import StatusSettings
from services.status.subscribers import ROUTES, TOPICS
from shared.broker import is_transient
from shared.db import make_engine
from shared.events import Event, UndecodableEvent, decode_event
from shared.pii import DataKeys
from shared.service import make_redis
from shared.topic_reader import read_to_end

log = logging.getLogger(__name__)
REBUILD_BATCH = 500  # events per transaction


class NotEmpty(RuntimeError):
    """The target database already holds a read model."""


@dataclass
class RebuildReport:
    events: int = 0
    skipped: int = 0
    jobs: int = 0


def replay_order(record: ConsumerRecord) -> tuple:
    """The live projection saw the topics interleaved in time; the replay takes them in that order."""
    return (record.timestamp, record.topic, record.partition, record.offset)


def decode_all(records: list[ConsumerRecord]) -> tuple[list[Event], int]:
    """The events of `records` that decode, and how many did not (the live consumer dead-lettered those)."""
    events: list[Event] = []
    for record in records:
        try:
            events.append(decode_event(record.value or b""))
        except UndecodableEvent:
            continue
    return events, len(records) - len(events)


async def rebuild(settings: StatusSettings, database_url: str) -> RebuildReport:
    """Every event of the read model's topics, in replay order, into the empty `database_url`;
    personal fields opened with the jobs' data keys (an erased job's stay erased)."""
    engine = make_engine(database_url)
    if holds_jobs(engine):
        raise NotEmpty(f"{database_url} already has a read model; rebuild into an empty database")
    projection = Projection(engine)
    records = await read_to_end(
        settings.kafka_bootstrap_servers,
        TOPICS,
        client_id="routemate-status-rebuild",
        security=settings.kafka_client_security(),
    )
    events, skipped = decode_all(sorted(records, key=replay_order))
    taken = [event for event in events if type(event) in ROUTES]  # as the live consumer routes them
    rejected = 0
    redis = make_redis(settings)
    keys = DataKeys(redis, settings.kek_material)
    try:
        for start in range(0, len(taken), REBUILD_BATCH):
            batch = await keys.open_all(taken[start : start + REBUILD_BATCH])
            rejected += apply_as_live(projection, batch)
    finally:
        await redis.aclose()
    Outbox(engine).mark_all_sent()  # the history replayed is not news: no webhook announces it again
    log.info(
        "rebuilt the read model from %d events (%d undecodable, %d rejected as the live consumer rejected them)",
        len(events),
        skipped,
        rejected,
    )
    return RebuildReport(events=len(events), skipped=skipped + rejected, jobs=JobQueries(engine).job_count())


def apply_as_live(projection: Projection, batch: list[Event]) -> int:
    """Apply a batch as the live consumer does: whole, or, if an event in it fails for a reason in
    the event itself (the live consumer dead-lettered it), one by one without that event.
    Returns how many events were left out."""
    try:
        projection.apply_many(batch)
        return 0
    except Exception as exc:
        if is_transient(exc):
            raise
    rejected = 0
    for event in batch:
        try:
            projection.apply(event)
        except Exception as exc:
            if is_transient(exc):
                raise
            rejected += 1
            log.warning("left out %s %s: %s: %s", event.event_type, event.event_id, type(exc).__name__, exc)
    return rejected
