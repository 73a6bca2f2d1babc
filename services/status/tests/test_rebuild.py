"""The rebuild command over records as the topic reader returns them (partition by partition)."""

import asyncio
import threading
import time
from collections import deque
from datetime import timedelta
from functools import partial

import pytest
from aiokafka.errors import KafkaConnectionError
from aiokafka.structs import ConsumerRecord, TopicPartition
from sqlalchemy import text

from services.status import rebuild as rebuild_module
from services.status.adapters.projection import Projection
from services.status.adapters.queries import JobQueries, tables_with_rows
from services.status.rebuild import NotEmpty, rebuild
from services.status.settings import StatusSettings
from services.status.subscribers import TOPICS
from services.status.views import job_view
from shared.db import make_engine
from shared.events import DriverRegistered, DriverRemoved, Event, TokenIssued, utcnow
from shared.pii import DataKeys
from shared.testing.builders import geocoded, import_requested, routed, stop, stop_changed
from shared.testing.fakes import CountingRedis, MemoryRedis
from shared.topic_reader import merge
from shared.vocabulary import JobStatus, StopStatus

T0 = utcnow()


def offline_settings(tmp_path) -> StatusSettings:
    """No snapshot to start from (an empty directory of its own)."""
    return StatusSettings(snapshot_dir=str(tmp_path / "snapshots"))


def history() -> list[Event]:
    """What the topics hold, in the order it happened: a driver, a routed job, stop reports, and
    the driver leaving afterwards (which must not take the job back from them)."""
    ids = {"org_id": "org_1", "job_id": "job_1"}
    geo = geocoded([(-27.47, 153.02), (-27.48, 153.01)], **ids)
    events = [
        DriverRegistered(org_id="org_1", email="dana@example.com", name="Dana"),
        TokenIssued(org_id="org_1", client_id="rm_ci_1", token_fingerprint="abc", expires_at=T0),
        import_requested(stop(0, job_id="job_1"), stop(1, job_id="job_1"), **ids, driver_email="dana@example.com"),
        geo,
        routed(geo, [1, 0]),
        stop_changed(1, StopStatus.COMPLETED, **ids),
        stop_changed(1, StopStatus.FAILED, **ids),  # the later report of the same stop wins
        DriverRemoved(org_id="org_1", email="dana@example.com"),
    ]
    return [e.model_copy(update={"occurred_at": T0 + timedelta(seconds=n)}) for n, e in enumerate(events)]


def records(events: list[Event]) -> list[ConsumerRecord]:
    """The events as Kafka records, stamped in the order they happened, plus one undecodable record;
    grouped by topic as a reader returns them, not in time order."""
    stamped = [(e.TOPIC, n * 10, e.to_bytes()) for n, e in enumerate(events)] + [(TOPICS[0], 5, b"{not json")]
    stamped.sort(key=lambda r: r[0])
    return [
        ConsumerRecord(topic, 0, offset, timestamp, 0, b"k", value, None, 1, len(value), ())
        for offset, (topic, timestamp, value) in enumerate(stamped)
    ]


class MemoryReader:
    """The topic reader over records in memory: the real merge, each fetch bringing at most two
    records of each partition asked for, as a reader of a long log gets them piece by piece."""

    asked: list[tuple[str, ...]] = []

    def __init__(self, events: list[Event], bootstrap: str, topics, **kwargs) -> None:
        MemoryReader.asked.append(tuple(topics))
        self.parts: dict[TopicPartition, deque[ConsumerRecord]] = {}
        for record in records(events):
            self.parts.setdefault(TopicPartition(record.topic, record.partition), deque()).append(record)
        self.total = sum(len(rows) for rows in self.parts.values())
        self.remaining = set(self.parts)

    async def __aenter__(self) -> "MemoryReader":
        return self

    async def __aexit__(self, *exc) -> None:
        return None

    async def _fetch(self, partitions):
        got = {tp: [self.parts[tp].popleft() for _ in range(min(2, len(self.parts[tp])))] for tp in partitions}
        self.remaining -= {tp for tp in partitions if not self.parts[tp]}
        return got

    def in_order(self, key, chunk):
        return merge(self._fetch, self.remaining, key, chunk)


