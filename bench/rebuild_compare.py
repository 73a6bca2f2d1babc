"""Every job of a rebuilt read model against the live one (issue 20): not a sample.

    python -m bench.rebuild_compare URL      # compare an already rebuilt database with the live one
    python -m bench.rebuild_compare --sqlite # rebuild into a fresh SQLite file first (the CLI), then compare

Prints how many jobs are the same, and for each one that is not, which fields differ (the public
view's fields, then the row's columns the view does not show). A job only one side has is a
difference too (a job the replay resurrected, or lost).
"""

import argparse
import json
import uuid
from collections import Counter
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from services.status.adapters.tables import DriverRow, ErasedJobRow, ErasedOrgRow, JobRow, StopRow
from services.status.settings import StatusSettings
from services.status.views import job_view
from shared.db import make_engine
from shared.vocabulary import as_utc

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def _plain(value: Any) -> Any:
    return as_utc(value).isoformat() if hasattr(value, "isoformat") else value


def read_model(engine: Engine, org_id: str | None = None) -> tuple[dict[str, tuple[Any, list[Any]]], dict[str, Any]]:
    """Every job (of `org_id`, or all) with its stops (rows, as the service reads them); and the other tables' keys."""
    from sqlmodel import Session

    with Session(engine) as s:
        query = select(JobRow) if org_id is None else select(JobRow).where(JobRow.org_id == org_id)
        jobs = {job.job_id: (job, []) for job in s.exec(query).scalars()}
        for stop in s.exec(select(StopRow)).scalars():
            if stop.job_id in jobs:
                jobs[stop.job_id][1].append(stop)
        other = {
            "drivers": {(d.org_id, d.email, d.name, d.active) for d in s.exec(select(DriverRow)).scalars()},
            "erased_jobs": {(e.job_id, e.org_id) for e in s.exec(select(ErasedJobRow)).scalars()},
            "erased_orgs": {(e.org_id,) for e in s.exec(select(ErasedOrgRow)).scalars()},
        }
        if org_id is not None:  # the organization's alone (the org id is each row's first or second field)
            other = {name: {r for r in rows if org_id in r[:2]} for name, rows in other.items()}
    return jobs, other


def differences(live: tuple[Any, list[Any]], rebuilt: tuple[Any, list[Any]]) -> list[str]:
    """The fields in which two jobs differ: view fields by path, then row columns (`row.<name>`)."""
    out: list[str] = []
    (lj, ls), (rj, rs) = live, rebuilt
    if lj.imported and rj.imported:
        a, b = json.loads(json.dumps(job_view(lj, ls))), json.loads(json.dumps(job_view(rj, rs)))
        out += _diff(a, b, "")
    for name in JobRow.model_fields:
        if name in ("updated_at",) and out:
            continue
        if _plain(getattr(lj, name)) != _plain(getattr(rj, name)):
            out.append(f"row.{name}")
    lstops = {s.external_stop_id: s for s in ls}
    rstops = {s.external_stop_id: s for s in rs}
    if set(lstops) != set(rstops):
        out.append("row.stops(set)")
    for key in set(lstops) & set(rstops):
        for name in StopRow.model_fields:
            if _plain(getattr(lstops[key], name)) != _plain(getattr(rstops[key], name)):
                out.append(f"stop.{name}")
    return sorted(set(out))


def _diff(a: Any, b: Any, path: str) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in set(a) | set(b) for d in _diff(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and path.endswith("stops"):
        return [d for x, y in zip(a, b, strict=True) for d in _diff(x, y, f"{path}[]")]
    return [] if a == b else [path or "."]


def compare(url: str, live_url: str | None = None, show: int = 10, org_id: str | None = None) -> dict[str, Any]:
    live_engine = make_engine(live_url or StatusSettings().status_database_url)
    engine = make_engine(url)
    try:
        live, live_other = read_model(live_engine, org_id)
        rebuilt, rebuilt_other = read_model(engine, org_id)
    finally:
        engine.dispose()
        live_engine.dispose()
    fields: Counter[str] = Counter()
    differ: dict[str, list[str]] = {}
    for job_id in set(live) & set(rebuilt):
        found = differences(live[job_id], rebuilt[job_id])
        if found:
            differ[job_id] = found
            fields.update(found)
    report = {
        "live_jobs": len(live),
        "rebuilt_jobs": len(rebuilt),
        "same": len(set(live) & set(rebuilt)) - len(differ),
        "different": len(differ),
        "only_live": sorted(set(live) - set(rebuilt)),
        "only_rebuilt": sorted(set(rebuilt) - set(live)),
        "fields": dict(fields.most_common()),
        "examples": {job_id: found for job_id, found in list(differ.items())[:show]},
    }
    for name in live_other:
        a, b = live_other[name], rebuilt_other[name]
        report[f"{name}_only_live"] = sorted(map(str, a - b))[:show]
        report[f"{name}_only_rebuilt"] = sorted(map(str, b - a))[:show]
    return report


def rebuild_sqlite() -> tuple[str, dict]:
    from bench.rebuild import (
        rebuild,  # the rate bench's run of the CLI (imported here: the e2e test needs compare only)
    )

    url = f"sqlite:///{ROOT / 'var' / f'rebuild-compare-{uuid.uuid4().hex[:8]}.db'}"
    return url, rebuild(url, timeout=1800)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", nargs="?")
    parser.add_argument("--sqlite", action="store_true", help="rebuild into a fresh SQLite file first")
    parser.add_argument("--show", type=int, default=10)
    args = parser.parse_args()
    url = args.url
    if args.sqlite:
        url, report = rebuild_sqlite()
        print(json.dumps({k: v for k, v in report.items() if k != "gaps"}, default=str))
    print(json.dumps(compare(url, show=args.show), indent=1, default=str))


if __name__ == "__main__":
    main()
