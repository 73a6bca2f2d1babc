"""Rebuild the read model from the topics: replay every event from the start into an empty database."""

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from redis.asyncio import Redis
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from services.status.adapters import snapshots
from services.status.adapters.outbox import Outbox
from services.status.adapters.projection import Projection
from services.status.adapters.queries import JobQueries, holds_jobs
from services.status.adapters.tables import JobRow
from services.status.settings import StatusSettings
from services.status.subscribers import ROUTES, TOPICS
from shared.background import Background
from shared.broker import is_transient
from shared.channels import JobHead, jobhead_key
from shared.db import make_engine
from shared.events import Event, UndecodableEvent, decode_event, utcnow
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
    snapshot: str | None = None  # the snapshot the rebuild started from
    restored: int = 0  # rows restored from it
    seconds: float = 0.0  # reading and replaying the events
    versions_aligned: int = 0  # versions set to the live ones (their Redis heads)
    gaps: list[str] = field(default_factory=list)  # partitions whose events were deleted unread


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


async def rebuild(
    settings: StatusSettings,
    database_url: str,
    from_snapshot: bool = True,
    redis: Redis | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RebuildReport:
    """The newest snapshot (unless `from_snapshot` is off) restored into the empty `database_url`,
    then every event of the read model's topics after its offsets, in replay order; personal
    fields opened with the jobs' data keys (an erased job's stay erased); then every job's version
    set to the live one its Redis head names."""
    engine = make_engine(database_url)
    if holds_jobs(engine):
        raise NotEmpty(f"{database_url} already has a read model; rebuild into an empty database")
    projection = Projection(engine)
    own_redis = redis is None
    redis = redis or make_redis(settings)  # the durable one: the data keys and the jobs' heads
    keys = DataKeys(redis, settings.kek_material)
    report = RebuildReport()
    try:
        offsets: snapshots.Offsets | None = None
        if from_snapshot and (path := snapshots.newest(snapshot_dir(settings))) is not None:
            offsets, rows = await asyncio.to_thread(snapshots.read, path)
            snapshots.open_rows(rows, await keys.keys(snapshots.subjects(rows)))
            report.restored = await asyncio.to_thread(snapshots.restore, engine, rows)
            report.snapshot = str(path)
        started = time.perf_counter()
        records = await read_to_end(
            settings.kafka_bootstrap_servers,
            TOPICS,
            client_id="routemate-status-rebuild",
            security=settings.kafka_client_security(),
            start=offsets,
            gaps=report.gaps,
        )
        events, skipped = decode_all(sorted(records, key=replay_order))
        taken = [event for event in events if type(event) in ROUTES]  # as the live consumer routes them
        rejected = 0
        for start in range(0, len(taken), REBUILD_BATCH):
            batch = await keys.open_all(taken[start : start + REBUILD_BATCH])
            rejected += apply_as_live(projection, batch)
            if progress is not None:
                progress(start + len(batch), len(taken))  # events applied of the total, after each batch
        report.seconds = time.perf_counter() - started
        report.versions_aligned = await align_versions(engine, redis)
    finally:
        if own_redis:
            await redis.aclose()
    Outbox(engine).mark_all_sent()  # the history replayed is not news: no webhook announces it again
    for gap in report.gaps:
        log.warning("events lost before the rebuild read them: %s", gap)
    log.info(
        "rebuilt the read model from %d events (%d undecodable, %d rejected as the live consumer rejected them)",
        len(events),
        skipped,
        rejected,
    )
    report.events, report.skipped, report.jobs = len(events), skipped + rejected, JobQueries(engine).job_count()
    return report


async def align_versions(engine: Engine, redis: Redis) -> int:
    """Every job's version set to the live one (its head in Redis, which the live projection
    writes after each batch): a replay in another order than the live consumer's may count a
    different number of changes to the same final view, and a client holding the live ETag must
    get its 304 (and never a 304 for another view). Returns how many versions changed."""
    changed = 0
    jobs = await asyncio.to_thread(_versions, engine)
    for start in range(0, len(jobs), 1000):
        chunk = jobs[start : start + 1000]
        heads = await redis.mget([jobhead_key(job_id) for job_id, _, _ in chunk])
        updates = {}
        for (job_id, org_id, version), raw in zip(chunk, heads, strict=True):
            if raw is None:
                continue
            head = JobHead.model_validate_json(raw)
            if head.org_id == org_id and head.version != version:
                updates[job_id] = head.version
        changed += len(updates)
        await asyncio.to_thread(_set_versions, engine, updates)
    return changed


def _versions(engine: Engine) -> list[tuple[str, str, int]]:
    with engine.connect() as connection:
        table = JobRow.__table__  # type: ignore[attr-defined]
        return [tuple(row) for row in connection.execute(select(table.c.job_id, table.c.org_id, table.c.version))]


def _set_versions(engine: Engine, updates: dict[str, int]) -> None:
    if not updates:
        return
    table = JobRow.__table__  # type: ignore[attr-defined]
    with engine.begin() as connection:
        for job_id, version in updates.items():
            connection.execute(update(table).where(table.c.job_id == job_id).values(version=version))


def snapshot_dir(settings: StatusSettings) -> Path:
    return Path(settings.snapshot_dir) if settings.snapshot_dir else settings.var_dir / "snapshots"


async def take_snapshot(settings: StatusSettings, engine: Engine | None = None) -> snapshots.Snapshot:
    """The live read model and the offsets it reflects, into a new snapshot file. The offsets are
    read first: the live consumer commits only after its transaction, so the rows hold at least
    what the offsets say, and a replay from them re-applies the rest once (applied event ids)."""
    engine = engine or make_engine(settings.status_database_url)
    offsets = await committed_offsets(settings)
    taken_at = utcnow()
    rows = await asyncio.to_thread(snapshots.dump_rows, engine)
    redis = make_redis(settings)
    try:
        snapshots.seal_rows(rows, await DataKeys(redis, settings.kek_material).keys(snapshots.subjects(rows)))
    finally:
        await redis.aclose()
    directory = snapshot_dir(settings)
    taken = await asyncio.to_thread(snapshots.write, directory, taken_at, offsets, rows)
    await asyncio.to_thread(snapshots.prune, directory, settings.snapshots_kept)
    log.info("snapshot %s: %d rows at %d partitions' offsets", taken.path.name, taken.rows, len(offsets))
    return taken


async def committed_offsets(settings: StatusSettings) -> snapshots.Offsets:
    """The live projection's committed offsets on the read model's topics."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id="routemate-status-snapshot",
        **settings.kafka_client_security(),
    )
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(settings.status_group)
    finally:
        await admin.close()
    return {
        (tp.topic, tp.partition): meta.offset
        for tp, meta in committed.items()
        if tp.topic in TOPICS and meta.offset >= 0
    }


class SnapshotTask(Background):
    """Takes a snapshot every `every_s` seconds, for the rebuild to start from."""

    def __init__(self, settings: StatusSettings, engine: Engine, every_s: float) -> None:
        self.settings, self.engine, self.every_s = settings, engine, every_s

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                await take_snapshot(self.settings, self.engine)
            except Exception as exc:  # noqa: BLE001 - Kafka, Redis or the disk failed: the next one
                log.warning(
                    "snapshot failed (%s: %s); the next is due in %.0f s", type(exc).__name__, exc, self.every_s
                )


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