def reading(monkeypatch, events: list[Event]) -> None:
    MemoryReader.asked = []
    monkeypatch.setattr(rebuild_module, "TopicReader", partial(MemoryReader, events))


async def test_a_rebuild_replays_in_time_order_into_the_same_rows(tmp_path, monkeypatch):
    events = history()
    reading(monkeypatch, events)
    asked = MemoryReader.asked
    url = f"sqlite:///{tmp_path / 'rebuilt.db'}"
    report = await rebuild(offline_settings(tmp_path), url, redis=MemoryRedis())
    assert asked == [TOPICS]
    assert (report.events, report.skipped, report.jobs) == (len(events), 1, 1)

    live = make_engine(f"sqlite:///{tmp_path / 'live.db'}")
    Projection(live).apply_many(events)
    rebuilt = job_view(*JobQueries(make_engine(url)).job("org_1", job_id="job_1"))
    assert rebuilt == job_view(*JobQueries(live).job("org_1", job_id="job_1"))
    # Replayed topic by topic, the driver would have left before the route arrived: unassigned.
    assert rebuilt["status"] == JobStatus.IN_PROGRESS and rebuilt["driver"]["name"] == "Dana"
    assert rebuilt["stops"][0]["status"] == StopStatus.FAILED
    with pytest.raises(NotEmpty):
        await rebuild(
            offline_settings(tmp_path), url, redis=MemoryRedis()
        )  # never into a database that holds a read model


async def test_an_event_the_live_consumer_rejected_is_left_out_not_fatal(tmp_path, monkeypatch):
    """A stop report naming another organization's job is dead-lettered live; the rebuild leaves
    it out the same way and rebuilds everything else (it used to abort the whole rebuild)."""
    hijack = stop_changed(1, StopStatus.FAILED, org_id="org_evil", job_id="job_1")
    events = [*history(), hijack.model_copy(update={"occurred_at": T0 + timedelta(minutes=5)})]

    reading(monkeypatch, events)
    url = f"sqlite:///{tmp_path / 'rebuilt.db'}"
    report = await rebuild(offline_settings(tmp_path), url, redis=MemoryRedis())
    assert (report.events, report.skipped, report.jobs) == (len(events), 2, 1)
    rebuilt = job_view(*JobQueries(make_engine(url)).job("org_1", job_id="job_1"))
    assert rebuilt["stops"][0]["status"] == StopStatus.FAILED and rebuilt["status"] == JobStatus.IN_PROGRESS


async def test_a_replay_in_many_batches_opens_sealed_events_with_one_key_read_per_job(database, tmp_path, monkeypatch):
    """Batches written in a worker thread while the next decodes, SQLite and PostgreSQL: the same
    rows as one batch; the personal fields opened, each job's key read once, not per event or batch;
    progress after each batch up to the total."""
    redis = CountingRedis()
    keys = DataKeys(redis, StatusSettings().kek_material)
    plain = history()
    events = [await keys.seal(e) for e in plain]

    reading(monkeypatch, events)
    monkeypatch.setattr(rebuild_module, "REBUILD_BATCH", 2)
    seen: list[tuple[int, int]] = []
    url = database("rebuilt")
    redis.mgets = 0
    report = await rebuild(offline_settings(tmp_path), url, redis=redis, progress=lambda d, t: seen.append((d, t)))
    assert (report.events, report.skipped, report.jobs) == (len(events), 1, 1)
    assert redis.mgets <= 3  # the organization's key, the job's, and the jobs' heads: 5 batches
    assert seen == [(2, 9), (4, 9), (6, 9), (8, 9), (9, 9)]
    assert set(report.phases) == {"read", "decode", "open", "apply"} and report.phases["apply"] > 0
    live = make_engine(f"sqlite:///{tmp_path / 'live.db'}")
    Projection(live).apply_many(plain)
    rebuilt = job_view(*JobQueries(make_engine(url)).job("org_1", job_id="job_1"))
    assert rebuilt == job_view(*JobQueries(live).job("org_1", job_id="job_1"))
    assert rebuilt["driver"]["name"] == "Dana"  # opened from its sealed form


