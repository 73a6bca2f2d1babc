"""The projection's batches (SQLite offline, PostgreSQL as e2e): a batch reads each job once and
writes the difference at its end, and must leave exactly the rows, versions and webhook changes
that applying its events one at a time leaves, whatever else the batch holds (a driver who takes
over waiting jobs, an erasure, an update that drops a stop, the same event twice)."""

import gc
import re
import sqlite3
import weakref
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, event, select
from sqlalchemy.orm.exc import StaleDataError

from services.status.adapters import projection as projection_module
from services.status.adapters.projection import Projection
from services.status.adapters.queries import JobQueries
from services.status.adapters.state import StopState, Unit
from services.status.adapters.tables import (
    AppliedEventRow,
    DriverRow,
    ErasedJobRow,
    JobRow,
    OutboxRow,
    StopRow,
)
from services.status.views import job_head, job_view
from shared.db import json_text, make_engine
from shared.events import DriverRegistered, Event, JobErased, utcnow
from shared.events.jobs import TimeWindow
from shared.events.stops import ProofOfDelivery
from shared.testing.builders import geocoded, import_requested, routed, stop, stop_changed
from shared.vocabulary import StopStatus, as_utc

T0 = utcnow() - timedelta(hours=2)


def _life(job_id: str, driver: str, at: int) -> list[Event]:
    """A three-stop job imported, geocoded and routed, its events `at` minutes after T0."""
    ids = {"org_id": "org_1", "job_id": job_id}
    imported = import_requested(
        *(stop(i, f"{i} Queen St", job_id=job_id) for i in range(3)),
        **ids,
        external_job_id=f"EXT-{job_id}",
        driver_email=driver,
    )
    geo = geocoded([(-27.40, 153.0), (-27.41, 153.0), (-27.42, 153.0)], **ids)
    route = routed(geo, [2, 0, 1], external_job_id=f"EXT-{job_id}")
    return [
        e.model_copy(update={"occurred_at": T0 + timedelta(minutes=at, seconds=n)})
        for n, e in enumerate((imported, geo, route))
    ]


def _report(job_id: str, i: int, status: str, minute: int) -> Event:
    return stop_changed(i, status, T0 + timedelta(minutes=minute), org_id="org_1", job_id=job_id)


def _update(job_id: str, base_version: int) -> Event:
    """job_id's second spec: S0 kept, S1 moved, S2 dropped, S3 new."""
    stops = [
        stop(0, "0 Queen St", job_id=f"{job_id}.2").model_copy(update={"external_stop_id": "S0"}),
        stop(1, "9 Ann St", job_id=f"{job_id}.2").model_copy(update={"external_stop_id": "S1"}),
        stop(3, "3 Eagle St", job_id=f"{job_id}.2"),
    ]
    event = import_requested(
        *stops, org_id="org_1", job_id=job_id, external_job_id=f"EXT-{job_id}", driver_email="dana@example.com"
    )
    return event.model_copy(
        update={
            "spec_version": 2,
            "base_version": base_version,
            "keep": ("S0",),
            "occurred_at": T0 + timedelta(minutes=50),
        }
    )


def _stream(database) -> list[Event]:
    """Three jobs' lives interleaved: A waits for its driver (registered later), B is updated
    after a report (S2 dropped, S3 new) and reported on again, C is erased in the middle and reported on after that."""
    head = [
        DriverRegistered(org_id="org_1", email="dana@example.com", name="Dana"),
        *_life("job_a", "lee@example.com", 0),
        *_life("job_b", "dana@example.com", 1),
        _report("job_b", 0, StopStatus.COMPLETED, 20),
        *_life("job_c", "dana@example.com", 2),
        _report("job_c", 2, StopStatus.COMPLETED, 21),
        _report("job_a", 2, StopStatus.COMPLETED, 22),
    ]
    reference = Projection(make_engine(database("head")))
    reference.apply_many(head)
    version = JobQueries(reference.engine).job("org_1", job_id="job_b")[0].version
    erase_c = JobErased(org_id="org_1", job_id="job_c", reason="request", occurred_at=T0 + timedelta(minutes=30))
    repeated = _report("job_b", 3, StopStatus.COMPLETED, 60)
    return [
        *head,
        DriverRegistered(org_id="org_1", email="lee@example.com", name="Lee"),  # A is assigned now
        _report("job_a", 0, StopStatus.FAILED, 25),
        erase_c,
        _report("job_c", 0, StopStatus.COMPLETED, 31),  # too late: C is erased
        _update("job_b", version),
        _report("job_b", 1, StopStatus.COMPLETED, 59),
        repeated,
        repeated,  # the same event twice (in one batch, or in two)
        _report("job_a", 1, StopStatus.COMPLETED, 61),
        erase_c,  # erased again: nothing more happens
    ]


