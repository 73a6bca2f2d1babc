"""Rebuild the read model from the topics: replay every event from the start into an empty database."""

import asyncio
import gc
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import aclosing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson
from aiokafka import ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from redis.asyncio import Redis
from sqlalchemy import event as sa_event
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from services.status.adapters import snapshots
from services.status.adapters.outbox import Outbox
from services.status.adapters.projection import Projection
from services.status.adapters.queries import JobQueries, read_model_tables, tables_with_rows
from services.status.adapters.tables import JobRow
from services.status.settings import StatusSettings
from services.status.subscribers import KEPT_SEALED, ROUTES, TOPICS
from services.status.views import job_head
from shared.background import Background
from shared.broker import is_transient
from shared.channels import JobHead, jobhead_key
from shared.db import make_json_engine
from shared.events import Event, UndecodableEvent, decode_raw, utcnow
from shared.pii import DataKeys, Opener
from shared.service import make_redis
from shared.topic_reader import ORDERED_PARTITION_BYTES, TopicReader, time_order
from shared.vocabulary import as_utc

log = logging.getLogger(__name__)
# Events per transaction. Larger than the live consumer's poll: fewer commits, and a replay has
# no import waiting on its answer. A batch that holds an event the live consumer dead-lettered is
# applied again one by one (apply_as_live), which costs more the larger it is; that is rare.
REBUILD_BATCH = 2000
# The types the replay opens before it validates: those the live consumer routes, but KEPT_SEALED.
OPENED_TYPES = frozenset(t.model_fields["event_type"].default for t in ROUTES if t not in KEPT_SEALED)


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
    versions_aligned: int = 0  # jobs whose version (or last change's time) was set to the live one (its Redis head)
    gaps: list[str] = field(default_factory=list)  # partitions whose events were deleted unread
    # Where the replay's seconds went: reading the topics (merged in replay order), parsing and validating
    # the events, opening their personal fields (data keys included), writing the read model.
    phases: dict[str, float] = field(default_factory=lambda: dict.fromkeys(("read", "decode", "open", "apply"), 0.0))


def parse_all(records: list[ConsumerRecord]) -> list[dict | None]:
    """Each record's JSON object, None where it is not one (undecodable)."""
    parsed: list[dict | None] = []
    for record in records:
        try:
            data = orjson.loads(record.value or b"")
        except orjson.JSONDecodeError:
            data = None
        parsed.append(data if isinstance(data, dict) else None)
    return parsed


def open_and_decode(opener: Opener, raws: list[dict | None]) -> tuple[list[Event], int, float]:
    """The events the live consumer routes, their personal fields opened in the raw dict before the
    one validation (`opener` has their keys); how many records did not decode; the seconds opening."""
    taken: list[Event] = []
    skipped, opening = 0, 0.0
    for raw in raws:
        if raw is None:
            skipped += 1
            continue
        try:
            if raw.get("event_type") in OPENED_TYPES:
                started = time.perf_counter()
                raw = opener.open_raw(raw)
                opening += time.perf_counter() - started
            event = decode_raw(raw)
        except (UndecodableEvent, TypeError, ValueError, AttributeError, KeyError):
            skipped += 1  # not an event this code reads (the live consumer dead-lettered it)
            continue
        if type(event) in ROUTES:  # as the live consumer routes them
            taken.append(event)
    return taken, skipped, opening


@contextmanager
def few_collections() -> Iterator[None]:
    """The replay makes millions of short-lived objects (each event parsed, opened, validated,
    written) beside a long-lived heap (the data keys of every job, the modules): the cyclic
    collector, at its defaults, scanned that heap again and again (measured when the replay still
    held every record: parsing took 5 times the CPU, opening and validating up to twice). What is
    there at the start is moved out of its sight and it runs less often while the replay lasts."""
    threshold, frozen = gc.get_threshold(), gc.get_freeze_count()
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        if not frozen:  # a process that froze its own heap before (shared/service.settle_heap) keeps it so
            gc.unfreeze()


