"""Snapshots of the read model: the rows, and the consumer offsets they reflect.

A rebuild restores the newest snapshot and replays the topics from its offsets, so it neither
needs the whole history nor takes as long as it. The personal columns are sealed in the file under
their job's data key (the driver directory under its organization's), as they are in the log: a
job erased after the snapshot was taken opens as nothing, and its rows are left out on restore.
The file is written beside the others and renamed into place, so a reader never sees half of one.
"""

import gzip
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Table, insert, select
from sqlalchemy.engine import Engine

from services.status.adapters.tables import (
    AppliedEventRow,
    DriverRow,
    ErasedJobRow,
    ErasedOrgRow,
    JobRow,
    OrgRetentionRow,
    StopRow,
)
from shared.pii import ERASED, open_text, org_subject, seal_json, seal_text
from shared.vocabulary import as_utc

FORMAT = 1
# table -> its personal columns, sealed in the file under the subject (job or organization) key.
PERSONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "status_jobs": ("title", "driver_email", "driver_name", "cancellation", "vehicles", "routes"),
    "status_stops": ("address", "label", "notes", "reason", "proof", "driver_email"),
    "status_drivers": ("email", "name"),
}
TABLES: list[Table] = [
    t.__table__  # type: ignore[attr-defined]
    for t in (
        JobRow,
        StopRow,
        DriverRow,
        ErasedJobRow,
        ErasedOrgRow,
        OrgRetentionRow,
        AppliedEventRow,
    )
]
Offsets = dict[tuple[str, int], int]  # (topic, partition) -> the next offset to read


@dataclass(frozen=True)
class Snapshot:
    path: Path
    taken_at: str
    offsets: Offsets
    rows: int


def subject(table: str, row: dict[str, Any]) -> str:
    """Whose key seals the row's personal columns."""
    return org_subject(row["org_id"]) if table == "status_drivers" else row["job_id"]


def _plain(value: Any) -> Any:
    return as_utc(value).isoformat() if isinstance(value, datetime) else value


def dump_rows(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of the snapshot's tables, in one read transaction."""
    with engine.connect() as connection, connection.begin():
        return {
            table.name: [{k: _plain(v) for k, v in row._mapping.items()} for row in connection.execute(select(table))]
            for table in TABLES
        }


def seal_rows(rows: dict[str, list[dict[str, Any]]], keys: dict[str, bytes | None]) -> None:
    """Seal the personal columns in place; a row whose key is gone (erased meanwhile) loses them."""
    for table, columns in PERSONAL_COLUMNS.items():
        for row in rows.get(table, []):
            who = subject(table, row)
            key = keys.get(who)
            for column in columns:
                value = row.get(column)
                if value is None:
                    continue
                if key is None:
                    row[column] = ERASED
                elif isinstance(value, dict | list):
                    row[column] = seal_json(key, who, value)
                else:
                    row[column] = seal_text(key, who, str(value))


def subjects(rows: dict[str, list[dict[str, Any]]]) -> set[str]:
    return {subject(table, row) for table in PERSONAL_COLUMNS for row in rows.get(table, [])}


def write(directory: Path, taken_at: datetime, offsets: Offsets, rows: dict[str, list[dict[str, Any]]]) -> Snapshot:
    """The snapshot file, renamed into place once complete."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = taken_at.strftime("%Y%m%dT%H%M%S%fZ")
    path = directory / f"status-{stamp}.json.gz"
    body = {
        "format": FORMAT,
        "taken_at": taken_at.isoformat(),
        "offsets": [[t, p, o] for (t, p), o in sorted(offsets.items())],
        "tables": rows,
    }
    partial = path.with_suffix(".partial")
    with gzip.open(partial, "wt", encoding="utf-8") as out:
        json.dump(body, out, separators=(",", ":"))
    os.replace(partial, path)
    return Snapshot(path, body["taken_at"], offsets, sum(len(r) for r in rows.values()))


def newest(directory: Path) -> Path | None:
    found = sorted(directory.glob("status-*.json.gz")) if directory.exists() else []
    return found[-1] if found else None


def prune(directory: Path, keep: int) -> None:
    for old in sorted(directory.glob("status-*.json.gz"))[:-keep]:
        old.unlink(missing_ok=True)


def read(path: Path) -> tuple[Offsets, dict[str, list[dict[str, Any]]]]:
    with gzip.open(path, "rt", encoding="utf-8") as source:
        body = json.load(source)
    if body.get("format") != FORMAT:
        raise ValueError(f"{path} is a snapshot of format {body.get('format')}, not {FORMAT}")
    return {(t, p): o for t, p, o in body["offsets"]}, body["tables"]


def open_rows(rows: dict[str, list[dict[str, Any]]], keys: dict[str, bytes | None]) -> None:
    """Open the personal columns in place; drop every row of a job (or driver) whose key is gone."""
    gone = {who for who in subjects(rows) if keys.get(who) is None}
    for table, columns in PERSONAL_COLUMNS.items():
        kept = []
        for row in rows.get(table, []):
            who = subject(table, row)
            if who in gone:
                continue  # erased after the snapshot was taken: nothing of it comes back
            for column in columns:
                if isinstance(row.get(column), str):
                    row[column] = open_text(keys[who], who, row[column])
            kept.append(row)
        rows[table] = kept


def restore(engine: Engine, rows: dict[str, list[dict[str, Any]]]) -> int:
    """Insert the rows into the empty read model (Core bulk inserts, one transaction)."""
    count = 0
    with engine.begin() as connection:
        for table in TABLES:
            batch = [_typed(table, row) for row in rows.get(table.name, [])]
            for start in range(0, len(batch), 1000):
                connection.execute(insert(table), batch[start : start + 1000])
            count += len(batch)
    return count


def _typed(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    """ISO strings back to datetimes for the datetime columns."""
    out = {}
    for column in table.columns:
        value = row.get(column.name)
        if isinstance(value, str) and _is_datetime(column):
            value = datetime.fromisoformat(value)
        out[column.name] = value
    return out


def _is_datetime(column: Any) -> bool:
    kind = getattr(column.type, "impl", column.type)  # UTCDateTime decorates DateTime
    return isinstance(kind, DateTime) or isinstance(column.type, DateTime)