def _plain(row: Any) -> tuple:
    return tuple(as_utc(v) if hasattr(v, "tzinfo") else v for v in row)


def _dump(engine) -> dict[str, list]:
    """Every row the projection writes, in a comparable form (the outbox in the order it was written)."""
    outbox = OutboxRow.__table__
    shown = [c for c in outbox.c if c.name not in ("seq", "sent_at")]
    with engine.connect() as conn:
        dump = {
            t.name: sorted(_plain(r) for r in conn.execute(select(*t.c)))
            for t in (JobRow.__table__, StopRow.__table__, DriverRow.__table__, ErasedJobRow.__table__)
        }
        dump["outbox"] = [_plain(r) for r in conn.execute(select(*shown).order_by(outbox.c.seq))]
        dump["applied"] = sorted(conn.execute(select(AppliedEventRow.__table__.c.event_id)).scalars())
    return dump


@pytest.mark.parametrize("size", [2, 3, 5, 8, 100])
def test_batches_leave_the_same_rows_versions_and_webhook_changes_as_one_event_at_a_time(database, size):
    stream = _stream(database)
    one_by_one = Projection(make_engine(database("one")))
    for e in stream:
        one_by_one.apply(e)
    batched = Projection(make_engine(database("batched")))
    settled = []
    for i in range(0, len(stream), size):
        settled += batched.apply_many(stream[i : i + size])
    expected, got = _dump(one_by_one.engine), _dump(batched.engine)
    assert got == expected
    jobs = {row[0]: row for row in got["status_jobs"]}
    assert set(jobs) == {"job_a", "job_b"} and [r[0] for r in got["status_erased_jobs"]] == ["job_c"]
    stops_b = sorted(r[2] for r in got["status_stops"] if r[0] == "job_b")
    assert stops_b == ["S0", "S1", "S3"]  # the update dropped S2 and added S3
    versions = [r[4] for r in got["outbox"] if r[2] == "job_b"]  # webhooks' versions: strictly increasing
    assert versions == sorted(set(versions))
    assert settled.count("job_a") == 1 and settled.count("job_b") >= 1


def test_a_batch_of_reports_on_many_jobs_reads_and_writes_in_a_few_statements(tmp_path):
    """The cost the issue was about: a batch no longer reads a job (and its stops) and flushes per
    event; twenty reports on twenty jobs take a handful of statements, not hundreds."""
    engine = make_engine(f"sqlite:///{tmp_path / 'count.db'}")
    projection = Projection(engine)
    projection.apply(DriverRegistered(org_id="org_1", email="dana@example.com", name="Dana"))
    jobs = [f"job_{n}" for n in range(20)]
    projection.apply_many([e for job_id in jobs for e in _life(job_id, "dana@example.com", 0)])
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    reports = [_report(job_id, 2, StopStatus.COMPLETED, 10) for job_id in jobs]
    projection.apply_many(reports)
    assert len(statements) <= 10, statements
    for job_id in jobs:  # and every report was applied, each announced once
        job, stops = JobQueries(engine).job("org_1", job_id=job_id)
        assert job.status == "in_progress" and {s.external_stop_id: s.status for s in stops}["S2"] == "completed"
    with engine.connect() as conn:
        types = conn.execute(select(OutboxRow.change_type).where(OutboxRow.version > 4)).scalars().all()
    assert sorted(types) == sorted(["stop.status_changed", "job.in_progress"] * 20)