@contextmanager
def replay_engine(database_url: str) -> Iterator[Engine]:
    """The target database's engine, tuned for one writer filling an empty database: JSON
    columns serialized and parsed by orjson (the service reads them as any JSON; parsing the
    rows a batch reads back was an eighth of a PostgreSQL rebuild's writing); SQLite
    without a sync per commit (a crash mid-rebuild leaves a database to rebuild again anyway),
    PostgreSQL without waiting on the WAL flush per commit. At the end the SQLite file is
    checkpointed and synced once, and the service opens it with its normal settings."""
    engine = make_json_engine(database_url)
    if engine.dialect.name == "sqlite":

        @sa_event.listens_for(engine, "connect")
        def _replay_pragmas(dbapi_conn, _record) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA synchronous=OFF")
            cur.execute("PRAGMA cache_size=-65536")  # 64 MiB of pages
            cur.execute("PRAGMA temp_store=MEMORY")
            cur.close()

    elif engine.dialect.name == "postgresql":

        @sa_event.listens_for(engine, "connect")
        def _no_flush_wait(dbapi_conn, _record) -> None:
            with dbapi_conn.cursor() as cur:
                cur.execute("SET synchronous_commit TO off")
            dbapi_conn.commit()

    try:
        yield engine
    finally:
        engine.dispose()
        if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            connection = sqlite3.connect(engine.url.database)
            try:
                connection.execute("PRAGMA synchronous=FULL")
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the file, synced
            finally:
                connection.close()


