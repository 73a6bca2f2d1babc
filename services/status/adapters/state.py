"""The projection's working copies of the read model's rows, without the ORM's cost.

A batch loads each job it touches, and that job's stops, once (SQLAlchemy Core, one IN query
per table for the whole batch) into plain objects that the writers change with attribute
assignments, as they did ORM rows. Each object remembers, per event, the value an attribute had
before the event first set it (`_before`: what the projection's public-view check reads), and,
for the whole batch, the row as it was loaded (`_loaded`). At the end of the batch the difference is
written with executemany: new rows inserted, changed rows updated (grouped by the columns that
changed), dropped stops deleted, the outbox rows and the applied event ids inserted.
"""

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from itertools import zip_longest
from operator import attrgetter
from typing import Any, ClassVar

import orjson
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Table,
    bindparam,
    delete,
    insert,
    literal_column,
    select,
    union_all,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm.exc import StaleDataError

from services.status.adapters.tables import AppliedEventRow, ErasedJobRow, ErasedOrgRow, JobRow, OutboxRow, StopRow
from shared.vocabulary import as_utc

CHUNK = 500  # ids per IN query (well under every database's limit of bound parameters)


def plain(value: object) -> object:
    return as_utc(value) if isinstance(value, datetime) else value  # SQLite hands datetimes back naive


def _defaults(model: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model's defaults for a new row: plain values, and factories (a fresh list per row)."""
    values, factories = {}, {}
    for name, info in model.model_fields.items():
        if info.default_factory is not None:
            factories[name] = info.default_factory
        else:
            values[name] = None if info.is_required() else info.default
    return values, factories


class _State:
    """One row's columns as attributes; `_before` holds, for the current event, each changed
    attribute's value before the event set it; `_loaded` the row as read (None: not yet stored).

    Plain instance dictionaries, not __slots__: a loaded row is one dict.update, which is what
    makes reading a whole job's stops for every event of it cheap."""

    COLUMNS: ClassVar[tuple[str, ...]] = ()
    KEY: ClassVar[tuple[str, ...]] = ()
    TABLE: ClassVar[Table]
    _DEFAULTS: ClassVar[dict[str, Any]]
    _FACTORIES: ClassVar[dict[str, Any]]
    _values: ClassVar[Any]
    _RAW: ClassVar[list[Callable[[Any], Any] | None]]  # per column, how SQLite's stored value reads back

    def __init__(self, **values: Any) -> None:
        unknown = set(values) - set(self.COLUMNS)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no column {sorted(unknown)}")
        d = self.__dict__
        d.update(self._DEFAULTS)
        d.update({name: factory() for name, factory in self._FACTORIES.items()})
        d.update(values)
        d.update(_before={}, _new=True, _loaded=None, _touched=True)

    @classmethod
    def loaded(cls, values: tuple[Any, ...]) -> "_State":
        state = cls.__new__(cls)
        d = state.__dict__
        d.update(zip(cls.COLUMNS, values, strict=True))
        d.update(_before={}, _new=False, _loaded=values, _touched=False)
        return state

    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        before = d["_before"]
        if name not in before:
            before[name] = d[name]  # KeyError: not a column (a typo would otherwise pass silently)
            d["_touched"] = True
        d[name] = value

    def changed_since_event(self, unseen: frozenset[str] = frozenset()) -> bool:
        """Whether the current event added this row or set an attribute to a different value;
        starts the next event's record either way."""
        changed, before = self._new, self._before
        if not before:
            if changed:
                self.__dict__["_new"] = False
            return changed
        if not changed:
            for name, was in before.items():
                if name not in unseen:
                    now = getattr(self, name)
                    if now != was and plain(now) != plain(was):
                        changed = True
                        break
        self.__dict__.update(_before={}, _new=False)
        return changed

    def differences(self) -> tuple[str, ...] | None:
        """The columns that differ from the row as loaded (None: the row is new)."""
        if self._loaded is None:
            return None
        if not self._touched:
            return ()
        return tuple(
            name
            for name, now, was in zip(self.COLUMNS, self._values(self), self._loaded, strict=True)
            if now != was and plain(now) != plain(was)
        )

    def row(self, columns: Iterable[str] | None = None) -> dict[str, Any]:
        return {name: getattr(self, name) for name in (self.COLUMNS if columns is None else columns)}


def _json(text: str) -> Any:
    return None if text == "null" else orjson.loads(text)  # the same values as json.loads, in a fraction of the time


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)  # stored as UTC, read as UTC (SQLModel's UTCDateTime)