def test_drivers_and_erasures_mid_batch_do_not_make_the_batch_read_its_jobs_again(tmp_path):
    """A long history is full of driver registrations and erasures between job events: each one
    writes what the batch did so far (the erasure and the driver's take-over read the tables), but
    the batch keeps its jobs' states; it reads every job's stops once and writes each row once."""
    engine = make_engine(f"sqlite:///{tmp_path / 'mid.db'}")
    projection = Projection(engine)
    projection.apply(DriverRegistered(org_id="org_1", email="dana@example.com", name="Dana"))
    jobs = [f"job_{n}" for n in range(10)]
    projection.apply_many([e for job_id in jobs for e in _life(job_id, "dana@example.com", 0)])
    projection.apply_many(_life("job_gone", "dana@example.com", 0))
    stream: list[Event] = []
    for n, job_id in enumerate(jobs):
        stream.append(_report(job_id, 0, StopStatus.COMPLETED, 10))
        stream.append(DriverRegistered(org_id="org_1", email=f"d{n}@example.com", name=f"D{n}"))
        if n == 5:
            stream.append(JobErased(org_id="org_1", job_id="job_gone", reason="request"))
        stream.append(_report(job_id, 1, StopStatus.FAILED, 11))
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    projection.apply_many(stream)
    stop_reads = [s for s in statements if s.lstrip().startswith("SELECT status_stops.")]
    stop_writes = [s for s in statements if s.lstrip().upper().startswith("UPDATE status_stops")]
    assert len(stop_reads) == 1, stop_reads  # all ten jobs at the start, not again after each flush
    assert len(stop_writes) <= 11, stop_writes  # one executemany per flush that found a change, at most
    for job_id in jobs:
        job, stops = JobQueries(engine).job("org_1", job_id=job_id)
        assert [s.status for s in sorted(stops, key=lambda s: s.external_stop_id)] == [
            "completed",
            "failed",
            "pending",
        ]
        assert job.status == "in_progress"
    assert JobQueries(engine).job("org_1", job_id="job_gone") is None


def test_a_row_refuses_an_attribute_that_is_not_a_column():
    row = StopState(job_id="j", stop_id="j.0", external_stop_id="S0")
    assert (row.status, row.parcel_count, row.position) == ("pending", 1, 0)  # StopRow's defaults
    with pytest.raises(KeyError):
        row.statsu = "completed"  # a writer's typo fails loudly instead of writing nothing


def test_a_batch_whose_job_was_erased_meanwhile_fails_instead_of_writing_half_of_it(database):
    """The DELETE request erases a job between the batch reading it and writing it: the batch
    fails as a whole (and its events, applied again, find the job erased), rather than updating
    nothing and leaving new stops and webhook changes of an erased job behind."""
    engine = make_engine(database("race"))
    projection = Projection(engine)
    projection.apply(DriverRegistered(org_id="org_1", email="dana@example.com", name="Dana"))
    projection.apply_many(_life("job_r", "dana@example.com", 0))
    with engine.begin() as conn:
        unit = Unit(conn)
        unit.load(["job_r"])
        conn.execute(delete(JobRow.__table__).where(JobRow.__table__.c.job_id == "job_r"))  # erased meanwhile
        unit.job("job_r").status = "cancelled"
        with pytest.raises(StaleDataError):
            unit.flush()


@pytest.mark.parametrize("size", [1, 4, 100])
def test_a_batch_hands_back_its_jobs_as_a_read_would_find_them(database, size):
    """The follow-ups (heads, the settled job's view) are made of the rows the batch committed,
    not read back: those must give the same view and head as the jobs endpoint's read, and an
    erased job is not among them."""
    stream = _stream(database)
    projection = Projection(make_engine(database("held")))
    queries = JobQueries(projection.engine)
    compared = changed = 0
    for i in range(0, len(stream), size):
        batch = projection.apply_batch(stream[i : i + size])
        assert "job_c" not in batch.rows or not any(isinstance(e, JobErased) for e in stream[: i + size])
        for job_id, (job, stops) in batch.rows.items():
            read = queries.job("org_1", job_id=job_id)
            assert read is not None
            assert job_view(job, stops) == job_view(*read)
            assert job_head(job, stops) == job_head(*read)
            compared += 1
        assert batch.changed <= batch.rows.keys()
        changed += len(batch.changed)
    assert compared >= changed > 0


def test_a_projection_that_does_not_announce_leaves_the_same_rows_and_versions_and_no_webhooks(database):
    """A rebuild replays history: it writes the same read model and ETag versions, but no
    webhook changes (only the erasure's note to the notifier, which the rebuild marks sent)."""
    stream = _stream(database)
    announced = Projection(make_engine(database("announced")))
    quiet = Projection(make_engine(database("quiet")), announce=False)
    for i in range(0, len(stream), 4):
        announced.apply_many(stream[i : i + 4])
        quiet.apply_many(stream[i : i + 4])
    expected, got = _dump(announced.engine), _dump(quiet.engine)
    assert len(expected["outbox"]) > 10
    assert {row[3] for row in got["outbox"]} == {"job.erased"}
    del expected["outbox"], got["outbox"]
    assert got == expected


