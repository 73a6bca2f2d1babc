"""Burst of async imports: accepted imports/s and latency, against a bare FastAPI endpoint.

Both run as one uvicorn process on the same server stack, hit directly on loopback by the same
concurrent clients. The ingest process is a dedicated replica with the rate limit lifted; it
validates, checks the token in Redis, reserves the idempotency key and waits for Kafka's ack.
"""

import argparse
import asyncio
import time
import uuid

import httpx

from bench import cpu
from bench.common import example_job, machine, percentile, start, tenant
from shared.testing.stack import EXTRA_PORT_BASE, extra_port

TARGET = 0.8


async def burst(url: str, token: str, n: int, clients: int) -> tuple[float, list[float], int]:
    job = example_job(20)
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def client() -> None:
        nonlocal errors
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_connections=1)) as http:
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

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return n / (time.perf_counter() - started), latencies, errors


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()
    token, _ = tenant()
    rows = []
    bare, ingest = EXTRA_PORT_BASE + 96, extra_port("ingest")  # this platform's spare ports, not another's
    for name, module, port, env in (
        ("bare FastAPI (reference)", "bench.bare_app", bare, {"BARE_PORT": str(bare)}),
        (
            "ingest",
            "services.ingest",
            ingest,
            {
                "INGEST_PORT": str(ingest),
                "RATE_LIMIT_PER_SECOND": "1000000",
                "RATE_LIMIT_BURST": "1000000",
                "LOG_LEVEL": "WARNING",
            },
        ),
    ):
        proc = start(module, port, **env)
        try:
            asyncio.run(burst(f"http://127.0.0.1:{port}", token, 100, args.clients))  # warm up
            cpu_before = cpu.cpu_seconds(proc.pid)
            rate, lat, errors = asyncio.run(burst(f"http://127.0.0.1:{port}", token, args.requests, args.clients))
            cpu_ms = (cpu.cpu_seconds(proc.pid) - cpu_before) * 1000 / args.requests
        finally:
            proc.terminate()
            proc.wait(10)
        rows.append((name, rate, percentile(lat, 50) * 1000, percentile(lat, 99) * 1000, errors, cpu_ms))
    ref, ref_cpu = rows[0][1], rows[0][5]
    print(f"# burst of {args.requests} async imports (20 stops) from {args.clients} clients; {machine()}")
    print("| endpoint | accepted/s | p50 ms | p99 ms | non-202 | ratio to reference | CPU ms/request | CPU ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for name, rate, p50, p99, errors, cpu_ms in rows:
        print(
            f"| {name} | {rate:.0f} | {p50:.1f} | {p99:.1f} | {errors} | {rate / ref:.2f} | {cpu_ms:.2f} | "
            f"{ref_cpu / cpu_ms:.2f} |"
        )
    ratio = rows[1][1] / ref
    print(
        f"\n# target: ingest/bare = {ratio:.2f} (target >= {TARGET}: {'met' if ratio >= TARGET else 'MISSED'}); "
        f"by CPU per request (the same ratio on a core of its own) {ref_cpu / rows[1][5]:.2f}"
    )


if __name__ == "__main__":
    main()
