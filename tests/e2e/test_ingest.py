"""Ingest over the real stack: content rules, limits, rate limit, and a second replica."""

from datetime import datetime, timedelta, timezone

import httpx
import pytest

from shared.testing.stack import extra_port
from tests.conftest import Tenant, extra_process

BRISBANE = timezone(timedelta(hours=10))


@pytest.fixture(scope="module")
def second_replica():
    """Another ingest process behind no proxy, with a tiny rate limit: outcomes must reach it too."""
    with extra_process("ingest", extra_port("ingest"), RATE_LIMIT_BURST="3", RATE_LIMIT_PER_SECOND="0.2") as url:
        yield url


async def test_a_second_replica_answers_with_the_route_and_enforces_its_rate_limit(second_replica, tenant: Tenant):
    async with httpx.AsyncClient(base_url=second_replica, timeout=60) as replica:
        first = await replica.post("/v1/integration-import", json=tenant.job(), headers=tenant.auth)
        assert first.status_code == 201 and first.json()["status"] == "assigned"
        assert first.headers["RateLimit-Limit"] == "3"
        answers = [
            await replica.post(
                "/v1/integration-import", json=tenant.job(), headers={**tenant.auth, "Prefer": "respond-async"}
            )
            for _ in range(4)
        ]
    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    assert limited[0].json()["code"] == "rate_limited"
    assert int(limited[0].headers["Retry-After"]) >= 1 and limited[0].headers["RateLimit-Remaining"] == "0"


async def test_content_type_json_and_size_rules(http: httpx.AsyncClient, tenant: Tenant):
    url = "/v1/integration-import"
    wrong_type = await http.post(url, content=b"a=b", headers={**tenant.auth, "Content-Type": "text/plain"})
    assert wrong_type.status_code == 415 and wrong_type.json()["code"] == "unsupported_media_type"
    bad_json = await http.post(url, content=b'{"title": ', headers={**tenant.auth, "Content-Type": "application/json"})
    assert bad_json.status_code == 400 and bad_json.json()["code"] == "invalid_json"
    huge = b'{"title": "' + b"x" * (5 * 1024 * 1024 + 10) + b'"}'
    too_big = await http.post(url, content=huge, headers={**tenant.auth, "Content-Type": "application/json"})
    assert too_big.status_code == 413 and too_big.json()["code"] == "body_too_large"
    for answer in (wrong_type, bad_json, too_big):
        assert answer.headers["content-type"].startswith("application/problem+json")


async def test_field_errors_come_back_as_pointers(tenant: Tenant):
    body = tenant.job()
    body["stops"][2]["parcel_count"] = -4
    body["stops"][3]["external_stop_id"] = body["stops"][0]["external_stop_id"]
    answer = await tenant.import_job(body)
    assert answer.status_code == 422
    assert [e["pointer"] for e in answer.json()["errors"]] == ["/stops/2/parcel_count"]
    body["stops"][2]["parcel_count"] = 1
    answer = await tenant.import_job(body)
    assert answer.json()["errors"][0]["pointer"] == "/stops/3/external_stop_id"


async def test_optional_fields_shape_the_route(tenant: Tenant):
    # tomorrow 08:00 in Brisbane: inside the planning window whenever the suite runs
    start = (datetime.now(BRISBANE) + timedelta(days=1)).replace(hour=8, minute=0, second=0, microsecond=0)
    body = tenant.job(
        depot={"lat": -27.44, "lng": 153.03},
        return_to_depot=True,
        start_time=start.isoformat(),
        vehicle_capacity=50,
        priority="high",
    )
    body["stops"][0].update(lat=-27.4698, lng=153.0251)  # skips geocoding
    body["stops"][1]["time_window"] = {
        "start": (start - timedelta(hours=5)).isoformat(),
        "end": (start - timedelta(hours=4)).isoformat(),
    }  # closed before we leave
    body["stops"][2]["time_window"] = {
        "start": (start + timedelta(hours=2)).isoformat(),
        "end": (start + timedelta(hours=3)).isoformat(),
    }
    answer = await tenant.import_job(body)
    assert answer.status_code == 201, answer.text
    job = answer.json()
    stops = {s["external_stop_id"]: s for s in job["stops"]}
    assert stops["STOP-1"]["geocode_precision"] == "provided"
    assert [u["external_stop_id"] for u in job["unrouted_stops"]] == ["STOP-2"]
    eta = datetime.fromisoformat(stops["STOP-3"]["eta"])
    assert start + timedelta(hours=2) <= eta <= start + timedelta(hours=3)
    codes = {(w["code"], w["external_stop_id"]) for w in job["warnings"]}
    assert ("TIME_WINDOW_VIOLATION", "STOP-2") in codes and ("UNKNOWN_FIELD", None) in codes
    assert stops["STOP-3"]["time_window"] is not None


async def test_an_async_import_takes_three_redis_round_trips_once_its_token_is_verified(tenant: Tenant, monkeypatch):
    """The gateway's cost per import (issue #20): the token's epoch with the rate limit; the
    reservation, lane and data key; the reservation accepted after Kafka's ack. On this platform's
    Redis and Kafka, in-process, counting what the Redis client sends."""
    from redis.asyncio.connection import AbstractConnection

    from services.ingest.app import create_app
    from services.ingest.settings import IngestSettings

    sent = [0]
    original = AbstractConnection.send_packed_command

    async def counted(self, *args, **kwargs):
        sent[0] += 1
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
    app = create_app(IngestSettings())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest", timeout=30) as ingest:
            answers = []
            for n in range(4):
                if n == 1:
                    sent[0] = 0  # the first import verified the token: it read its record once
                headers = {**tenant.auth, "Prefer": "respond-async"}
                answers.append(await ingest.post("/v1/integration-import", json=tenant.job(), headers=headers))
            assert [a.status_code for a in answers] == [202] * 4, answers[-1].text
            assert sent[0] == 3 * 3
