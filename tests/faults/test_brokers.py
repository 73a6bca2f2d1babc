"""Beyond one broker: a three-node KRaft cluster (deploy/kafka/kafka.sh KAFKA_BROKERS=3) with the
pipeline's services of its own, on extra ports beside the platform. Brokers are killed with
kill -9: one in the middle of a burst, another while jobs are in flight at every stage, then the
controller leader. Every accepted job is routed exactly once (the read model and the optimized
topic read back agree), and a killed broker rejoins the in-sync replicas."""

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.events import ALL_TOPICS, JOBS_OPTIMIZED, RouteOptimized, decode_event
from shared.lag import LagMonitor
from shared.lanes import bulk_group
from shared.settings import PlatformSettings
from shared.testing.processes import start_service, stop_service
from shared.testing.stack import EXTRA_PORT_BASE
from shared.testing.waiting import async_wait_until, wait_until
from shared.topics import ensure_topics
from tests.conftest import ROOT

# Node N's client port is KAFKA_PORT (+2, +3 for nodes 2 and 3), as kafka.sh derives them.
KAFKA_PORT = EXTRA_PORT_BASE + 110
NODE_PORTS = {1: KAFKA_PORT, 2: KAFKA_PORT + 2, 3: KAFKA_PORT + 3}
REDIS_PORT = EXTRA_PORT_BASE + 120
PORTS = {"auth": EXTRA_PORT_BASE + 131, "status": EXTRA_PORT_BASE + 133, "geocoder": EXTRA_PORT_BASE + 134}
PORTS |= {"optimizer": EXTRA_PORT_BASE + 135, "ingest": EXTRA_PORT_BASE + 132}
ADMIN_PORT = EXTRA_PORT_BASE + 141
BOOTSTRAP = ",".join(f"127.0.0.1:{port}" for port in NODE_PORTS.values())
LOG_CAP_BYTES = 32 * 1024
# Each stage's consumer groups: the geocoder and the optimizer take the bulk lane in a group of its
# own. An organization's jobs beyond its fair share (2 by default) travel that lane, so most of a
# burst's jobs wait there; watching the normal lane alone saw the optimizer busy only when one of
# the burst's two normal-lane jobs was caught in the 0.1 s sampling (it failed about one run in three).
STAGE_GROUPS = {
    "geocoder": ("routemate-geocoder", bulk_group("routemate-geocoder")),
    "optimizer": ("routemate-optimizer", bulk_group("routemate-optimizer")),
    "status": ("routemate-status",),
}