class _ThroughSQLAlchemy(Unit):
    """The unit of work writing and reading through SQLAlchemy's statements, as it does on PostgreSQL."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.raw = False


def _stored(path) -> dict[str, list[tuple]]:
    """Every table's rows exactly as SQLite holds them (text, integers, reals), not as read back;
    the applied events' times (when each was applied) as the shape of their text."""
    with sqlite3.connect(path) as conn:
        names = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        stored = {
            name: sorted(conn.execute(f"SELECT * FROM {name}").fetchall(), key=repr)
            for name in names
            if name.startswith("status_")
        }
    stored["status_applied_events"] = [(e, re.sub(r"\d", "0", at)) for e, at in stored["status_applied_events"]]
    return stored


def _window_dropped(database) -> list[Event]:
    """A job whose stop had a time window and whose update (If-Match) drops it: an UPDATE that sets
    a JSON column back to None."""
    window = TimeWindow(start=T0 + timedelta(hours=3), end=T0 + timedelta(hours=5))
    ids = {"org_id": "org_1", "job_id": "job_w"}
    first = import_requested(stop(0, "0 Queen St", job_id="job_w", time_window=window), **ids, external_job_id="W")
    geo = geocoded([(-27.40, 153.0)], **ids)
    life = [first, geo, routed(geo, [0], external_job_id="W")]
    life = [e.model_copy(update={"occurred_at": T0 + timedelta(minutes=80, seconds=n)}) for n, e in enumerate(life)]
    reference = Projection(make_engine(database("window")))
    reference.apply_many(life)
    version = JobQueries(reference.engine).job("org_1", job_id="job_w")[0].version
    again = import_requested(stop(0, "0 Queen St", job_id="job_w"), **ids, external_job_id="W")
    update = {"spec_version": 2, "base_version": version, "occurred_at": T0 + timedelta(minutes=90)}
    return [*life, again.model_copy(update=update)]


@pytest.mark.parametrize("serializer", [None, json_text], ids=["json.dumps", "orjson"])
def test_sqlite_rows_written_straight_to_the_driver_are_stored_as_sqlalchemy_stores_them(
    tmp_path, monkeypatch, serializer
):
    """On SQLite the batch's rows go to the driver with the statements' SQL and bind processors
    compiled once: every value (JSON and its null, datetimes, booleans, reals) must be the text or
    number SQLAlchemy's own statements store, with the engine's JSON serializer."""
    proof = ProofOfDelivery(recipient_name="Zoë Ng", photo_urls=("https://example.com/p/1.jpg",))
    stream = [
        *_stream(lambda name: f"sqlite:///{tmp_path / name}.db"),
        _report("job_a", 2, StopStatus.COMPLETED, 70).model_copy(update={"proof": proof, "notes": "left at door"}),
    ]
    # One batch each: the update's rows must be stored and then changed (UPDATE), not inserted as they end.
    one_by_one = _window_dropped(lambda name: f"sqlite:///{tmp_path / name}.db")
    options = {} if serializer is None else {"json_serializer": serializer}
    direct = Projection(make_engine(f"sqlite:///{tmp_path / 'direct.db'}", **options))
    for i in range(0, len(stream), 4):
        direct.apply_many(stream[i : i + 4])
    for e in one_by_one:
        direct.apply_many([e])
    monkeypatch.setattr(projection_module, "Unit", _ThroughSQLAlchemy)
    through = Projection(make_engine(f"sqlite:///{tmp_path / 'through.db'}", **options))
    for i in range(0, len(stream), 4):
        through.apply_many(stream[i : i + 4])
    for e in one_by_one:
        through.apply_many([e])
    expected, got = _stored(tmp_path / "through.db"), _stored(tmp_path / "direct.db")
    assert got == expected
    stops = {(row[0], row[2]): row for row in got["status_stops"]}
    assert len(stops) == 7 and "Zo" in repr(stops[("job_a", "S2")])  # the proof's row is there, and A's and B's
    with sqlite3.connect(tmp_path / "direct.db") as conn:
        windows = conn.execute("SELECT time_window FROM status_stops WHERE job_id = 'job_w'").fetchall()
    assert windows == [("null",)]  # the update dropped the window (JSON's null, not SQL's NULL)
    assert len(got["status_applied_events"]) == len({str(e.event_id) for e in stream + one_by_one})


def test_the_statements_compiled_for_an_engine_go_with_its_projection(tmp_path):
    """The compiled statements hold their dialect (its bind processors do): kept by the projection,
    they are freed with it, where a module-wide cache kept every engine's dialect alive."""
    projection = Projection(make_engine(f"sqlite:///{tmp_path / 'gone.db'}"))
    projection.apply_many(_life("job_x", "dana@example.com", 0))
    assert projection._compiled  # the batch compiled its statements
    dialect = weakref.ref(projection.engine.dialect)
    projection.engine.dispose()
    del projection
    gc.collect()
    assert dialect() is None