def _raw_reader(column: Any) -> Callable[[Any], Any] | None:
    """SQLite hands JSON, datetimes and booleans back as text and integers; SQLAlchemy's result
    processing of them is most of the cost of reading a job's stops, so the loader does it itself."""
    if isinstance(column.type, JSON):
        return _json
    if isinstance(getattr(column.type, "impl", column.type), DateTime):
        return _when
    if isinstance(column.type, Boolean):
        return bool
    return None


def _columns(model: Any) -> tuple[str, ...]:
    return tuple(c.name for c in model.__table__.columns)


def _bind(cls: type[_State], model: Any, key: tuple[str, ...]) -> None:
    """The class's table, columns, key and defaults: those of the model."""
    cls.COLUMNS, cls.KEY, cls.TABLE = _columns(model), key, model.__table__
    cls._RAW = [_raw_reader(column) for column in model.__table__.columns]
    cls._DEFAULTS, cls._FACTORIES = _defaults(model)
    cls._values = staticmethod(attrgetter(*cls.COLUMNS))


class JobState(_State):
    """A status_jobs row the projection is changing: JobRow's columns, names and defaults."""


class StopState(_State):
    """A status_stops row the projection is changing: StopRow's columns, names and defaults."""


_bind(JobState, JobRow, ("job_id",))
_bind(StopState, StopRow, ("job_id", "stop_id"))
Stops = dict[str, StopState]  # by external_stop_id


def _statements() -> dict[str, Any]:
    """Every statement a batch runs, built once: building a statement (and its cache key) costs
    more than running it on a one-event batch, the live consumer's usual poll."""
    ids = bindparam("ids", expanding=True)
    applied, outbox = AppliedEventRow.__table__, OutboxRow.__table__
    orgs, erased = ErasedOrgRow.__table__, ErasedJobRow.__table__
    jobs, stops = JobState.TABLE, StopState.TABLE
    made: dict[str, Any] = {
        "seen": union_all(
            select(literal_column("'event'"), applied.c.event_id).where(
                applied.c.event_id.in_(bindparam("events", expanding=True))
            ),
            select(literal_column("'org'"), orgs.c.org_id).where(orgs.c.org_id.in_(bindparam("orgs", expanding=True))),
            select(literal_column("'job'"), erased.c.job_id).where(
                erased.c.job_id.in_(bindparam("jobs", expanding=True))
            ),
        ),
        "drop_stops": delete(stops).where(
            stops.c.job_id == bindparam("k_job_id"), stops.c.stop_id == bindparam("k_stop_id")
        ),
        "outbox": insert(outbox),
        "applied_ids": insert(applied),
    }
    for table in (jobs, stops):
        made[f"insert {table.name}"] = insert(table)
        order = [table.c[k] for k in ("job_id", "stop_id") if k in table.c]  # the primary key's order, as the ORM's
        made[f"rows {table.name}"] = select(*table.c).where(table.c.job_id.in_(ids)).order_by(*order)
    return made


_STATEMENTS: dict[str, Any] = {}
_UPDATES: dict[tuple[str, tuple[str, ...], tuple[str, ...]], Any] = {}


def _statement(name: str) -> Any:
    if not _STATEMENTS:
        _STATEMENTS.update(_statements())
    return _STATEMENTS[name]


def _update(table: Table, key: tuple[str, ...], columns: tuple[str, ...]) -> Any:
    """UPDATE table SET columns WHERE key (bound as k_<column>), one per set of changed columns."""
    found = _UPDATES.get((table.name, key, columns))
    if found is None:
        where = [table.c[k] == bindparam(f"k_{k}") for k in key]
        found = update(table).where(*where).values({c: bindparam(c) for c in columns})
        _UPDATES[(table.name, key, columns)] = found
    return found


