"""The status projection in-process: CPU per job of applying a burst's events to the read model.

N jobs of 20 stops each go through import, geocode and route, then every stop is reported
(completed), as the pipeline's events would arrive: each stage of every job in turn, and the
stop reports interleaved across jobs (stop 1 of every job, then stop 2, ...). The events are
applied in batches (the consumer's poll) on a SQLite file, or on the PostgreSQL given with
--database. Prints CPU ms per job, events/s and the ratio to the reference below.

Reference (the ORM projection before issue #20's rewrite, SQLModel objects and one flush per
event), measured on this 2-core machine, 200 jobs x 20 stops, batches of 20, SQLite:
REFERENCE_MS_PER_JOB CPU per job (23 events per job).
"""

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from services.status.adapters.projection import Projection
from shared.db import make_engine
from shared.events import DriverRegistered, Event
from shared.testing.builders import geocoded, import_requested, routed, stop, stop_changed
from shared.vocabulary import StopStatus

REFERENCE_MS_PER_JOB = 31.0  # the ORM projection, measured before the rewrite (see the docstring)
TARGET_MS_PER_JOB = 8.0  # issue #20: at least 3x lower
ORG, DRIVER = "org_bench", "dana@example.com"


def burst(jobs: int, stops: int) -> list[Event]:
    """Every event of `jobs` jobs of `stops` stops, in the order a burst delivers them."""
    stages: list[list[Event]] = [[], [], []]
    reports: list[list[Event]] = [[] for _ in range(stops)]
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
        for i in range(stops):
            reports[i].append(stop_changed(i, StopStatus.COMPLETED, start + timedelta(minutes=i + 1), **ids))
    return [e for stage in (*stages, *reports) for e in stage]


def run(database: str, jobs: int, stops: int, batch: int) -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, events) of applying the burst to an empty read model."""
    projection = Projection(make_engine(database))
    projection.apply(DriverRegistered(org_id=ORG, email=DRIVER, name="Dana"))
    events = burst(jobs, stops)
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(0, len(events), batch):
        projection.apply_batch(events[i : i + batch])
    return time.process_time() - cpu, time.perf_counter() - wall, len(events)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--stops", type=int, default=20)
    parser.add_argument("--batch", type=int, default=20, help="events per transaction (the consumer's poll)")
    parser.add_argument("--database", help="a database URL (default: a fresh SQLite file)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        database = args.database or f"sqlite:///{Path(tmp) / 'bench.db'}"
        cpu, wall, events = run(database, args.jobs, args.stops, args.batch)
    per_job = cpu * 1000 / args.jobs
    kind = database.split(":", 1)[0]
    print(f"status projection in-process: {args.jobs} jobs x {args.stops} stops, batches of {args.batch}, {kind}")
    print(f"{'':24}{'CPU ms/job':>12}{'events/s':>12}{'vs ORM':>10}{'target':>12}")
    ratio = REFERENCE_MS_PER_JOB / per_job if per_job else float("inf")
    met = "met" if per_job <= TARGET_MS_PER_JOB else "NOT met"
    print(
        f"{'projection':24}{per_job:12.2f}{events / wall:12.0f}{ratio:9.1f}x{f'<= {TARGET_MS_PER_JOB:g} ms':>12} {met}"
    )
    print(f"{'ORM reference':24}{REFERENCE_MS_PER_JOB:12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