def routed_jobs(count: int) -> list[Event]:
    """A driver, then `count` jobs imported, geocoded and routed, one after another."""
    events: list[Event] = [DriverRegistered(org_id="org_1", email="dana@example.com", name="Dana")]
    for k in range(count):
        ids = {"org_id": "org_1", "job_id": f"job_{k}"}
        geo = geocoded([(-27.47, 153.02), (-27.48, 153.01)], **ids)
        imported = import_requested(stop(0, job_id=ids["job_id"]), stop(1, job_id=ids["job_id"]), **ids)
        events += [imported, geo, routed(geo, [1, 0])]
    return [e.model_copy(update={"occurred_at": T0 + timedelta(seconds=n)}) for n, e in enumerate(events)]


class BrokenReader(MemoryReader):
    """Kafka goes away after the first fetches: the replay fails midway."""

    fetches = 0
    answered = 10

    async def _fetch(self, partitions):
        self.fetches += 1
        if self.fetches > BrokenReader.answered:
            raise KafkaConnectionError("the broker went away")
        return await super()._fetch(partitions)


async def test_a_rebuild_that_fails_midway_leaves_its_target_empty_for_the_same_command_again(
    database, tmp_path, monkeypatch, caplog
):
    """The first batches were written when the log stopped answering: the target is emptied again
    (its schema stays), so the operator reruns the same command once Kafka is back."""
    events = routed_jobs(20)
    monkeypatch.setattr(rebuild_module, "REBUILD_BATCH", 2)
    monkeypatch.setattr(rebuild_module, "TopicReader", partial(BrokenReader, events))
    url = database("rebuilt")
    wrote: list[int] = []
    with pytest.raises(KafkaConnectionError):
        await rebuild(offline_settings(tmp_path), url, redis=MemoryRedis(), progress=lambda d, t: wrote.append(d))
    assert wrote and wrote[-1] >= 6, "the replay wrote batches (jobs among them) before it failed"
    engine = make_engine(url)
    assert "status_jobs" not in tables_with_rows(engine) and JobQueries(engine).job_count() == 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM status_drivers")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM status_applied_events")).scalar() == 0
    assert "is deleted again" in caplog.text

    reading(monkeypatch, events)
    report = await rebuild(offline_settings(tmp_path), url, redis=MemoryRedis())
    assert (report.events, report.jobs) == (len(events), 20)


async def test_a_rebuild_refused_for_a_target_that_holds_a_read_model_leaves_it_as_it_was(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'live.db'}"
    Projection(make_engine(url)).apply_many(history())
    reading(monkeypatch, history())
    with pytest.raises(NotEmpty):
        await rebuild(offline_settings(tmp_path), url, redis=MemoryRedis())
    assert JobQueries(make_engine(url)).job_count() == 1


async def test_a_target_holding_rows_but_no_job_is_refused_too_since_a_failed_rebuild_would_delete_them(
    tmp_path, monkeypatch
):
    """A driver directory (or erasure tombstones, retention settings) without jobs is someone's."""
    url = f"sqlite:///{tmp_path / 'drivers.db'}"
    Projection(make_engine(url)).apply_many([DriverRegistered(org_id="org_1", email="d@example.com", name="D")])
    reading(monkeypatch, history())
    with pytest.raises(NotEmpty, match="status_drivers"):
        await rebuild(offline_settings(tmp_path), url, redis=MemoryRedis())
    with make_engine(url).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM status_drivers")).scalar() == 1