class _Compiled:
    """A statement as the DBAPI takes it: its SQL, and per positional parameter its name and how
    SQLAlchemy would convert its value (JSON to text by the engine's serializer, datetimes to
    SQLite's text, booleans to integers): the values stored are those SQLAlchemy would store."""

    def __init__(self, dialect: Any, statement: Any, keys: tuple[str, ...]) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        # A column left out that has a Python-side default is filled in by SQLAlchemy (prefetch):
        # such a statement keeps SQLAlchemy's path (every row the batch writes is whole today).
        self.direct = not (compiled.insert_prefetch or compiled.update_prefetch)
        self.sql = compiled.string
        names = compiled.positiontup or []
        self.names = tuple(names)
        self.processors = [
            (i, p)
            for i, name in enumerate(names)
            if (p := compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None
        ]

    def tuples(self, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        names, processors = self.names, self.processors
        out = []
        for row in rows:
            values = [row[name] for name in names]
            for i, process in processors:
                values[i] = process(values[i])
            out.append(tuple(values))
        return out


def _chunks(values: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(values), CHUNK):
        yield values[i : i + CHUNK]


class Unit:
    """One batch's jobs and stops, loaded once and written back as one diff (see the module)."""

    def __init__(self, conn: Connection, *, announce: bool = True, compiled: dict[Any, Any] | None = None) -> None:
        """`compiled`: the statements compiled for this engine's dialect, kept by the caller across
        batches (the projection: one per engine, so they go with it)."""
        self.conn, self.announce = conn, announce
        self.raw = conn.dialect.name == "sqlite"
        # (statement, the rows' keys) -> _Compiled for writes; (query, ()) -> its SQLCompiler for reads
        self.compiled: dict[tuple[Any, tuple[str, ...]], Any] = {} if compiled is None else compiled
        self.jobs: dict[str, JobState | None] = {}  # None: no such row
        self.stops: dict[str, Stops] = {}  # job_id -> its stops
        self.dropped: list[StopState] = []  # stop rows a writer deleted
        # The outbox rows, in the order they happened (None: not announcing, see Projection).
        self.outbox: list[dict[str, Any]] | None = [] if announce else None
        self.applied: list[dict[str, Any]] = []  # the applied event ids
        self.deleted_in_event = False
        # The jobs a writer may have changed since the last flush (each one read or added through
        # job(), stops_of() or add()): a flush writes only these, and keeps every state loaded.
        self.dirty: set[str] = set()

    # --- reading
    def seen(
        self, event_ids: Iterable[str], org_ids: Iterable[str], job_ids: Iterable[str]
    ) -> tuple[set[str], set[str], set[str]]:
        """Of these, the events applied already, the organizations and the jobs erased: one query."""
        found: dict[str, set[str]] = {"event": set(), "org": set(), "job": set()}
        lists = [_chunks(sorted(set(ids))) for ids in (event_ids, org_ids, job_ids)]
        for events, orgs, jobs in zip_longest(*lists, fillvalue=[]):
            params = {"events": events, "orgs": orgs, "jobs": jobs}
            for kind, value in self.conn.execute(_statement("seen"), params):
                found[kind].add(value)
        return found["event"], found["org"], found["job"]

    def load(self, job_ids: Iterable[str]) -> None:
        """Every job of `job_ids` not loaded yet, with its stops: two queries per CHUNK jobs."""
        wanted = sorted({job_id for job_id in job_ids if job_id not in self.jobs})
        for chunk in _chunks(wanted):
            for job_id in chunk:
                self.jobs[job_id] = None
                self.stops[job_id] = {}
            for values in self._read(JobState, chunk):
                self.jobs[values[0]] = JobState.loaded(values)
            for values in self._read(StopState, chunk):
                self.stops[values[0]][values[2]] = StopState.loaded(values)

    def _read(self, cls: type[_State], job_ids: list[str]) -> Iterator[tuple[Any, ...]]:
        """The rows' values as the model holds them; on SQLite converted here (see _raw_reader)."""
        statement, params = _statement(f"rows {cls.TABLE.name}"), {"ids": job_ids}
        if not self.raw:
            yield from (tuple(row) for row in self.conn.execute(statement, params).fetchall())
            return
        rows = self.conn.exec_driver_sql(*self._expanded(statement, params)).fetchall()
        readers = [(i, read) for i, read in enumerate(cls._RAW) if read is not None]
        for row in rows:
            values = list(row)
            for i, read in readers:
                if values[i] is not None:
                    values[i] = read(values[i])
            yield tuple(values)

    def job(self, job_id: str) -> JobState | None:
        """The job's state (None: not in the read model), for a writer to change."""
        if job_id not in self.jobs:
            self.load([job_id])
        self.dirty.add(job_id)
        return self.jobs[job_id]

    def add(self, job: JobState) -> None:
        self.jobs[job.job_id] = job
        self.stops.setdefault(job.job_id, {})
        self.dirty.add(job.job_id)

    def stops_of(self, job_id: str) -> Stops:
        """The job's stops (by external_stop_id), for a writer to change, add to or drop from."""
        if job_id not in self.stops:
            self.load([job_id])
        self.dirty.add(job_id)
        return self.stops[job_id]

    def forget(self, job_ids: Iterable[str]) -> None:
        """Jobs erased mid-batch (their rows are gone): not held, not written."""
        for job_id in job_ids:
            self.jobs.pop(job_id, None)
            self.stops.pop(job_id, None)
            self.dirty.discard(job_id)
        self.dropped = [row for row in self.dropped if row.job_id in self.jobs]

    @property
    def held(self) -> dict[str, tuple[JobState, Stops]]:
        """Every job of the batch as it stands (flushed or about to be), with its stops."""
        return {job_id: (job, self.stops.get(job_id, {})) for job_id, job in self.jobs.items() if job is not None}

    # --- what the writers call
    def delete(self, row: StopState) -> None:
        """A stop the writer dropped (it also takes it out of the job's stops)."""
        self.deleted_in_event = True
        if row._loaded is not None:
            self.dropped.append(row)

    # --- writing
    def flush_outbox(self) -> None:
        """Only the outbox rows so far (an erasure's own row, and its deletion of the job's rows,
        come after them, as applying one event at a time leaves them)."""
        if self.outbox:
            self.conn.execute(_statement("outbox"), self.outbox)
            self.outbox = []

    def flush(self) -> None:
        """Write the difference since the last flush (the rows of the dirty jobs). The states stay,
        now as stored: a flush mid-batch (an erasure, a driver taking over waiting jobs reads the
        tables) does not make the rest of the batch read its jobs again."""
        conn = self.conn
        if self.dropped:
            conn.execute(
                _statement("drop_stops"), [{"k_job_id": r.job_id, "k_stop_id": r.stop_id} for r in self.dropped]
            )
        dirty = sorted(self.dirty)  # jobs (and their stops) in key order, as the batch loaded them
        self._write(job for job_id in dirty if (job := self.jobs.get(job_id)) is not None)
        self._write(row for job_id in dirty for row in self.stops.get(job_id, {}).values())
        if self.outbox:
            self._executemany(_statement("outbox"), self.outbox)
        if self.applied:
            self._executemany(_statement("applied_ids"), self.applied)
        self.dirty, self.dropped, self.applied = set(), [], []
        self.outbox = [] if self.announce else None

    def _expanded(self, statement: Any, params: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
        """A query's SQL with its IN lists expanded to these parameters, and their values in order:
        what the driver takes (compiled once per engine; the parameters here need no conversion)."""
        key = (statement, ())
        if (compiled := self.compiled.get(key)) is None:
            compiled = self.compiled[key] = statement.compile(dialect=self.conn.dialect)
        state = compiled.construct_expanded_state(params)
        return state.statement, tuple(state.parameters[name] for name in state.positiontup)

    def _executemany(self, statement: Any, rows: list[dict[str, Any]]) -> int:
        """Run `statement` once per row; the rows it changed. On SQLite the statement's SQL goes to
        the driver with the rows as tuples, converted by its bind processors compiled once per
        engine (_Compiled): SQLAlchemy's own per-row parameter processing was about half of
        writing a batch (py-spy of a rebuild). Events (before_cursor_execute) still see it."""
        if not self.raw:
            return self.conn.execute(statement, rows).rowcount
        key = (statement, tuple(rows[0]))
        if (compiled := self.compiled.get(key)) is None:
            compiled = self.compiled[key] = _Compiled(self.conn.dialect, statement, key[1])
        if not compiled.direct:
            return self.conn.execute(statement, rows).rowcount
        return self.conn.exec_driver_sql(compiled.sql, compiled.tuples(rows)).rowcount

    def _write(self, states: Iterable[_State]) -> None:
        new: dict[Table, list[dict[str, Any]]] = {}
        changed: dict[tuple[Table, tuple[str, ...], tuple[str, ...]], list[dict[str, Any]]] = {}
        for state in states:
            columns = state.differences()
            if columns is None:
                new.setdefault(state.TABLE, []).append(state.row())
            elif columns:
                params = state.row(columns)
                params.update({f"k_{k}": getattr(state, k) for k in state.KEY})
                changed.setdefault((state.TABLE, state.KEY, columns), []).append(params)
            else:
                continue
            # As stored from now on (an event still under way keeps its record in _before).
            state.__dict__.update(_loaded=state._values(state), _touched=bool(state._before))
        for table, rows in new.items():
            self._executemany(_statement(f"insert {table.name}"), rows)
        for (table, key, _columns), rows in changed.items():
            count = self._executemany(_update(table, key, _columns), rows)
            if self.conn.dialect.supports_sane_multi_rowcount and count != len(rows):
                # A row read at the start of the batch is gone (the job was erased meanwhile): as
                # the ORM did, fail the batch; applied again, its events find the job erased.
                raise StaleDataError(f"{table.name}: {len(rows)} rows to update, {count} found")
