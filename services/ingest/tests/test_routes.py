"""POST /v1/integration-import in-process: every answer the route gives, through create_app with fakes."""

import asyncio
import json
import time
from contextlib import asynccontextmanager

import httpx
import pytest
from aiokafka.errors import KafkaConnectionError
from faststream.kafka import TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from services.ingest.tests.support import FakeLimiter, settle
from shared.broker import make_broker
from shared.channels import JobHead, jobhead_key
from shared.events import JOBS_REQUESTED, decode_event
from shared.ratelimit import RateLimiter
from shared.settings import LOCAL_TOKEN_SIGNING_KEY
from shared.testing.builders import import_body
from shared.testing.fakes import MemoryRedis
from shared.testing.waiting import async_wait_until
from shared.tokens import Principal, new_token, revoke_tokens, signed_record, token_digest, token_key

URL = "/v1/integration-import"
TOKEN = new_token()
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROBLEM_JSON = "application/problem+json"


def platform_redis() -> MemoryRedis:
    """Redis as auth left it: one token of integration rm_ci_1 of organization org_a."""
    redis = MemoryRedis()
    digest, owner = token_digest(TOKEN), Principal("org_a", "rm_ci_1")
    record = signed_record(LOCAL_TOKEN_SIGNING_KEY.encode(), digest, owner, int(time.time()) + 3600, 0)
    redis.values[token_key(digest)] = {k.encode(): v.encode() for k, v in record.items()}
    return redis


@asynccontextmanager
async def ingest(redis: MemoryRedis | None = None, limiter: FakeLimiter | None = None, settles: bool = True, **env):
    """A client of an ingest app on the in-memory broker; `settles`: the pipeline routes every import."""
    settings = IngestSettings(**{"ingest_wait_seconds": 2, "publish_timeout_seconds": 0.5, **env})
    redis = redis or platform_redis()
    broker = make_broker(settings, "ingest")
    app = create_app(settings, redis=redis, broker=broker, limiter=limiter or FakeLimiter())
    app.state.published = []

    @broker.subscriber(JOBS_REQUESTED)
    async def pipeline(msg: KafkaMessage) -> None:
        event = decode_event(msg.body)
        app.state.published.append(event)
        if settles:
            await settle(redis, event)

    async with TestKafkaBroker(broker), app.router.lifespan_context(app):

        async def subscribed():
            return redis.subscribers or redis.down

        await async_wait_until(subscribed, seconds=2, every=0.01, what="the outcome listener subscribed")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest") as client:
            client.app = app
            yield client


def assert_problem(answer: httpx.Response, status: int, code: str) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM_JSON)
    assert answer.json()["code"] == code
    return answer.json()


async def test_an_import_is_answered_201_with_its_route_and_a_replay_200_with_the_same_job():
    async with ingest() as client:
        first = await client.post(URL, json=import_body(), headers=AUTH)
        again = await client.post(URL, json=import_body(), headers=AUTH)
    assert first.status_code == 201, first.text
    job = first.json()
    assert job["status"] == "assigned" and len(job["stops"]) == 8
    assert first.headers["Location"] == f"/v1/integration-jobs/{job['job_id']}"
    assert first.headers["RateLimit-Limit"] == "100" and "Idempotent-Replayed" not in first.headers
    assert again.status_code == 200 and again.json() == job
    assert again.headers["Idempotent-Replayed"] == "true" and again.headers["Location"] == first.headers["Location"]
    assert len(client.app.state.published) == 1


async def test_respond_async_is_202_with_the_jobs_location():
    async with ingest(settles=False) as client:
        answer = await client.post(URL, json=import_body(), headers={**AUTH, "Prefer": "respond-async"})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["status"] == "pending" and body["external_job_id"] == import_body()["external_job_id"]
    assert answer.headers["Location"] == body["links"]["job"] == f"/v1/integration-jobs/{body['job_id']}"
    assert client.app.state.published[0].job_id == body["job_id"]


async def test_an_import_without_an_outcome_in_time_is_202_processing():
    async with ingest(settles=False, ingest_wait_seconds=0.1) as client:
        answer = await client.post(URL, json=import_body(), headers=AUTH)
    assert answer.status_code == 202 and answer.json()["status"] == "processing"


async def test_another_body_under_the_same_external_id_is_409():
    async with ingest() as client:
        first = await client.post(URL, json=import_body(), headers=AUTH)
        changed = await client.post(URL, json=import_body(title="something else"), headers=AUTH)
    problem = assert_problem(changed, 409, "idempotency_conflict")
    assert problem["job_id"] == first.json()["job_id"]