async def test_a_rebuild_cancelled_while_a_batch_is_written_waits_for_it_and_leaves_its_target_empty(
    tmp_path, monkeypatch, caplog
):
    """Ctrl-C lands while a batch is being written in its worker thread: the write finishes before
    the target is emptied, so no row of it commits after the clean-up."""
    events = routed_jobs(10)
    monkeypatch.setattr(rebuild_module, "REBUILD_BATCH", 4)
    reading(monkeypatch, events)
    writing = threading.Event()
    apply_timed = rebuild_module._apply_timed

    def slow(projection, taken, phases):
        writing.set()
        time.sleep(0.3)
        return apply_timed(projection, taken, phases)

    monkeypatch.setattr(rebuild_module, "_apply_timed", slow)
    url = f"sqlite:///{tmp_path / 'cancelled.db'}"
    task = asyncio.ensure_future(rebuild(offline_settings(tmp_path), url, redis=MemoryRedis()))
    while not writing.is_set():
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.5)  # a write left running would commit by now
    assert tables_with_rows(make_engine(url)) == []
    assert "is deleted again" in caplog.text


async def test_a_dry_run_reads_decodes_and_opens_every_event_and_writes_nothing(tmp_path, monkeypatch):
    events = history()

    reading(monkeypatch, events)
    before = set(tmp_path.iterdir())
    report = await rebuild(offline_settings(tmp_path), None, redis=MemoryRedis())
    assert (report.events, report.skipped, report.jobs) == (len(events), 1, 1)
    assert report.phases["apply"] < report.phases["decode"] + report.phases["open"] + report.phases["read"]
    assert set(tmp_path.iterdir()) == before  # no database made


def test_the_sqlite_target_skips_syncs_only_while_the_rebuild_writes(tmp_path):
    """synchronous=OFF while the replay fills the empty file; afterwards everything is in the
    file itself (the WAL checkpointed) and the service opens it with its normal settings."""
    url = f"sqlite:///{tmp_path / 'rebuilt.db'}"
    with rebuild_module.replay_engine(url) as engine, engine.begin() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 0  # OFF
        connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        connection.exec_driver_sql("INSERT INTO t VALUES (1)")
    wal = tmp_path / "rebuilt.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    with make_engine(url).connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL, the service's
        assert connection.exec_driver_sql("SELECT x FROM t").scalar() == 1


def test_a_poisoned_event_is_found_by_halving_its_batch_not_by_replaying_it_event_by_event(tmp_path):
    """The replay's batches are large (REBUILD_BATCH); an event the live consumer dead-lettered
    used to send its whole batch through one transaction per event. Halving finds it in a few
    transactions, and the rows are those of the events applied one at a time."""
    jobs = []
    for n in range(8):
        ids = {"org_id": "org_1", "job_id": f"job_{n}"}
        geo = geocoded([(-27.47, 153.02), (-27.48, 153.01)], **ids)
        jobs += [import_requested(stop(0, job_id=ids["job_id"]), stop(1, job_id=ids["job_id"]), **ids), geo]
        jobs.append(routed(geo, [1, 0]))
    hijack = stop_changed(1, StopStatus.FAILED, org_id="org_evil", job_id="job_3")
    batch = [*jobs[:13], hijack, *jobs[13:]]

    class Counting(Projection):
        transactions = 0

        def apply_batch(self, events):
            Counting.transactions += 1
            return super().apply_batch(events)

    halved = Counting(make_engine(f"sqlite:///{tmp_path / 'halved.db'}"))
    assert rebuild_module.apply_as_live(halved, batch) == 1
    assert Counting.transactions <= 2 * 5 + 1  # about two per halving, not one per event (25)
    one_by_one = Projection(make_engine(f"sqlite:///{tmp_path / 'one.db'}"))
    for event in jobs:
        one_by_one.apply(event)
    for n in range(8):
        expected = job_view(*JobQueries(one_by_one.engine).job("org_1", job_id=f"job_{n}"))
        assert job_view(*JobQueries(halved.engine).job("org_1", job_id=f"job_{n}")) == expected