async def rebuild(
    settings: StatusSettings,
    database_url: str | None,
    from_snapshot: bool = True,
    redis: Redis | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RebuildReport:
    """The newest snapshot (unless `from_snapshot` is off) restored into the empty `database_url`,
    then every event of the read model's topics after its offsets, in replay order; personal
    fields opened with the jobs' data keys (an erased job's stay erased); then every job's version
    set to the live one its Redis head names. Without a `database_url`, a dry run: every event
    read, decoded and opened, nothing written (what the log holds, and what the replay costs
    outside the database)."""
    if database_url is None:
        return await _rebuild(settings, None, "", from_snapshot, redis, progress)
    with replay_engine(database_url) as engine:
        return await _rebuild(settings, engine, database_url, from_snapshot, redis, progress)


class _NoWrites:
    """A dry run's projection: takes every batch, writes nothing."""

    def apply_many(self, events: list[Event]) -> list[str | None]:
        return [None] * len(events)

    def apply(self, event: Event) -> str | None:
        return None


async def _rebuild(
    settings: StatusSettings,
    engine: Engine | None,
    database_url: str,
    from_snapshot: bool,
    redis: Redis | None,
    progress: Callable[[int, int], None] | None,
) -> RebuildReport:
    if engine is not None and (holding := tables_with_rows(engine)):
        where = engine.url.render_as_string(hide_password=True)
        raise NotEmpty(f"{where} already holds rows ({', '.join(holding)}); rebuild into an empty database")
    try:
        return await _fill(settings, engine, from_snapshot, redis, progress)
    except BaseException:
        if engine is not None:  # found empty: left empty, so the same command can run again into it
            await asyncio.to_thread(empty_again, engine)
        raise


def empty_again(engine: Engine) -> None:
    """Delete every row a failed rebuild wrote into its target (the schema stays). A target that
    fails this too (the database itself went away) is named in the log to be dropped by hand; so
    is any target of a rebuild killed outright, which runs nothing on its way out."""
    where = engine.url.render_as_string(hide_password=True)
    try:
        with engine.begin() as conn:
            for table in read_model_tables(engine):
                conn.execute(table.delete())
    except Exception as exc:  # noqa: BLE001 - the rebuild's own failure is the one to report
        log.error(
            "the failed rebuild's rows could not be deleted from %s (%s: %s): drop it and rebuild into a new "
            "empty database",
            where,
            type(exc).__name__,
            exc,
        )
        return
    log.warning("the rebuild failed; what it had written into %s is deleted again", where)


async def _fill(
    settings: StatusSettings,
    engine: Engine | None,
    from_snapshot: bool,
    redis: Redis | None,
    progress: Callable[[int, int], None] | None,
) -> RebuildReport:
    projection: Projection | _NoWrites = Projection(engine, announce=False) if engine is not None else _NoWrites()
    own_redis = redis is None
    redis = redis or make_redis(settings)  # the durable one: the data keys and the jobs' heads
    keys = DataKeys(redis, settings.kek_material)
    opener = Opener(keys)  # each job's data key read once for the whole replay
    report = RebuildReport()
    phases = report.phases
    try:
        offsets: snapshots.Offsets | None = None
        if from_snapshot and (path := snapshots.newest(snapshot_dir(settings))) is not None:
            offsets, rows = await asyncio.to_thread(snapshots.read, path)
            report.snapshot = str(path)
            if engine is not None:
                snapshots.open_rows(rows, await keys.keys(snapshots.subjects(rows)))
                report.restored = await asyncio.to_thread(snapshots.restore, engine, rows)
        started = time.perf_counter()
        async with (
            TopicReader(
                settings.kafka_bootstrap_servers,
                TOPICS,
                client_id="routemate-status-rebuild",
                security=settings.kafka_client_security(),
                start=offsets,
                gaps=report.gaps,
                partition_bytes=ORDERED_PARTITION_BYTES,
            ) as reader,
            aclosing(reader.in_order(time_order, REBUILD_BATCH)) as chunks,
        ):
            replayed = await replay(chunks, reader.total, opener, projection, phases, progress)
        report.seconds = time.perf_counter() - started
        if engine is not None:
            report.versions_aligned = await align_versions(engine, redis)
    finally:
        if own_redis:
            await redis.aclose()
    if engine is not None:
        Outbox(engine).mark_all_sent()  # the history replayed is not news: no webhook announces it again
    for gap in report.gaps:
        log.warning("events lost before the rebuild read them: %s", gap)
    log.info(
        "%s the read model from %d events (%d undecodable, %d rejected as the live consumer rejected them)",
        "rebuilt" if engine is not None else "dry run: would rebuild",
        replayed.events,
        replayed.skipped,
        replayed.rejected,
    )
    report.events, report.skipped = replayed.events, replayed.skipped + replayed.rejected
    report.jobs = JobQueries(engine).job_count() if engine is not None else len(replayed.jobs)
    return report


@dataclass
class Replayed:
    events: int = 0  # records that decoded
    skipped: int = 0  # records that did not
    rejected: int = 0  # events left out as the live consumer left them out
    jobs: set[str] = field(default_factory=set)  # the jobs the events name (a dry run counts them)


async def replay(
    chunks: AsyncIterator[list[ConsumerRecord]],
    total: int,
    opener: Opener,
    projection: "Projection | _NoWrites",
    phases: dict[str, float],
    progress: Callable[[int, int], None] | None,
) -> Replayed:
    """The records (in replay order, a batch at a time as the reader merges them) applied batch by
    batch, as the live consumer applies them. Each batch is written in a worker thread while the
    next one is read, parsed and opened here: the database's own work (SQLite's C code,
    PostgreSQL's round trips) runs without the GIL. `total` is what the progress counts up to
    (the offsets to read: on a compacted topic more than its records, so the last step says done)."""
    done = Replayed()
    writing: asyncio.Future[int] | None = None
    written = 0
    with few_collections():
        try:
            while True:
                clock = time.perf_counter()
                chunk = await anext(chunks, None)
                if chunk is None:
                    break
                phases["read"] += time.perf_counter() - clock
                clock = time.perf_counter()
                raws = parse_all(chunk)
                parsed = time.perf_counter()
                await opener.prefetch(r for r in raws if r is not None and r.get("event_type") in OPENED_TYPES)
                fetched = time.perf_counter()
                taken, undecodable, opening = open_and_decode(opener, raws)
                phases["decode"] += (parsed - clock) + (time.perf_counter() - fetched - opening)
                phases["open"] += (fetched - parsed) + opening
                done.events += len(chunk) - undecodable
                done.skipped += undecodable
                if isinstance(projection, _NoWrites):
                    done.jobs.update(j for e in taken if (j := getattr(e, "job_id", None)) is not None)
                if writing is not None:
                    # shielded: a cancelled rebuild (Ctrl-C) must not leave the write running in
                    # its thread while `_rebuild` empties the target (the finally waits for it)
                    done.rejected += await asyncio.shield(writing)
                    if progress is not None:
                        progress(written, total)  # records replayed of the total, after each batch
                writing = asyncio.ensure_future(asyncio.to_thread(_apply_timed, projection, taken, phases))
                written += len(chunk)
                total = max(total, written)
            if writing is not None:
                done.rejected += await asyncio.shield(writing)
                if progress is not None:
                    progress(written, written)
        finally:
            if writing is not None and not writing.done():
                await asyncio.wait([writing])  # never leave a write running into a closed engine
    return done


async def align_versions(engine: Engine, redis: Redis) -> int:
    """Every job's version, and the time its view last changed, set to the live ones (its head in
    Redis, which the live projection writes after each batch): a replay in another order than
    the live consumer's may count a different number of changes to the same final view, or date
    it by another of the events that made it (two events of equal content, say a geocoding done
    twice, that the two met in other orders: the first makes the change, the other changes
    nothing). A client holding the live ETag must get its 304, never a 304 for another view, and
    one ETag must name one body. So a head is taken only where it describes the state the replay
    reached (status, spec, finished stops): a live consumer that lagged behind the log wrote
    heads of earlier states, and those would date a newer view back. Returns how many jobs
    changed."""
    changed = 0
    queries = JobQueries(engine)
    jobs = await asyncio.to_thread(_versions, engine)
    for start in range(0, len(jobs), 1000):
        chunk = jobs[start : start + 1000]
        heads = await redis.mget([jobhead_key(job_id) for job_id, _, _, _ in chunk])
        differ: dict[str, tuple[JobHead, dict[str, object]]] = {}
        for (job_id, org_id, version, updated_at), raw in zip(chunk, heads, strict=True):
            if raw is None:
                continue
            head = JobHead.model_validate_json(raw)
            if head.org_id != org_id:
                continue
            live: dict[str, object] = {}
            if head.version != version:
                live["version"] = head.version
            if head.updated_at is not None and head.updated_at != as_utc(updated_at):
                live["updated_at"] = head.updated_at
            if live:
                differ[job_id] = (head, live)
        updates: dict[str, dict[str, object]] = {}
        for job, stops in await asyncio.to_thread(queries.heads, list(differ)):
            head, live = differ[job.job_id]
            if _same_state(job_head(job, stops), head):
                updates[job.job_id] = live
        if skipped := len(differ) - len(updates):
            log.info("%d jobs keep the replay's version: their heads describe another state", skipped)
        changed += len(updates)
        await asyncio.to_thread(_set_versions, engine, updates)
    return changed


def _same_state(rebuilt: JobHead, live: JobHead) -> bool:
    """Whether a head describes the state the replay reached (what a head says of a view)."""
    return (rebuilt.status, rebuilt.spec_version, rebuilt.finished) == (live.status, live.spec_version, live.finished)


def _versions(engine: Engine) -> list[tuple[str, str, int, datetime]]:
    with engine.connect() as connection:
        table = JobRow.__table__  # type: ignore[attr-defined]
        rows = connection.execute(select(table.c.job_id, table.c.org_id, table.c.version, table.c.updated_at))
        return [tuple(row) for row in rows]


def _set_versions(engine: Engine, updates: dict[str, dict[str, object]]) -> None:
    if not updates:
        return
    table = JobRow.__table__  # type: ignore[attr-defined]
    with engine.begin() as connection:
        for job_id, values in updates.items():
            connection.execute(update(table).where(table.c.job_id == job_id).values(**values))


def snapshot_dir(settings: StatusSettings) -> Path:
    return Path(settings.snapshot_dir) if settings.snapshot_dir else settings.var_dir / "snapshots"


async def take_snapshot(settings: StatusSettings, engine: Engine | None = None) -> snapshots.Snapshot:
    """The live read model and the offsets it reflects, into a new snapshot file. The offsets are
    read first: the live consumer commits only after its transaction, so the rows hold at least
    what the offsets say, and a replay from them re-applies the rest once (applied event ids)."""
    engine = engine or make_json_engine(settings.status_database_url)
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


def _apply_timed(projection: "Projection | _NoWrites", batch: list[Event], phases: dict[str, float]) -> int:
    started = time.perf_counter()
    try:
        return apply_as_live(projection, batch)
    finally:
        phases["apply"] += time.perf_counter() - started


def apply_as_live(projection: "Projection | _NoWrites", batch: list[Event]) -> int:
    """Apply a batch as the live consumer does: whole, or, if an event in it fails for a reason in
    the event itself (the live consumer dead-lettered it), without that event. The failing batch
    is halved until the event is found (a poisoned event costs about log2(batch) transactions,
    not one per event of its batch); in order, as batches of any size apply alike.
    Returns how many events were left out."""
    try:
        projection.apply_many(batch)
        return 0
    except Exception as exc:
        if is_transient(exc):
            raise
        if len(batch) == 1:
            event = batch[0]
            log.warning("left out %s %s: %s: %s", event.event_type, event.event_id, type(exc).__name__, exc)
            return 1
    half = len(batch) // 2
    return apply_as_live(projection, batch[:half]) + apply_as_live(projection, batch[half:])
