"""Redis AUTH with one ACL user per service, and Kafka SASL/SCRAM, on real servers started here
(the local platform stays password-less on loopback; compose and Kubernetes use these)."""

import asyncio
import os
import secrets
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.errors import KafkaError
from faststream.kafka.annotations import KafkaMessage
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, NoPermissionError

from services.auth.adapters.lockout import Lockout
from services.auth.adapters.tokens import TokenStore
from services.geocoder.adapters.cache import GeocodeCache
from services.ingest.adapters import Lanes, Reservations
from shared.broker import make_broker
from shared.pii import DataKeys
from shared.ratelimit import RateLimiter
from shared.settings import PlatformSettings
from shared.testing.stack import EXTRA_PORT_BASE
from shared.testing.waiting import async_wait_until, wait_until
from shared.tokens import Principal, client_epoch_key, new_token, token_digest, token_key, verify_token
from tests.conftest import ROOT

KAFKA_PORT, KAFKA_CONTROLLER_PORT, REDIS_PORT = EXTRA_PORT_BASE + 70, EXTRA_PORT_BASE + 71, EXTRA_PORT_BASE + 72
SERVICES = ("auth", "ingest", "status", "geocoder", "notifier", "console")
KEY = b"transport-test-signing-key"


# ---- Redis: an ACL user per service ----


@pytest.fixture(scope="module")
def acl_redis(tmp_path_factory) -> Iterator[dict[str, str]]:
    """A redis-server with deploy/redis/users-acl.sh's ACL; yields each service's REDIS_URL."""
    where = tmp_path_factory.mktemp("redis-acl")
    passwords = {name: secrets.token_urlsafe(24) for name in SERVICES}
    env = {**os.environ, **{f"REDIS_{name.upper()}_PASSWORD": pw for name, pw in passwords.items()}}
    acl = subprocess.run(
        ["sh", str(ROOT / "deploy/redis/users-acl.sh")], env=env, capture_output=True, text=True, check=True
    )
    (where / "users.acl").write_text(acl.stdout)
    server = subprocess.Popen(
        ["redis-server", "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--save", "", "--dir", str(where)]
        + ["--aclfile", str(where / "users.acl")],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _answers(REDIS_PORT), 10, 0.05, "the ACL redis to answer")
        yield {name: f"redis://{name}:{pw}@127.0.0.1:{REDIS_PORT}/0" for name, pw in passwords.items()}
    finally:
        server.terminate()
        server.wait(10)


def _answers(port: int) -> bool:
    return subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True).returncode == 0


async def test_each_service_user_does_its_job_and_nothing_else(acl_redis):
    auth, ingest, status, geocoder, notifier, console = (Redis.from_url(acl_redis[name]) for name in SERVICES)
    try:
        token, owner = new_token(), Principal("org_acl", "rm_ci_acl")
        await TokenStore(auth, KEY).keep(token, owner, 60, await TokenStore(auth, KEY).epoch(owner.client_id))
        await Lockout(auth).count_failure("rm_ci_acl", "10.0.0.1", 60)
        for gateway in (ingest, status, notifier):  # each verifies tokens with its own user
            assert await verify_token(gateway, f"Bearer {token}", KEY) == owner
        assert (await RateLimiter(auth, 1.0, 5, "rm:rl:mint:").take("rm_ci_acl")).allowed
        assert await Lanes(ingest, 2, 60).admit("org_acl", "job_1") == "normal"
        assert (await RateLimiter(status, 1.0, 5, "rm:rl:read:").take("rm_ci_acl")).allowed
        async with status.pipeline(transaction=True) as pipe:  # the outcome, the head, the lane's count
            pipe.set("rm:jobhead:job_1", "{}", ex=60).zrem("rm:inflight:org_acl", "job_1")
            await pipe.execute()
        assert await Reservations(ingest, 60).reserve("rm:idem:org_acl:x", "job_1", "d") is None
        # updates by re-import: each attempt recorded, read, released; a reservation corrected (a script)
        updates = Reservations(ingest, 60)
        assert await updates.claim_update("rm:idem:org_acl:x", "job_1", 2, "d2", 1, first="d")
        assert {
            spec: body for spec, (body, _, _) in (await updates.attempts("rm:idem:org_acl:x", "job_1")).items()
        } == {
            1: "d",
            2: "d2",
        }
        await updates.release_update("rm:idem:org_acl:x", "job_1", 2)
        held = await updates.get("rm:idem:org_acl:x")
        assert await updates.correct("rm:idem:org_acl:x", held, "d", 2)
        assert (await RateLimiter(ingest, 1.0, 5).take("rm_ci_acl")).allowed
        # ingest's one-round-trip scripts: the token's epoch with the bucket; reservation, lane and data key
        epoch = await TokenStore(auth, KEY).epoch(owner.client_id)
        assert (
            await RateLimiter(ingest, 1.0, 5).take_current("rm_ci_acl", client_epoch_key("rm_ci_acl"), epoch)
        ).allowed
        keys = DataKeys(ingest, "kek-of-the-acl-test")
        reserved = await Reservations(ingest, 60).reserve_new(
            "rm:idem:org_acl:y", "job_2", "d", "org_acl", Lanes(ingest, 2, 60), keys
        )
        assert reserved == (None, "normal") and await keys.key_for("job_2") is not None
        await status.set("rm:outcome:job_1", "{}")
        await GeocodeCache(geocoder, 60, 60).put("1 George St", None)
        await console.set("rm:console:session:x", "{}", ex=60)  # the console keeps only its sessions

        digest_key = token_key(token_digest(token))
        refused = [
            ingest.hset(digest_key, "org_id", "org_victim"),  # a gateway cannot forge or change a token
            status.delete(digest_key),
            ingest.get("rm:fail:pair:x"),  # nor read auth's counters
            geocoder.hgetall(digest_key),  # the geocoder never sees tokens
            status.get("rm:geo:x"),
            auth.get("rm:idem:org_acl:x"),
            notifier.get("rm:outcome:job_1"),  # the notifier only checks tokens
            notifier.hset(digest_key, "org_id", "org_victim"),
            console.hgetall(digest_key),  # the console never sees integrators' tokens
            console.get("rm:datakey:job_1"),  # nor the jobs' data keys
        ]
        for attempt in refused:
            with pytest.raises(NoPermissionError):
                await attempt
    finally:
        for client in (auth, ingest, status, geocoder, notifier, console):
            await client.aclose()
    anonymous = Redis(port=REDIS_PORT, retry=Retry(NoBackoff(), 0))  # no retries: the refusal is the answer
    with pytest.raises(AuthenticationError):
        await anonymous.ping()
    await anonymous.aclose()