@dataclass
class Cluster:
    state: Path
    env: dict[str, str]
    settings: PlatformSettings = field(
        default_factory=lambda: PlatformSettings(
            kafka_bootstrap_servers=BOOTSTRAP, topic_replication=3, topic_min_insync_replicas=2
        )
    )

    def kafka(self, *args: str, timeout: float = 270) -> str:
        done = subprocess.run(
            ["bash", str(ROOT / "deploy/kafka/kafka.sh"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def kill(self, node: int) -> None:
        self.kafka("kill-node", str(node))

    def restart(self, node: int) -> None:
        self.kafka("start-node", str(node))

    def controller_leader(self) -> int:
        """The active controller, from the nodes' own quorum-state files (the newest epoch wins)."""
        states = []
        for node in NODE_PORTS:
            path = self.state / f"node-{node}/data/__cluster_metadata-0/quorum-state"
            if path.exists():
                state = json.loads(path.read_text())
                states.append((state.get("leaderEpoch", -1), state.get("leaderId", -1)))
        return max(states, default=(-1, -1))[1]  # -1 while an election is going on


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    state = tmp_path_factory.mktemp("kafka3")
    env = {
        **os.environ,
        "KAFKA_BROKERS": "3",
        "KAFKA_STATE_DIR": str(state),
        "KAFKA_PORT": str(KAFKA_PORT),
        "KAFKA_CONTROLLER_PORT": str(KAFKA_PORT + 1),
        "KAFKA_LOG": str(state / "kafka.log"),
        # C1 only: a much cheaper start, plenty for a test. Kafka's own log rotates at 32 KB here
        # (20 MB by default), so the failovers' warnings show the rotation working.
        "KAFKA_JVM_OPTS": f"-XX:TieredStopAtLevel=1 -Dkafka.log.max.size={LOG_CAP_BYTES}B",
        "KAFKA_START_SECONDS": "240",  # three JVMs starting at once on a loaded 2-core machine
    }
    cluster = Cluster(state, env)
    assert cluster.kafka("bootstrap").strip() == BOOTSTRAP  # the script and this test agree on ports
    try:
        cluster.kafka("start", timeout=300)
        asyncio.run(ensure_topics(cluster.settings))
        yield cluster
    finally:  # a throwaway cluster: killed, not shut down node by node
        for node in NODE_PORTS:
            cluster.kill(node)


@pytest.fixture(scope="module")
def pipeline(cluster: Cluster, tmp_path_factory) -> Iterator[dict[str, str]]:
    """Redis and auth, ingest, geocoder, optimizer and status on the cluster; yields their URLs."""
    var = tmp_path_factory.mktemp("pipeline-var")
    (var / "log").mkdir()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--save", "", "--dir", str(var)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
        "TOPIC_REPLICATION": "3",
        "TOPIC_MIN_INSYNC_REPLICAS": "2",
        "REDIS_URL": f"redis://127.0.0.1:{REDIS_PORT}/0",
        "CACHE_REDIS_URL": f"redis://127.0.0.1:{REDIS_PORT}/1",
        "VAR_DIR": str(var),
        "DATABASE_URL": "",  # each service its own SQLite file under VAR_DIR
        "AUTH_ADMIN_PORT": str(ADMIN_PORT),
        **{f"{name.upper()}_PORT": str(port) for name, port in PORTS.items()},
    }

    def start(name: str):
        log = var / f"log/{name}.out"
        return start_service(
            f"services.{name}", PORTS[name], log=log, seconds=90, LOG_FILE=str(var / f"log/{name}.log"), **env
        )

    with ThreadPoolExecutor(len(PORTS)) as pool:
        futures = [pool.submit(start, name) for name in PORTS]
    started = [f.result() for f in futures if f.exception() is None]
    try:
        for f in futures:
            f.result()  # raises the first service that never became healthy (the rest are stopped below)
        yield {name: f"http://127.0.0.1:{port}" for name, port in PORTS.items()} | {
            "admin": f"http://127.0.0.1:{ADMIN_PORT}"
        }
    finally:
        with ThreadPoolExecutor(len(PORTS)) as pool:
            list(pool.map(stop_service, started))
        redis.terminate()
        redis.wait(10)


class Client:
    """One organization on the test pipeline: imports (retried while the cluster fails over, as
    any client retries a 503) and the read model."""

    def __init__(self, urls: dict[str, str]) -> None:
        self.urls = urls
        env = {**os.environ, "AUTH_URL": urls["auth"], "ADMIN_URL": urls["admin"]}
        org = f"brokers-{uuid.uuid4().hex[:8]}"

        def cli(*args: str) -> dict:
            done = subprocess.run(
                [sys.executable, "-m", "routemate_cli.main", *args],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stderr
            return json.loads(done.stdout)

        self.creds = cli("integration", "create", "--org", org, "--name", "brokers")
        cli("driver", "add", "--org", org, "--email", "kafka3@example.com")
        answer = httpx.post(
            f"{urls['auth']}/v1/integration-token",
            json={k: self.creds[k] for k in ("client_id", "client_secret")},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        self.auth = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        self.accepted: dict[str, str] = {}  # external_job_id -> job_id
        self.refusals: dict[int, int] = {}
        self.seq = 0
        self.stops: dict[str, int] = {}  # external_job_id -> stops sent

    def body(self, stops: int) -> dict:
        self.seq += 1
        return {
            "external_job_id": f"K3-{self.seq}-{uuid.uuid4().hex[:8]}",
            "title": f"replicated {self.seq}",
            "driver_email": "kafka3@example.com",
            "stops": [
                {
                    "external_stop_id": f"S{i}",
                    "address": f"{i} Replica St",
                    "lat": -27.47 + 0.011 * ((self.seq * 7 + i * 13) % 23 - 11),
                    "lng": 153.02 + 0.013 * ((self.seq * 5 + i * 11) % 19 - 9),
                }
                for i in range(stops)
            ],
        }

    async def post(self, http: httpx.AsyncClient, body: dict, seconds: float = 120) -> None:
        """Until accepted: a 503 (the cluster failing over) or a dropped connection is retried."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                answer = await http.post(
                    f"{self.urls['ingest']}/v1/integration-import",
                    json=body,
                    headers={**self.auth, "Prefer": "respond-async"},
                )
                if answer.status_code in (200, 201, 202):
                    self.accepted[body["external_job_id"]] = answer.json()["job_id"]
                    return
                assert answer.status_code == 503, answer.text  # the only refusal a failover may cause
                self.refusals[503] = self.refusals.get(503, 0) + 1
            except httpx.TransportError:
                self.refusals[0] = self.refusals.get(0, 0) + 1
            assert time.monotonic() < deadline, f"{body['external_job_id']} never accepted"
            await asyncio.sleep(0.5)

    async def burst(self, http: httpx.AsyncClient, jobs: int, clients: int = 4, stops: int = 20) -> None:
        queue = [self.body(stops) for _ in range(jobs)]
        self.stops |= {body["external_job_id"]: stops for body in queue}

        async def one_client() -> None:
            while queue:
                await self.post(http, queue.pop(0))

        await asyncio.gather(*(one_client() for _ in range(clients)))

    async def jobs(self, http: httpx.AsyncClient) -> list[dict]:
        """Every job of the organization in the read model (all pages)."""
        found, cursor = [], None
        while True:
            params = {"limit": 1000} | ({"cursor": cursor} if cursor else {})
            answer = await http.get(f"{self.urls['status']}/v1/integration-jobs", params=params, headers=self.auth)
            if answer.status_code == 429:
                await asyncio.sleep(float(answer.headers.get("Retry-After", "1")))
                continue
            assert answer.status_code == 200, answer.text
            page = answer.json()
            found += page["jobs"]
            cursor = page.get("next_cursor")
            if not cursor:
                return found

    async def all_routed(self, http: httpx.AsyncClient, seconds: float = 120) -> list[dict]:
        async def routed() -> list[dict] | None:
            jobs = await self.jobs(http)
            done = {j["job_id"] for j in jobs if j["status"] == "assigned"}
            return jobs if set(self.accepted.values()) <= done else None

        return await async_wait_until(routed, seconds, 1.0, "every accepted job routed in the read model")


async def replica_state(settings: PlatformSettings) -> dict[tuple[str, int], tuple[list[int], list[int]]]:
    """(topic, partition) -> (replicas, in-sync replicas), for our topics and consumer offsets."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, client_id="k3-isr")
    await admin.start()
    try:
        topics = await admin.describe_topics([*ALL_TOPICS, "__consumer_offsets"])
    finally:
        await admin.close()
    return {
        (t["topic"], p["partition"]): (sorted(p["replicas"]), sorted(p["isr"])) for t in topics for p in t["partitions"]
    }


async def back_in_sync(settings: PlatformSettings, node: int, seconds: float = 90) -> None:
    async def in_sync() -> bool:
        try:
            state = await replica_state(settings)
        except Exception:  # noqa: BLE001 - the metadata may be moving; ask again
            return False
        return bool(state) and all(node in isr for _, isr in state.values())

    await async_wait_until(in_sync, seconds, 1.0, f"node {node} back in the ISR of every partition")


async def killed_and_back(cluster: Cluster, node: int, burst: asyncio.Task) -> None:
    """kill -9 the node while `burst` runs; start it again once the cluster has dropped it from an
    ISR (so its partitions really failed over); the burst completes; the node rejoins every ISR."""
    await asyncio.to_thread(cluster.kill, node)

    async def dropped() -> bool:
        try:
            return any(node not in isr for _, isr in (await replica_state(cluster.settings)).values())
        except Exception:  # noqa: BLE001 - the metadata may be moving; ask again
            return False

    await async_wait_until(dropped, 60, 0.5, f"node {node} dropped from the ISR")
    back = asyncio.create_task(asyncio.to_thread(cluster.restart, node))
    await burst
    await back
    await back_in_sync(cluster.settings, node)


class StageWatch:
    """Uncommitted messages per stage (geocoder, optimizer, status; both lanes), sampled together;
    remembers when each stage last had work waiting."""

    def __init__(self, settings: PlatformSettings) -> None:
        groups = [group for lanes in STAGE_GROUPS.values() for group in lanes]
        self.monitors = {group: LagMonitor(settings, group) for group in groups}
        self.seen: dict[str, tuple[float, int]] = {}

    async def _sample(self, stage: str) -> None:
        lag = 0
        for group in STAGE_GROUPS[stage]:
            try:
                lag += sum((await self.monitors[group].measure()).values())
            except Exception:  # noqa: BLE001 - a broker going away; no sample this time
                await self.monitors[group].close()
        if lag > 0:
            self.seen[stage] = (time.monotonic(), lag)

    async def all_busy(self, within: float = 5.0) -> dict[str, int] | None:
        """{stage: lag} once every stage has had work waiting within the last `within` seconds."""
        await asyncio.gather(*(self._sample(stage) for stage in STAGE_GROUPS))
        now = time.monotonic()
        recent = {stage: lag for stage, (at, lag) in self.seen.items() if now - at <= within}
        return recent if len(recent) == len(STAGE_GROUPS) else None

    async def close(self) -> None:
        for monitor in self.monitors.values():
            await monitor.close()


async def routes_in_topic(settings: PlatformSettings) -> dict[str, set[str]]:
    """job_id -> the distinct RouteOptimized event ids in the optimized topic, read from the start."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    routes: dict[str, set[str]] = {}
    try:
        parts = [TopicPartition(JOBS_OPTIMIZED, p) for p in range(settings.topic_partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        while any(position < ends[tp] for tp, position in [(tp, await consumer.position(tp)) for tp in parts]):
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                for record in records:
                    event = decode_event(record.value)
                    if isinstance(event, RouteOptimized):
                        routes.setdefault(event.job_id, set()).add(str(event.event_id))
    finally:
        await consumer.stop()
    return routes


async def test_losing_brokers_loses_and_doubles_no_job(cluster: Cluster, pipeline: dict[str, str]):
    settings = cluster.settings
    state = await replica_state(settings)
    assert all(len(replicas) == 3 and len(isr) == 3 for replicas, isr in state.values()), state
    client = await asyncio.to_thread(Client, pipeline)
    leader = cluster.controller_leader()
    first, second = [n for n in NODE_PORTS if n != leader]
    timings: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=30) as http:
        # 1. One broker killed in the middle of a burst. Once the cluster has dropped it from the
        #    ISR (its partitions failed over), it is started again, and must rejoin every ISR.
        began = time.monotonic()
        burst = asyncio.create_task(client.burst(http, 30))
        await async_wait_until(lambda: _at_least(client, 8, burst), 60, 0.05, "a third of the burst accepted")
        await killed_and_back(cluster, first, burst)
        timings["1 broker mid-burst"] = time.monotonic() - began

        # 2. Another killed while jobs wait at every stage (uncommitted geocoder, optimizer and
        #    status work at the same moment).
        began = time.monotonic()
        #    Jobs of 60 stops keep the optimizer busy long enough to be seen with work waiting.
        burst = asyncio.create_task(client.burst(http, 40, clients=8, stops=60))
        watch = StageWatch(settings)
        try:
            busy = await async_wait_until(watch.all_busy, 60, 0.1, "jobs in flight at every stage at once")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; stages last seen busy: {watch.seen}") from None
        finally:
            await watch.close()
        await killed_and_back(cluster, second, burst)
        timings["2 broker, every stage busy"] = time.monotonic() - began

        # 3. The controller leader killed the same way: a new leader is elected, the pipeline completes.
        began = time.monotonic()
        burst = asyncio.create_task(client.burst(http, 20))
        await async_wait_until(lambda: _at_least(client, 78, burst), 60, 0.05, "the third burst under way")
        await asyncio.to_thread(cluster.kill, leader)
        elected = lambda: (n := cluster.controller_leader()) in NODE_PORTS and n != leader and n  # noqa: E731
        new_leader = await asyncio.to_thread(wait_until, elected, 60, 0.2, "a new controller leader")
        back = asyncio.create_task(asyncio.to_thread(cluster.restart, leader))
        await burst
        jobs = await client.all_routed(http)
        await back
        await back_in_sync(settings, leader)
        timings["3 controller leader"] = time.monotonic() - began

        # Exactly once: one job per external id in the read model, one route per job in the log.
        assert len(client.accepted) == 90
        by_external = {}
        for job in jobs:
            by_external.setdefault(job["external_job_id"], []).append(job["job_id"])
        assert {ext: ids for ext, ids in by_external.items() if len(ids) > 1} == {}
        assert sorted(by_external) == sorted(client.accepted)
        assert all(by_external[ext] == [job_id] for ext, job_id in client.accepted.items())
        assert all(job["stop_count"] == client.stops[job["external_job_id"]] for job in jobs)
    logs_rotated(cluster.state)
    routes = await routes_in_topic(settings)
    assert set(routes) == set(client.accepted.values())
    assert {job: ids for job, ids in routes.items() if len(ids) != 1} == {}
    print(
        f"\nbusy stages at the second kill: {busy}; refusals while failing over: {client.refusals}; "
        f"controller leader {leader} -> {new_leader}; seconds per phase: "
        + ", ".join(f"{name} {seconds:.0f}" for name, seconds in timings.items())
    )


def logs_rotated(state: Path) -> None:
    """Kafka's log4j2 RollingFile: each node's log stays under its cap with at most 3 old files."""
    files = sorted(state.glob("kafka-*.log*"))
    assert any(f.name.endswith(".log.1") for f in files), [f.name for f in files]  # something rotated
    assert not [f.name for f in files if f.name.endswith(".log.4")]  # LOG_BACKUPS old files at most
    oversized = {f.name: f.stat().st_size for f in files if f.stat().st_size > LOG_CAP_BYTES + 16384}
    assert oversized == {}  # the cap, give or take the line that crossed it
    assert all(f.stat().st_size < 4096 for f in state.glob("kafka-*.out"))  # only the JVM's own output


async def _at_least(client: Client, n: int, burst: asyncio.Task) -> bool:
    return len(client.accepted) >= n or burst.done()  # a burst that failed raises when awaited
