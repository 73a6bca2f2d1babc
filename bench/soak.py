"""A bounded soak of the running platform: a steady rate of imports through the edge while every
process's resident memory, open file descriptors and the disk use under var/ are sampled once a
minute; prints a table and flags growth.

    python -m bench.soak --minutes 30 --rate 2      (the platform must be up: platform.sh up)

Not part of `make test`; `make bench` runs a short one (SOAK_MINUTES, default 2).

What counts as growth (flagged in the last column), measured after the first sample (warm-up):
- memory: the last sample is more than 10 % and more than 8 MiB above the warm-up sample, and
  the least-squares slope over the samples is positive;
- open fds: the last sample is more than 8 above the warm-up sample;
- disk: anything under var/ other than Kafka's data and the databases (which grow with the jobs
  kept, bounded by retention) growing faster than 20 MiB/h, i.e. logs that are not capped.
"""

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from redis.asyncio import Redis

from bench.common import ROOT, machine
from shared.channels import JOB_OUTCOME, announced
from shared.testing.stack import EDGE, REDIS_URL, VAR

MIB = 1024 * 1024
DISK_PARTS = ("kafka", "log", "redis", "status", "notifier", "other")


def processes() -> dict[str, int]:
    """name -> pid of everything the platform started: services, nginx, both Redis, the broker(s)."""
    found: dict[str, int] = {}
    for pidfile in sorted((VAR / "run").glob("*.pid")):
        found[pidfile.stem] = int(pidfile.read_text().strip() or 0)
    for pidfile in sorted((VAR / "kafka").glob("**/kafka.pid")):
        found[f"kafka-{pidfile.parent.name}" if pidfile.parent != VAR / "kafka" else "kafka"] = int(
            pidfile.read_text().strip()
        )
    return {name: pid for name, pid in found.items() if pid and Path(f"/proc/{pid}").exists()}


