"""Fixtures for the auth service's unit and component tests: a temporary database, fake Redis, fake bus."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
from fastapi.testclient import TestClient
from faststream.kafka import TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage

from services.auth.adapters.store import AuthStore
from services.auth.app import create_app
from services.auth.settings import AuthSettings
from shared.broker import make_broker
from shared.db import make_engine
from shared.events import AUTH_EVENTS, Event, decode_event
from shared.testing.fakes import MemoryRedis, RecordingBus


@dataclass
class Auth:
    """A running auth app with its fakes at hand."""

    client: TestClient
    redis: MemoryRedis
    admin: TestClient = None  # type: ignore[assignment]  # the admin listener's app
    events: list[Event] = field(default_factory=list)

    def types(self) -> list[str]:
        return [e.event_type for e in self.events]


@pytest.fixture
def store(tmp_path) -> AuthStore:
    return AuthStore(make_engine(f"sqlite:///{tmp_path / 'auth.db'}"))


@pytest.fixture
def settings() -> AuthSettings:
    # A low client threshold keeps the lockout tests (which wait between failures) short.
    return AuthSettings(lockout_threshold=3, ip_lockout_threshold=50)


@asynccontextmanager
async def running_auth(
    settings: AuthSettings, store: AuthStore, bus: RecordingBus | None = None
) -> AsyncIterator[Auth]:
    """The app through create_app, on FastStream's in-memory broker; auth events are collected."""
    broker = make_broker(settings, "auth")
    running = Auth(client=None, redis=MemoryRedis())  # type: ignore[arg-type]

    @broker.subscriber(AUTH_EVENTS)
    async def collect(msg: KafkaMessage) -> None:
        running.events.append(decode_event(msg.body))

    async with TestKafkaBroker(broker):
        app = create_app(settings, redis=running.redis, broker=broker, store=store, bus=bus)
        with TestClient(app) as client, TestClient(app.state.admin_app) as admin:
            running.client, running.admin = client, admin
            yield running


@pytest.fixture
async def auth(settings: AuthSettings, store: AuthStore) -> AsyncIterator[Auth]:
    async with running_auth(settings, store) as running:
        yield running


@pytest.fixture
async def auth_without_kafka(settings: AuthSettings, store: AuthStore) -> AsyncIterator[Auth]:
    """The app whose event bus refuses every publish, as when Kafka is down."""
    bus = RecordingBus(down=True)
    async with running_auth(settings, store, bus) as running:
        yield running
