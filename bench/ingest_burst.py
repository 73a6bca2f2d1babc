"""Burst of async imports: accepted imports/s and CPU per request, against a bare FastAPI endpoint.

What makes the comparison fair:
- the same client (httpx, `--clients` connections with keep-alive, in this process) sends the same
  20-stop body to both, with the same headers;
- the same server: one process each, started the same way (shared.service.serve: uvicorn with
  httptools and uvloop from uvicorn[standard], no access log, the same LOG_LEVEL, the platform's
  default unless set), hit directly on loopback (in production the edge nginx is in front of both);
- the same machine conditions, as far as a shared machine allows: the two run in alternation,
  `--rounds` times;
- the ingest stage alone: the bare endpoint triggers nothing downstream, but every import does
  (geocoder, optimizer, status and notifier route it on the same cores). By default those four
  are paused (SIGSTOP) for all rounds, on both sides, and resumed (SIGCONT) afterwards; they then
  catch up from Kafka, nothing is lost. `--downstream running` measures with them working,
  waiting before each round for the previous round's jobs to settle, as earlier versions did;
- the ingest replica is a real one (token check, rate limit, idempotency, Kafka's ack); only its
  per-integration rate limit is lifted, or the burst would be refused by design.

It prints each round, the median ratio against the 0.8 target, CPU ms per request of each
process (the same ratio on a core of its own), the load generator's own CPU per request (it shares
the two cores: the bare endpoint's rate is mostly the generator's bound, see the README), and the
Redis round trips one import takes, alone and with others at once (counted in-process on the same
Redis).
"""

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import time
import uuid

import httpx
from redis import Redis

from bench import cpu
from bench.common import ROOT, example_job, machine, percentile, start, tenant
from shared.channels import inflight_key
from shared.testing.stack import EXTRA_PORT_BASE, REDIS_URL, extra_port
from shared.tokens import token_digest, token_key

TARGET = 0.8
DOWNSTREAM = ("geocoder", "optimizer", "status", "notifier")


@contextlib.contextmanager
def paused(pids: dict[str, int], names: tuple[str, ...] = DOWNSTREAM):
    """The named platform processes stopped (SIGSTOP) while the block runs, resumed (SIGCONT) after,
    whatever happens: their Kafka consumers pick up where they stopped."""
    stopped = [pids[name] for name in names if name in pids]
    try:
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)
        yield [name for name in names if name in pids]
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


async def burst(url: str, token: str, n: int, clients: int) -> tuple[float, list[float], int, float]:
    """`n` imports from `clients` keep-alive connections; (accepted/s, latencies, non-202s, the
    generator's CPU seconds). The clients are made and connected before the clock starts: making an
    httpx client costs about 30 ms of CPU (its TLS context), and 32 of them inside the burst once
    took half the generator's CPU and most of the bare endpoint's time."""
    job = example_job(20)
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal errors
        while not queue.empty():
            queue.get_nowait()
            body = dict(job, external_job_id=f"BENCH-{uuid.uuid4().hex}")
            started = time.perf_counter()
            answer = await http.post(
                "/v1/integration-import",
                json=body,
                headers={"Authorization": f"Bearer {token}", "Prefer": "respond-async"},
            )
            latencies.append(time.perf_counter() - started)
            errors += answer.status_code != 202

    async with contextlib.AsyncExitStack() as stack:
        limits = httpx.Limits(max_connections=1)
        made = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=30, limits=limits))
            for _ in range(clients)
        ]
        await asyncio.gather(*(http.get("/healthz") for http in made))  # each one's connection open
        started, cpu_started = time.perf_counter(), time.process_time()
        await asyncio.gather(*(client(http) for http in made))
        return n / (time.perf_counter() - started), latencies, errors, time.process_time() - cpu_started


def settle(org_id: str, seconds: float = 120, stalled: float = 15) -> tuple[float, int]:
    """Wait until the organization has no job in flight (the status service takes each off when it
    settles), for at most `seconds`, or until the count stopped falling for `stalled` seconds (a
    job whose settling status could not record stays counted until its TTL); returns (seconds
    waited, jobs still in flight)."""
    redis, started = Redis.from_url(REDIS_URL), time.monotonic()
    last, since = -1, started
    try:
        while (left := redis.zcard(inflight_key(org_id))) and time.monotonic() - started < seconds:
            if left != last:
                last, since = left, time.monotonic()
            elif time.monotonic() - since > stalled:
                break
            time.sleep(0.5)
    finally:
        redis.close()
    return time.monotonic() - started, left


AT_ONCE = 32  # imports sent together when counting round trips


def round_trips(token: str, imports: int = AT_ONCE) -> tuple[float, float]:
    """Redis round trips per async import, counted on the client's connections in-process: the
    ingest app on this platform's Redis and Kafka, its token already verified once; (one import at
    a time, `imports` at once: their commands then travel together, shared.redisbatch)."""
    from redis.asyncio.connection import AbstractConnection

    from services.ingest.app import create_app
    from services.ingest.settings import IngestSettings

    sent = [0]
    original = AbstractConnection.send_packed_command

    async def counted(self, *args, **kwargs):
        sent[0] += 1
        return await original(self, *args, **kwargs)

    async def run() -> float:
        app = create_app(IngestSettings(rate_limit_per_second=1e6, rate_limit_burst=1_000_000))
        job = example_job(20)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as http:

                async def one() -> None:
                    body = dict(job, external_job_id=f"BENCH-RT-{uuid.uuid4().hex}")
                    headers = {"Authorization": f"Bearer {token}", "Prefer": "respond-async"}
                    answer = await http.post("/v1/integration-import", json=body, headers=headers)
                    assert answer.status_code == 202, answer.text

                await one()
                sent[0] = 0
                for _ in range(imports):
                    await one()
                alone, sent[0] = sent[0] / imports, 0
                await asyncio.gather(*(one() for _ in range(imports)))
        return alone, sent[0] / imports

    AbstractConnection.send_packed_command = counted
    try:
        return asyncio.run(run())
    finally:
        AbstractConnection.send_packed_command = original