def children(pid: int) -> list[int]:
    """A process's direct children (nginx's workers)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def disk_mib() -> dict[str, float]:
    """Bytes on disk under var/, by part (Kafka's data, logs, Redis, the databases, the rest)."""
    sizes = dict.fromkeys(DISK_PARTS, 0.0)
    for dirpath, _, files in os.walk(VAR):
        rel = Path(dirpath).relative_to(VAR).parts
        part = rel[0] if rel and rel[0] in sizes else "other"
        for name in files:
            try:
                stat = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if part == "other" and name.endswith((".db", ".db-wal", ".db-shm", ".sqlite")):
                key = "status" if "status" in name else "notifier" if "notifier" in name else "other"
            else:
                key = part
            sizes[key] += stat.st_blocks * 512 / MIB
    return sizes


@dataclass
class Samples:
    minutes: list[float] = field(default_factory=list)
    rss: dict[str, list[float]] = field(default_factory=dict)
    fds: dict[str, list[int]] = field(default_factory=dict)
    disk: dict[str, list[float]] = field(default_factory=dict)

    def take(self, minute: float) -> None:
        self.minutes.append(minute)
        for name, pid in processes().items():
            group = [pid, *children(pid)] if name == "nginx" else [pid]
            self.rss.setdefault(name, []).append(sum(rss_mib(p) for p in group))
            self.fds.setdefault(name, []).append(sum(open_fds(p) for p in group))
        for part, size in disk_mib().items():
            self.disk.setdefault(part, []).append(size)


def slope_per_hour(minutes: list[float], values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    xs, ys = minutes[-len(values) :], values
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return 60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def memory_grows(minutes: list[float], values: list[float]) -> bool:
    warm, last = values[min(1, len(values) - 1)], values[-1]
    return last > warm * 1.10 and last - warm > 8 and slope_per_hour(minutes[1:], values[1:]) > 0


class Load:
    """Imports at a steady rate through the edge; counts accepted, refused and routed jobs."""

    def __init__(self, rate: float, stops: int) -> None:
        self.rate, self.stops = rate, stops
        self.accepted: set[str] = set()
        self.routed: set[str] = set()
        self.refused: dict[int, int] = {}
        self.credentials: dict[str, str] = {}
        self.token = ""

    def tenant(self) -> None:
        org = f"soak-{uuid.uuid4().hex[:8]}"

        def cli(*args: str) -> dict:
            done = subprocess.run(
                [sys.executable, "-m", "routemate_cli.main", *args],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            return json.loads(done.stdout)

        created = cli("integration", "create", "--org", org, "--name", "soak")
        self.credentials = {"client_id": created["client_id"], "client_secret": created["client_secret"]}
        cli("driver", "add", "--org", org, "--email", "soak@example.com")

    async def refresh(self, http: httpx.AsyncClient) -> None:
        answer = await http.post("/v1/integration-token", json=self.credentials)
        answer.raise_for_status()
        self.token = answer.json()["access_token"]

    def job(self, n: int) -> dict:
        rng = random.Random(n)
        return {
            "external_job_id": f"SOAK-{uuid.uuid4().hex}",
            "title": "soak",
            "driver_email": "soak@example.com",
            "stops": [
                {
                    "external_stop_id": f"S{i}",
                    "address": f"{i} Soak St",
                    "parcel_count": 1,
                    "lat": -27.47 + rng.uniform(-0.13, 0.13),
                    "lng": 153.02 + rng.uniform(-0.15, 0.15),
                }
                for i in range(self.stops)
            ],
        }

    async def listen(self) -> None:
        redis = Redis.from_url(REDIS_URL)
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(JOB_OUTCOME)
        try:
            async for message in pubsub.listen():
                if (heard := announced(message["data"])) is not None:
                    self.routed.add(heard[0])
        finally:
            await pubsub.aclose()
            await redis.aclose()

    async def run(self, seconds: float) -> None:
        async with httpx.AsyncClient(base_url=EDGE, timeout=30) as http:
            await self.refresh(http)
            started, sent = time.monotonic(), 0
            while time.monotonic() - started < seconds:
                try:
                    answer = await http.post(
                        "/v1/integration-import",
                        json=self.job(sent),
                        headers={"Authorization": f"Bearer {self.token}", "Prefer": "respond-async"},
                    )
                    if answer.status_code == 401:
                        await self.refresh(http)
                    if answer.status_code in (201, 202):
                        self.accepted.add(answer.json()["job_id"])
                    else:
                        self.refused[answer.status_code] = self.refused.get(answer.status_code, 0) + 1
                except httpx.TransportError:
                    self.refused[0] = self.refused.get(0, 0) + 1
                sent += 1
                await asyncio.sleep(max(0.0, started + sent / self.rate - time.monotonic()))


async def soak(minutes: float, rate: float, stops: int, every: float) -> tuple[Samples, Load]:
    load, samples = Load(rate, stops), Samples()
    load.tenant()
    listener = asyncio.create_task(load.listen())
    samples.take(0.0)
    started = time.monotonic()
    driver = asyncio.create_task(load.run(minutes * 60))
    tick = 1
    while not driver.done():  # one sample a minute, and one as the load ends
        await asyncio.wait({driver}, timeout=max(0.0, started + tick * every - time.monotonic()))
        samples.take((time.monotonic() - started) / 60)
        tick += 1
    driver.result()
    deadline = time.monotonic() + 60
    while not load.accepted <= load.routed and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    listener.cancel()
    return samples, load


def report(samples: Samples, load: Load, minutes: float, rate: float) -> int:
    """Prints the tables; returns how many rows were flagged."""
    flagged = 0
    mins = samples.minutes
    print(f"# soak: {minutes:g} min at {rate:g} imports/s of {load.stops} stops through the edge; {machine()}")
    lost = len(load.accepted - load.routed)
    refused = ", ".join(f"{code or 'no answer'}: {n}" for code, n in sorted(load.refused.items())) or "none"
    routed = len(load.accepted & load.routed)
    print(f"# accepted {len(load.accepted)}, routed {routed}, not routed {lost}; refused {refused}")
    picks = sorted({0, *range(1, len(mins), max(1, len(mins) // 6)), len(mins) - 1})
    head = " | ".join(f"{mins[i]:.0f}m" if minutes >= 5 else f"{mins[i]:.1f}m" for i in picks)
    print(f"\n| process | RSS MiB at {head} | slope MiB/h | fds at {head} | growth |")
    print("|---|" + "---|" * (2 * len(picks) + 2))
    for name in sorted(samples.rss):
        rss, fds = samples.rss[name], samples.fds[name]
        if len(rss) != len(mins):  # started or ended during the soak
            print(f"| {name} | (present in {len(rss)} of {len(mins)} samples: restarted?) |")
            flagged += 1
            continue
        flags = []
        if memory_grows(mins, rss):
            flags.append("MEMORY")
        if fds[-1] - fds[min(1, len(fds) - 1)] > 8:
            flags.append("FDS")
        flagged += bool(flags)
        print(
            f"| {name} | "
            + " | ".join(f"{rss[i]:.0f}" for i in picks)
            + f" | {slope_per_hour(mins[1:], rss[1:]):+.1f} | "
            + " | ".join(str(fds[i]) for i in picks)
            + f" | {' '.join(flags) or 'flat'} |"
        )
    print(f"\n| var/ part | MiB at {head} | MiB/h | per 1,000 jobs MiB | growth |")
    print("|---|" + "---|" * (len(picks) + 3))
    jobs = max(1, len(load.accepted))
    for part in DISK_PARTS:
        sizes = samples.disk[part]
        rate_h = slope_per_hour(mins, sizes)
        bounded_by_retention = part in ("kafka", "status", "notifier", "redis")
        flag = "data (retention)" if bounded_by_retention else ("GROWS" if rate_h > 20 else "bounded")
        flagged += flag == "GROWS"
        print(
            f"| {part} | "
            + " | ".join(f"{sizes[i]:.1f}" for i in picks)
            + f" | {rate_h:+.1f} | {(sizes[-1] - sizes[0]) * 1000 / jobs:.2f} | {flag} |"
        )
    return flagged + (lost > 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=2.0, help="imports per second")
    parser.add_argument("--stops", type=int, default=20)
    parser.add_argument("--every", type=float, default=60, help="seconds between samples")
    args = parser.parse_args()
    samples, load = asyncio.run(soak(args.minutes, args.rate, args.stops, args.every))
    flagged = report(samples, load, args.minutes, args.rate)
    (VAR / "soak.json").write_text(json.dumps(samples.__dict__))
    sys.exit(1 if flagged else 0)


if __name__ == "__main__":
    main()