@pytest.mark.parametrize(
    "headers, code",
    [({}, "missing_token"), ({"Authorization": "Bearer " + new_token()}, "invalid_token")],
    ids=["no token", "unknown token"],
)
async def test_a_caller_without_a_valid_token_is_401(headers, code):
    async with ingest() as client:
        answer = await client.post(URL, json=import_body(), headers=headers)
    assert_problem(answer, 401, code)
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.app.state.published == []


@pytest.mark.parametrize(
    "content, content_type, status, code",
    [
        (b"a=b", "text/plain", 415, "unsupported_media_type"),
        (b'{"title": ', "application/json", 400, "invalid_json"),
        (b'{"title": "' + b"x" * 2048 + b'"}', "application/json", 413, "body_too_large"),
    ],
    ids=["415", "400", "413"],
)
async def test_a_body_that_is_not_a_json_import_of_bounded_size_is_refused(content, content_type, status, code):
    async with ingest(max_body_bytes=1024) as client:
        answer = await client.post(URL, content=content, headers={**AUTH, "Content-Type": content_type})
    assert_problem(answer, status, code)


async def test_invalid_fields_are_422_with_a_pointer_each():
    body = import_body()
    body["stops"][2]["parcel_count"] = -4
    async with ingest() as client:
        answer = await client.post(URL, json=body, headers=AUTH)
    assert [e["pointer"] for e in assert_problem(answer, 422, "validation_failed")["errors"]] == [
        "/stops/2/parcel_count"
    ]
    assert client.app.state.published == []


async def test_too_many_stops_is_422_too_many_stops():
    async with ingest(max_stops=5) as client:
        answer = await client.post(URL, json=import_body(stops=6), headers=AUTH)
    assert assert_problem(answer, 422, "too_many_stops")["max_stops"] == 5


async def test_an_integration_over_its_rate_is_429_with_retry_after_before_its_body_is_read():
    async with ingest(limiter=FakeLimiter(burst=1)) as client:
        await client.post(URL, json=import_body(), headers=AUTH)
        answer = await client.post(URL, content=b"not even json", headers={**AUTH, "Content-Type": "text/plain"})
    assert_problem(answer, 429, "rate_limited")
    assert int(answer.headers["Retry-After"]) >= 1 and answer.headers["RateLimit-Remaining"] == "0"


async def test_kafka_refusing_the_import_is_503_and_the_retry_keeps_its_job_id(monkeypatch):
    async with ingest() as client:
        broker = client.app.state.imports.bus.broker
        working = broker.publish

        async def refuse(*args, **kwargs):
            raise KafkaConnectionError("no broker")

        monkeypatch.setattr(broker, "publish", refuse)
        refused = await client.post(URL, json=import_body(), headers=AUTH)
        monkeypatch.setattr(broker, "publish", working)
        retried = await client.post(URL, json=import_body(), headers=AUTH)
    assert_problem(refused, 503, "dependency_unavailable")
    assert refused.headers["Retry-After"] == "5"
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers
    assert [e.job_id for e in client.app.state.published] == [retried.json()["job_id"]]


async def test_concurrent_imports_send_their_reservations_and_acceptances_to_redis_together():
    async with ingest(settles=False) as client:
        headers = {**AUTH, "Prefer": "respond-async"}
        answers = await asyncio.gather(
            *(client.post(URL, json=import_body(external_job_id=f"BATCH-{i}"), headers=headers) for i in range(12))
        )
        batch, reservations = client.app.state.redis_batch, client.app.state.imports.reservations
        kept = [await reservations.get(reservations.key("org_a", f"BATCH-{i}")) for i in range(12)]
        redis = client.app.state.redis
    assert [a.status_code for a in answers] == [202] * 12
    assert [(r.job_id, r.accepted) for r in kept] == [(a.json()["job_id"], True) for a in answers]
    # Each import's reservation (twice: a Redis that never ran the script answers NOSCRIPT first,
    # and one SCRIPT LOAD serves all twelve) and its acceptance (its rate limit is the fake
    # limiter's here), in far fewer pipelines than commands.
    assert redis.script_loads == 1
    assert batch.commands == 36 and batch.pipelines <= 8, (batch.commands, batch.pipelines)


class IdempotencyStoreDown(MemoryRedis):
    """Tokens still answer, but every write fails (a Redis that went read-only or away mid-request)."""

    async def set(self, *args, **kwargs):
        raise ConnectionError("redis down")


