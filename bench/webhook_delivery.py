"""Webhook delivery throughput and latency: 1,000 job changes to one local receiver.

The changes (250 jobs x routed, assigned, in_progress, completed) are published straight onto
routemate.jobs.changes (the status outbox's topic) with their source time, so the table measures
the notifier alone: Kafka consume -> durable delivery row -> lease -> signed POST. A notifier
process of its own (its own database and consumer group, private targets allowed) delivers them.
Reference, measured in the same run: the same 1,000 bodies POSTed to the same receiver by a bare
httpx loop with the same concurrency (4, the notifier's per-endpoint limit).
"""

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from datetime import datetime

import httpx

from bench.common import machine, percentile, start, tenant
from shared.broker import EventBus, make_broker
from shared.events import JobChanged, utcnow
from shared.settings import PlatformSettings
from shared.testing.receiver import Receiver
from shared.testing.stack import extra_port

CHANGES = ("job.routed", "job.assigned", "job.in_progress", "job.completed")


def source_time(body: bytes) -> float:
    stamp = json.loads(body)["timestamp"].replace("Z", "+00:00")
    return datetime.fromisoformat(stamp).timestamp()


async def through_notifier(jobs: int, concurrency: int) -> dict:
    port = extra_port("notifier") + 1
    receiver = await Receiver().start()
    with tempfile.TemporaryDirectory() as var_dir:
        proc = start(
            "services.notifier",
            port,
            NOTIFIER_PORT=str(port),
            VAR_DIR=var_dir,
            NOTIFIER_GROUP=f"bench-webhooks-{uuid.uuid4().hex[:8]}",
            WEBHOOK_ALLOW_PRIVATE_TARGETS="true",
            WEBHOOK_ENDPOINT_CONCURRENCY=str(concurrency),
            LOG_LEVEL="WARNING",
        )
        try:
            token, _ = tenant()
            org = await _org(port, token, receiver.url)
            broker = make_broker(PlatformSettings(), "bench")
            await broker.start()
            bus = EventBus(broker, "bench")
            started = time.time()

            async def one_job(i: int) -> None:
                job_id = f"job_bench_{uuid.uuid4().hex[:12]}"
                for n, change_type in enumerate(CHANGES, start=1):
                    event = JobChanged(
                        org_id=org,
                        job_id=job_id,
                        change_type=change_type,
                        version=n,
                        data={
                            "job_id": job_id,
                            "status": change_type.split(".")[1],
                            "updated_at": utcnow().isoformat(),
                        },
                    )
                    await bus.publish(event)

            await asyncio.gather(*(one_job(i) for i in range(jobs)))
            published = time.time() - started
            total = jobs * len(CHANGES)
            deadline = time.time() + 300
            while len({r.headers["webhook-id"] for r in receiver.received}) < total and time.time() < deadline:
                await asyncio.sleep(0.2)
            await broker.stop()
        finally:
            proc.terminate()
            proc.wait(15)
    await receiver.stop()
    got = receiver.received
    latencies = [r.at - source_time(r.body) for r in got]
    first, last = min(r.at for r in got) - started, max(r.at for r in got) - started
    print(f"(published in {published:.1f} s; first receipt after {first:.1f} s, last after {last:.1f} s)")
    return {
        "delivered": len({r.headers["webhook-id"] for r in got}),
        "rate": len(got) / max(1e-9, max(r.at for r in got) - started),
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
    }


async def _org(port: int, token: str, url: str) -> str:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        created = await http.post(
            "/v1/integration-webhooks",
            json={"url": url, "events": list(CHANGES)},
            headers={"Authorization": f"Bearer {token}"},
        )
        created.raise_for_status()
    from redis import Redis

    from shared.testing.stack import REDIS_URL
    from shared.tokens import token_digest, token_key  # the token's organization, as the services read it

    owner = Redis.from_url(REDIS_URL).hgetall(token_key(token_digest(token)))
    return owner[b"org_id"].decode()


async def bare_loop(total: int, concurrency: int) -> dict:
    receiver = await Receiver().start()
    body = json.dumps({"type": "job.routed", "timestamp": "", "data": {"job_id": "x"}}).encode()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)
    latencies: list[float] = []

    async def worker() -> None:
        async with httpx.AsyncClient() as http:
            while not queue.empty():
                queue.get_nowait()
                sent = time.perf_counter()
                await http.post(receiver.url, content=body, headers={"content-type": "application/json"})
                latencies.append(time.perf_counter() - sent)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await receiver.stop()
    return {
        "delivered": len(receiver.received),
        "rate": total / elapsed,
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
    }


async def main_async(jobs: int, concurrency: int) -> None:
    ours = await through_notifier(jobs, concurrency)
    bare = await bare_loop(jobs * len(CHANGES), concurrency)
    print(f"Webhook delivery: {jobs * len(CHANGES)} job changes to one local receiver ({machine()})")
    print(f"{'path':<44}{'delivered':>10}{'per s':>9}{'p50 ms':>9}{'p95 ms':>9}")
    for name, row in (("notifier (Kafka -> DB -> signed POST)", ours), ("bare httpx loop, same receiver", bare)):
        print(f"{name:<44}{row['delivered']:>10}{row['rate']:>9.0f}{row['p50'] * 1000:>9.0f}{row['p95'] * 1000:>9.0f}")
    ratio = ours["rate"] / bare["rate"]
    print(f"ratio notifier / bare: {ratio:.2f} (latency: source event -> receipt; bare: POST -> answer)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=250, help="jobs, 4 changes each")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(main_async(args.jobs, args.concurrency))


if __name__ == "__main__":
    main()