def measure(
    module: str, port: int, env: dict[str, str], token: str, args
) -> tuple[float, list[float], int, float, float]:
    proc = start(module, port, **env)
    try:
        url = f"http://127.0.0.1:{port}"
        asyncio.run(burst(url, token, 100, args.clients))  # warm up
        cpu_before = cpu.cpu_seconds(proc.pid)
        rate, latencies, errors, generator_s = asyncio.run(burst(url, token, args.requests, args.clients))
        cpu_ms = (cpu.cpu_seconds(proc.pid) - cpu_before) * 1000 / args.requests
        generator_ms = generator_s * 1000 / args.requests
    finally:
        proc.terminate()
        proc.wait(10)
    return rate, latencies, errors, cpu_ms, generator_ms


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--downstream",
        choices=("paused", "running"),
        default="paused",
        help="pause the pipeline behind ingest during the rounds (the ingest stage alone), or leave it running",
    )
    args = parser.parse_args()
    token, _ = tenant()
    org_id = Redis.from_url(REDIS_URL).hget(token_key(token_digest(token)), "org_id").decode()
    bare, ingest = EXTRA_PORT_BASE + 96, extra_port("ingest")  # this platform's spare ports, not another's
    sides = (
        ("bare FastAPI (reference)", "bench.bare_app", bare, {"BARE_PORT": str(bare)}),
        (
            "ingest",
            "services.ingest",
            ingest,
            {"INGEST_PORT": str(ingest), "RATE_LIMIT_PER_SECOND": "1000000", "RATE_LIMIT_BURST": "1000000"},
        ),
    )
    pids = cpu.platform_pids(ROOT)
    rows, ratios, cpu_ratios = [], [], []
    pausing = args.downstream == "paused"
    if pausing:
        settle(org_id)  # the platform idle first; then the rounds add nothing the pipeline routes meanwhile
    with paused(pids) if pausing else contextlib.nullcontext([]) as stopped:
        for n in range(args.rounds):
            rounds(n, sides, pids, org_id, token, args, pausing, rows, ratios, cpu_ratios)
    trips = round_trips(token)
    # Resumed consumers first rejoin their groups (their sessions expired while stopped), so the
    # count may stand still for a while before it falls.
    caught_up, left = settle(org_id, seconds=600, stalled=90 if pausing else 15)
    print(f"# burst of {args.requests} async imports (20 stops) from {args.clients} clients, {args.rounds} rounds")
    print(f"# {machine()}; load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    if pausing:
        print(
            f"# downstream paused (SIGSTOP) during the rounds: {', '.join(stopped) or 'none found'}; "
            f"the pipeline caught up afterwards in {caught_up:.0f} s ({left} jobs still in flight)"
        )
    else:
        print("# downstream running: each round waited for the previous one's jobs to settle first")
    print(
        "| round | endpoint | accepted/s | p50 ms | p99 ms | non-202 | CPU ms/request | generator CPU ms/request | "
        "other platform CPU s in the round | s waited for the pipeline first (jobs still in flight) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    ratio, cpu_ratio = statistics.median(ratios), statistics.median(cpu_ratios)
    print(
        f"\n# target: ingest/bare accepted/s = {ratio:.2f} (median of {', '.join(f'{r:.2f}' for r in ratios)}; "
        f"target >= {TARGET}: {'met' if ratio >= TARGET else 'MISSED'})"
    )
    print(
        f"# by CPU per request (the same ratio with a core each) = {cpu_ratio:.2f} "
        f"(target >= {TARGET}: {'met' if cpu_ratio >= TARGET else 'MISSED'})"
    )
    print(
        f"# Redis round trips per async import (token cached): {trips[0]:.1f} one at a time, "
        f"{trips[1]:.2f} with {AT_ONCE} at once (their commands travel together)"
    )


def rounds(n, sides, pids, org_id, token, args, pausing, rows, ratios, cpu_ratios) -> None:
    """Round `n`: each side's burst in turn; its rows and the round's ratios appended."""
    measured = []
    for name, module, port, env in sides:
        waited, left = (0.0, 0) if pausing else settle(org_id)
        before = cpu.sample(pids)
        rate, latencies, errors, cpu_ms, generator_ms = measure(module, port, env, token, args)
        after = cpu.sample(pids)
        used = {name: after.cpu[name] - before.cpu[name] for name in before.cpu if name in after.cpu}
        others = sum(used.values())
        kafka = sum(v for name, v in used.items() if name.startswith("kafka"))
        redis = sum(v for name, v in used.items() if name.startswith("redis"))
        measured.append((rate, cpu_ms))
        rows.append(
            f"| {n + 1} | {name} | {rate:.0f} | {percentile(latencies, 50) * 1000:.1f} | "
            f"{percentile(latencies, 99) * 1000:.1f} | {errors} | {cpu_ms:.2f} | {generator_ms:.2f} | "
            f"{others:.2f} ({kafka:.2f} Kafka, {redis:.2f} Redis) | {waited:.0f} ({left} left) |"
        )
    (bare_rate, bare_cpu), (ingest_rate, ingest_cpu) = measured
    ratios.append(ingest_rate / bare_rate)
    cpu_ratios.append(bare_cpu / ingest_cpu)


if __name__ == "__main__":
    main()