async def test_redis_down_is_503_with_retry_after():
    down = platform_redis()
    down.down = True
    store_down = IdempotencyStoreDown(platform_redis().values)
    limiter_down = FakeLimiter()
    limiter_down.down = True
    async with ingest(redis=down) as client:
        tokens = await client.post(URL, json=import_body(), headers=AUTH)
    async with ingest(redis=store_down) as client:
        reservations = await client.post(URL, json=import_body(), headers=AUTH)
    async with ingest(limiter=limiter_down) as client:
        rate = await client.post(URL, json=import_body(), headers=AUTH)
    assert_problem(tokens, 503, "token_store_unavailable")
    assert_problem(reservations, 503, "dependency_unavailable")
    assert_problem(rate, 503, "dependency_unavailable")
    assert all("Retry-After" in a.headers for a in (tokens, reservations, rate))


async def test_deep_or_nul_carrying_json_is_a_400_problem_not_a_500():
    async with ingest() as client:
        json_headers = {**AUTH, "Content-Type": "application/json"}
        deep = await client.post(URL, content=b"[" * 50_000 + b"]" * 50_000, headers=json_headers)
        assert_problem(deep, 400, "json_too_deep")
        body = import_body()
        body["stops"][0]["address"] = "1 Queen St\u0000"
        nul = await client.post(URL, content=json.dumps(body), headers=json_headers)
        assert assert_problem(nul, 400, "invalid_text")["errors"][0]["pointer"] == "/stops/0/address"
        # A valid import but for one unknown field nested too deep: valid to pydantic's own parser,
        # so it must not take the fast path (handlers.validated_import) past the depth limit.
        deep_extra = import_body()
        deep_extra["stops"][0]["extra"] = json.loads("[" * 40 + "]" * 40)
        too_deep = await client.post(URL, content=json.dumps(deep_extra), headers=json_headers)
        assert assert_problem(too_deep, 400, "json_too_deep")["errors"][0]["pointer"].startswith("/stops/0/extra")
        assert client.app.state.published == []


async def test_an_if_match_import_is_412_problem_json_with_the_current_etag_when_stale():
    redis = platform_redis()
    async with ingest(redis) as client:
        body = import_body(external_job_id="RUN-9")
        job_id = (await client.post(URL, json=body, headers=AUTH)).json()["job_id"]
        head = JobHead(org_id="org_a", version=6, status="assigned")
        await redis.set(jobhead_key(job_id), head.model_dump_json())
        changed = {**body, "title": "changed"}
        stale = await client.post(URL, json=changed, headers={**AUTH, "If-Match": '"5"'})
        assert assert_problem(stale, 412, "precondition_failed")["current_version"] == 6
        assert stale.headers["ETag"] == '"6"'
        plain = await client.post(URL, json=changed, headers=AUTH)
        assert_problem(plain, 409, "idempotency_conflict")
        assert len(client.app.state.published) == 1  # neither went out


async def test_an_import_whose_event_cannot_fit_kafka_is_413_not_a_misleading_503(monkeypatch):
    """The size budget is far above any valid import by default; an operator who raises the body
    limit past it gets a clear 413 with a stable code, never "broker unavailable"."""
    monkeypatch.setattr("shared.broker.EVENT_BUDGET_BYTES", 2000)
    async with ingest() as client:
        answer = await client.post(URL, json=import_body(), headers=AUTH)
        body = assert_problem(answer, 413, "event_too_large")
        assert body["limit_bytes"] == 2000 and body["size_bytes"] > 2000
        assert client.app.state.published == []


async def test_a_revoked_integration_is_refused_at_once_though_its_token_is_cached_and_keeps_its_bucket():
    redis = platform_redis()
    async_import = {**AUTH, "Prefer": "respond-async"}
    async with ingest(redis, limiter=RateLimiter(redis, 0.001, 5)) as client:
        for n in range(2):  # the second import reads no token record: it is cached
            answer = await client.post(URL, json=import_body(external_job_id=f"R{n}"), headers=async_import)
            assert answer.status_code == 202, answer.text
        assert answer.headers["RateLimit-Remaining"] == "3"
        await revoke_tokens(redis, "rm_ci_1")  # what auth does: the integration's epoch moves on
        assert_problem(
            await client.post(URL, json=import_body(external_job_id="R2"), headers=async_import), 401, "invalid_token"
        )
        bucket = await redis.hgetall("rm:rl:rm_ci_1")
    assert 3 <= float(bucket[b"tokens"]) < 4  # the refused import took nothing from the integration's bucket
    assert len(client.app.state.published) == 2
