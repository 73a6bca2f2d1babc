"""The status projection in-process: CPU per job of applying a burst's events to the read model.

N jobs of 20 stops each go through import, geocode and route, then every stop is reported
(completed), as the pipeline's events would arrive: each stage of every job in turn, and the
stop reports interleaved across jobs (stop 1 of every job, then stop 2, ...), so that a batch
holds events of many jobs. The events are applied in batches (the consumer's poll) to an empty
SQLite file, or to the PostgreSQL given with --database. Two scenarios: the pipeline alone (3
events per job, what a routing burst costs the status service) and the pipeline with every stop
reported (23 events per job); each in batches of 20 and of 1 (the live consumer takes what one
poll brings, often a single event: then the cost per transaction counts most).

Reference: the ORM projection before issue #20's rewrite (SQLModel rows, one flush per event),
measured side by side with this benchmark on this 2-core machine (x86_64, Python 3.11), 200 jobs
x 20 stops, SQLite, CPU ms per job: pipeline alone 14.6 in batches of 20 and 16.1 in batches of
1; with every stop reported 80.8 and 89.0 (batches of 200: 14.9 and 80.6). The issue's target is
at least 3x lower.
"""

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from services.status.adapters.projection import Projection
from shared.db import make_json_engine
from shared.events import DriverRegistered, Event
from shared.testing.builders import geocoded, import_requested, routed, stop, stop_changed
from shared.vocabulary import StopStatus

# CPU ms per job of the ORM projection, measured before the rewrite (see the docstring), per scenario.
REFERENCE_MS_PER_JOB = {
    ("pipeline", 20): 14.6,
    ("pipeline + reports", 20): 80.8,
    ("pipeline", 1): 16.1,
    ("pipeline + reports", 1): 89.0,
}
TARGET_RATIO = 3.0  # issue #20: at least 3x lower
ORG, DRIVER = "org_bench", "dana@example.com"


def burst(jobs: int, stops: int, reports: int | None = None) -> list[Event]:
    """Every event of `jobs` jobs of `stops` stops, in the order a burst delivers them, with the
    first `reports` stops (default: every one) of each job reported."""
    stages: list[list[Event]] = [[], [], []]
    reports = stops if reports is None else min(reports, stops)
    reported: list[list[Event]] = [[] for _ in range(reports)]
    for n in range(jobs):
        job_id = f"job_{n:05d}"
        ids = {"org_id": ORG, "job_id": job_id}
        requested = import_requested(
            *(stop(i, f"{i} Queen St", job_id=job_id) for i in range(stops)),
            **ids,
            external_job_id=f"EXT-{n}",
            driver_email=DRIVER,
        )
        geo = geocoded([(-27.4 - i / 1000, 153.0 + i / 1000) for i in range(stops)], **ids)
        route = routed(geo, list(range(stops)), external_job_id=f"EXT-{n}")
        for stage, event in zip(stages, (requested, geo, route), strict=True):
            stage.append(event)
        start = route.occurred_at
        for i in range(reports):
            reported[i].append(stop_changed(i, StopStatus.COMPLETED, start + timedelta(minutes=i + 1), **ids))
    return [e for stage in (*stages, *reported) for e in stage]


def run(database: str, jobs: int, stops: int, batch: int, reports: int | None = None) -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, events) of applying the burst to an empty read model."""
    projection = Projection(make_json_engine(database))  # as the status service makes its engine
    projection.apply(DriverRegistered(org_id=ORG, email=DRIVER, name="Dana"))
    events = burst(jobs, stops, reports)
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(0, len(events), batch):
        projection.apply_batch(events[i : i + batch])
    return time.process_time() - cpu, time.perf_counter() - wall, len(events)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--stops", type=int, default=20)
    parser.add_argument(
        "--batch", type=int, nargs="+", default=[20, 1], help="events per transaction (the consumer's poll)"
    )
    parser.add_argument("--database", help="a database URL (default: a fresh SQLite file per scenario)")
    args = parser.parse_args(argv)
    kind = (args.database or "sqlite").split(":", 1)[0]
    print(f"# status projection in-process: {args.jobs} jobs x {args.stops} stops, {kind}")
    print(f"{'':22}{'batch':>6}{'events/job':>11}{'CPU ms/job':>12}{'events/s':>10}{'ORM ms/job':>12}{'lower by':>10}")
    met = True
    for batch in args.batch:
        for name, reports in (("pipeline", 0), ("pipeline + reports", args.stops)):
            with tempfile.TemporaryDirectory() as tmp:
                database = args.database or f"sqlite:///{Path(tmp) / 'bench.db'}"
                cpu, wall, events = run(database, args.jobs, args.stops, batch, reports)
            per_job, reference = cpu * 1000 / args.jobs, REFERENCE_MS_PER_JOB.get((name, batch))
            row = f"{name:22}{batch:6}{events / args.jobs:11.0f}{per_job:12.2f}{events / wall:10.0f}"
            if reference is None:
                print(f"{row}{'-':>12}")
                continue
            ratio = reference / per_job if per_job else float("inf")
            met &= ratio >= TARGET_RATIO
            verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
            print(f"{row}{reference:12.1f}{ratio:9.1f}x  (target >= {TARGET_RATIO:g}x: {verdict})")
    if args.database or args.jobs != 200 or args.stops != 20:
        print("(the ORM reference was measured at 200 jobs x 20 stops, SQLite)")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