# ---- Kafka: SASL/SCRAM-SHA-512 ----


@pytest.fixture(scope="module")
def sasl_kafka(tmp_path_factory) -> Iterator[dict[str, str]]:
    """A second single-node Kafka whose only client listener wants SCRAM-SHA-512; yields users."""
    state = tmp_path_factory.mktemp("kafka-sasl")
    users = {"admin": secrets.token_urlsafe(16), "ingest": secrets.token_urlsafe(16)}
    scram = " ".join(f"--add-scram SCRAM-SHA-512=[name={n},password={p}]" for n, p in users.items())
    env = {
        **os.environ,
        "KAFKA_STATE_DIR": str(state),
        "KAFKA_PORT": str(KAFKA_PORT),
        "KAFKA_CONTROLLER_PORT": str(KAFKA_CONTROLLER_PORT),
        "KAFKA_PROPERTIES_TMPL": str(ROOT / "deploy/kafka/server-sasl.properties.tmpl"),
        "KAFKA_SASL_ADMIN_USER": "admin",
        "KAFKA_SASL_ADMIN_PASSWORD": users["admin"],
        "KAFKA_FORMAT_ARGS": scram,
        "KAFKA_LOG": str(state / "kafka.log"),
        "KAFKA_HEAP": "384m",
    }
    script = str(ROOT / "deploy/kafka/kafka.sh")
    started = subprocess.run(["bash", script, "start"], env=env, capture_output=True, text=True, timeout=150)
    assert started.returncode == 0, started.stdout + started.stderr + _tail(state / "kafka.log")
    try:
        yield users
    finally:
        subprocess.run(["bash", script, "stop"], env=env, capture_output=True, timeout=60)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else ""


def sasl_settings(user: str, password: str) -> PlatformSettings:
    return PlatformSettings(
        kafka_bootstrap_servers=f"127.0.0.1:{KAFKA_PORT}",
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username=user,
        kafka_sasl_password=password,
        topic_partitions=1,
    )


async def test_the_services_kafka_clients_authenticate_with_scram(sasl_kafka):
    from shared.topics import ensure_topics

    settings = sasl_settings("ingest", sasl_kafka["ingest"])
    await ensure_topics(settings, attempts=20)  # the admin client, with SASL
    topic, got = "routemate.jobs.requested", []
    broker = make_broker(settings, "sasl-test")

    @broker.subscriber(topic, group_id=f"sasl-{uuid.uuid4().hex[:6]}", auto_offset_reset="earliest")
    async def collect(msg: KafkaMessage) -> None:
        got.append(msg.body)

    payload = f"hello-{uuid.uuid4().hex}".encode()
    await broker.start()
    try:
        await broker.publish(payload, topic)
        await async_wait_until(lambda: _received(got, payload), 30, 0.1, "the SASL consumer to receive the event")
    finally:
        await broker.stop()


async def _received(got: list[bytes], payload: bytes) -> bool:
    return payload in got


async def test_a_wrong_kafka_password_is_refused(sasl_kafka, caplog):
    broker = make_broker(sasl_settings("ingest", "not-the-password"), "sasl-test")
    started = time.monotonic()
    with pytest.raises((KafkaError, OSError)) as refused:
        await asyncio.wait_for(broker.start(), 60)
    await broker.stop()
    assert time.monotonic() - started < 60
    # aiokafka reports "unable to bootstrap"; why is in its log: the broker refused the credentials.
    assert "SaslAuthenticationFailed" in caplog.text, repr(refused.value)
