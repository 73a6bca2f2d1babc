"""CPU seconds of the platform's own processes, read from /proc, to charge a burst per job.

Each process's utime+stime (all its threads) plus those of its live child processes (nginx's
workers) plus cutime+cstime (children that ended). The pids come from the pid files the local
platform keeps: var/run/<name>.pid for the services, Redis and nginx, var/kafka*/**/kafka*.pid
for the broker(s).
"""

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SERVICES = ("auth", "ingest", "geocoder", "optimizer", "status", "notifier")
STORES = ("redis", "redis-cache", "nginx")
TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    return _fields(Path(f"/proc/{pid}/stat").read_text())


def _fields(raw: str) -> list[str]:
    """A stat line's fields after the command name (which may hold spaces and parentheses)."""
    return raw[raw.rindex(")") + 2 :].split()


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def cpu_seconds(pid: int) -> float:
    """utime+stime+cutime+cstime of `pid` and, recursively, of its live children."""
    try:
        fields = _stat(pid)
        own = sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICK  # utime stime cutime cstime
        return own + sum(cpu_seconds(child) for child in _children(pid))
    except (OSError, ValueError):
        return 0.0


def platform_pids(root: Path) -> dict[str, int]:
    """name -> pid of every platform process that has a live pid file."""
    found: dict[str, int] = {}
    for name in SERVICES + STORES:
        pidfile = root / "var/run" / f"{name}.pid"
        if pidfile.exists():
            found[name] = int(pidfile.read_text().split()[0])
    kafka = sorted(p for p in (root / "var").glob("kafka*/**/kafka*.pid"))
    for i, pidfile in enumerate(kafka):
        found["kafka" if len(kafka) == 1 else f"kafka-{i + 1}"] = int(pidfile.read_text().split()[0])
    return {name: pid for name, pid in found.items() if Path(f"/proc/{pid}").exists()}


JIT_THREADS = ("C1 CompilerThre", "C2 CompilerThre")  # HotSpot's JIT compiler threads (names cut to 15)


def jit_seconds(pids: dict[str, int]) -> float:
    """CPU seconds the broker JVMs' JIT compiler threads spent so far: a broker just started spends
    its first thousands of jobs compiling, a cost it pays once, which a steady state no longer has."""
    total = 0
    for name, pid in pids.items():
        if not name.startswith("kafka"):
            continue
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                raw = (task / "stat").read_text()
            except OSError:
                continue  # the thread ended
            if raw[raw.index("(") + 1 : raw.rindex(")")].startswith(JIT_THREADS):
                fields = _fields(raw)
                total += int(fields[11]) + int(fields[12])
    return total / TICK


def machine_busy_seconds() -> tuple[float, float]:
    """The whole machine's busy and steal CPU seconds so far, over every core (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq) / TICK, steal / TICK


@dataclass
class Sample:
    at: float
    cpu: dict[str, float]
    busy: float = 0.0  # the machine's, every process
    steal: float = 0.0  # the hypervisor's: time this machine's cores were not given


def sample(pids: dict[str, int]) -> Sample:
    busy, steal = machine_busy_seconds()
    return Sample(time.perf_counter(), {name: cpu_seconds(pid) for name, pid in pids.items()}, busy, steal)


def others_line(before: Sample, after: Sample, generator_s: float) -> str:
    """What else used the cores during the burst: work outside the platform and the load generator
    slows a burst (its rates) without being in the CPU table; a run with much of it is noise."""
    wall = after.at - before.at
    platform = sum(after.cpu[n] - before.cpu[n] for n in before.cpu if n in after.cpu)
    busy = after.busy - before.busy
    others = max(0.0, busy - platform - generator_s)
    return (
        f"# the cores over the burst ({wall:.1f} s): busy {busy / wall:.2f} cores, of which the platform "
        f"{platform / wall:.2f}, the load generator {generator_s / wall:.2f}, anything else {others / wall:.2f}; "
        f"stolen by the hypervisor {(after.steal - before.steal) / wall:.2f}"
    )


def idle_rate(pids: dict[str, int], seconds: float = 5.0) -> dict[str, float]:
    """CPU seconds per second each process spends with no jobs (polls, heartbeats, lag monitor)."""
    before = sample(pids)
    time.sleep(seconds)
    after = sample(pids)
    wall = after.at - before.at
    return {name: (after.cpu[name] - before.cpu[name]) / wall for name in before.cpu if name in after.cpu}


def per_job(before: Sample, after: Sample, jobs: int) -> dict[str, float]:
    """CPU milliseconds per job of each process between two samples."""
    return {name: (after.cpu[name] - before.cpu[name]) * 1000 / jobs for name in before.cpu if name in after.cpu}


def table(
    costs: dict[str, float], in_process_ms: float, wall_s: float, jobs: int, idle: dict[str, float] | None = None
) -> str:
    """The CPU-per-job table, most expensive first, next to the in-process geocode+solve cost.
    `idle` (CPU s/s with no jobs): the share of each cost the process would have spent anyway
    over the burst's wall time, shown apart, since on a loaded machine a slower burst costs more idle."""
    idle = idle or {}
    background = {name: idle.get(name, 0.0) * wall_s * 1000 / jobs for name in costs}
    total, total_idle = sum(costs.values()), sum(background.values())
    lines = [
        f"# CPU per job over the burst ({jobs} jobs, {wall_s:.1f} s wall; /proc utime+stime, children included)",
        "| process | CPU ms/job | of which idle-rate ms/job | share of platform | × in-process |",
        "|---|---|---|---|---|",
    ]
    for name, ms in sorted(costs.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {name} | {ms:.1f} | {background[name]:.1f} | {ms / total:.0%} | {ms / in_process_ms:.2f} |")
    lines.append(f"| **platform total** | **{total:.1f}** | {total_idle:.1f} | 100% | {total / in_process_ms:.2f} |")
    lines.append(f"| in-process geocode + solve (reference) | {in_process_ms:.1f} | | | 1.00 |")
    return "\n".join(lines)


REQUESTS = ("Fetch", "OffsetCommit", "Produce")
_JMX_READER = Path(__file__).with_name("KafkaRequests.java")


def kafka_requests(pids: dict[str, int]) -> dict[str, int]:
    """Requests the broker(s) served so far, by type (Kafka's RequestsPerSec counts, through JMX:
    bench/KafkaRequests.java attaches to each broker JVM). Empty if the JDK cannot attach."""
    totals: dict[str, int] = {}
    for name, pid in pids.items():
        if not name.startswith("kafka"):
            continue
        try:
            done = subprocess.run(
                ["java", str(_JMX_READER), str(pid)], capture_output=True, text=True, timeout=60, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return {}
        for line in done.stdout.splitlines():
            request, count = line.split()
            totals[request] = totals.get(request, 0) + int(count)
    return totals


def requests_table(before: dict[str, int], after: dict[str, int], jobs: int) -> str:
    """Kafka requests per job between two readings of `kafka_requests`."""
    if not before or not after:
        return "# Kafka requests per job: not measured (no JDK attach to the broker)"
    rows = [f"| {r} | {(after.get(r, 0) - before.get(r, 0)) / jobs:.2f} |" for r in REQUESTS]
    total = sum(after.get(r, 0) - before.get(r, 0) for r in REQUESTS) / jobs
    return "\n".join(
        [f"# Kafka requests per job over the burst ({jobs} jobs; broker JMX)", "| request | per job |", "|---|---|"]
        + rows
        + [f"| **these three** | **{total:.2f}** |"]
    )
