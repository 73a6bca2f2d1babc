"""The notifier in-process: create_app with a SQLite file, in-memory Redis (one token per
organization) and FastStream's in-memory Kafka, its delivery worker running, a fake DNS, and a
local receiver on 127.0.0.1."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from faststream.kafka import TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage

from services.notifier.app import SERVICE, create_app
from services.notifier.settings import NotifierSettings
from services.status.tests.conftest import database, postgres_url  # noqa: F401 - SQLite and PostgreSQL fixtures
from shared.broker import EventBus, make_broker
from shared.db import make_engine
from shared.events import AUTH_EVENTS, Event, JobChanged, decode_event, utcnow
from shared.testing.fakes import MemoryRedis, seed_token
from shared.testing.receiver import Receiver
from shared.testing.waiting import async_wait_until
from shared.tokens import new_token

ORG, OTHER_ORG = "org_1", "org_2"
TOKENS = {ORG: new_token(), OTHER_ORG: new_token()}
# The fake DNS: names the tests use, and what they resolve to.
DNS: dict[str, list[str]] = {"hooks.example.com": ["93.184.216.34"]}


async def fake_resolver(host: str, port: int) -> list[str]:
    if host in DNS:
        return DNS[host]
    return [host] if host.replace(".", "").isdigit() or ":" in host else []


def auth(org: str = ORG) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[org]}"}


def change(job_id: str, change_type: str = "job.routed", org: str = ORG, **data: Any) -> JobChanged:
    return JobChanged(
        org_id=org,
        job_id=job_id,
        change_type=change_type,
        version=data.pop("version", 1),
        data={"job_id": job_id, "status": "assigned", "updated_at": utcnow().isoformat(), **data},
    )


@dataclass
class Notifier:
    app: FastAPI
    http: httpx.AsyncClient
    bus: EventBus
    audit: list[Event]

    async def publish(self, *events: Event) -> None:
        for event in events:
            await self.bus.publish(event)

    async def endpoint(self, url: str, events: list[str] | None = None, org: str = ORG) -> dict[str, Any]:
        answer = await self.http.post(
            "/v1/integration-webhooks", json={"url": url, "events": events or ["job.routed"]}, headers=auth(org)
        )
        assert answer.status_code == 201, answer.text
        return answer.json()

    async def deliveries(self, endpoint_id: str, org: str = ORG) -> list[dict[str, Any]]:
        answer = await self.http.get(f"/v1/integration-webhooks/{endpoint_id}/deliveries", headers=auth(org))
        assert answer.status_code == 200, answer.text
        return answer.json()["deliveries"]


def settings(**over: Any) -> NotifierSettings:
    base = {
        "webhook_allow_private_targets": True,
        "webhook_retry_scale": 0.01,  # 5 s -> 50 ms, 5 min -> 3 s
        "webhook_poll_seconds": 0.05,
        "webhook_timeout_seconds": 2,
    }
    return NotifierSettings(**{**base, **over})


@pytest.fixture
def notifier_settings() -> NotifierSettings:
    return settings()


@pytest.fixture
async def notifier(tmp_path, notifier_settings) -> AsyncIterator[Notifier]:
    redis = MemoryRedis()
    for org, token in TOKENS.items():
        seed_token(redis, token, org, f"rm_ci_{org}")
    broker = make_broker(notifier_settings, SERVICE)
    engine = make_engine(f"sqlite:///{tmp_path / 'notifier.db'}")
    app = create_app(notifier_settings, redis=redis, broker=broker, engine=engine, resolver=fake_resolver)
    audit: list[Event] = []

    @broker.subscriber(AUTH_EVENTS)
    async def on_audit(msg: KafkaMessage) -> None:
        audit.append(decode_event(msg.body))

    async with TestKafkaBroker(broker):
        app.state.worker.start()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://notifier") as http:
            yield Notifier(app, http, EventBus(broker, "tests"), audit)
        await app.state.worker.stop()
        await app.state.worker.sender.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


async def received(receiver: Receiver, count: int, seconds: float = 10) -> None:
    async def enough() -> bool:
        return len(receiver.received) >= count

    await async_wait_until(enough, seconds, 0.02, f"{count} requests at the receiver")
