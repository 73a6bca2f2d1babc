"""Fixtures: empty databases of both kinds for the read-model tests (SQLite offline, PostgreSQL as
e2e), and the whole status service in-process for the component tests."""

import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from faststream.kafka import TestKafkaBroker

from services.status.app import SERVICE, create_app
from services.status.settings import StatusSettings
from shared.broker import EventBus, make_broker
from shared.db import make_engine
from shared.events import DriverRegistered, Event, utcnow
from shared.testing.builders import geocoded, import_requested, routed, stop
from shared.testing.fakes import MemoryRedis, seed_token
from shared.tokens import new_token
from shared.vocabulary import UnroutedReason

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The project's test PostgreSQL, started here if it is not running (never skipped)."""
    script = ROOT / "deploy/local/postgres.sh"
    subprocess.run(["bash", str(script), "start"], check=True, stdout=subprocess.DEVNULL)
    return subprocess.run(["bash", str(script), "url"], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.e2e)])
def database(request, tmp_path):
    """A factory of empty databases of one kind: `database(name)` -> URL."""
    created: list[str] = []

    def new(name: str) -> str:
        if request.param == "sqlite":
            return f"sqlite:///{tmp_path / name}.db"
        admin_url = request.getfixturevalue("postgres_url")
        db = f"t_{name}_{uuid.uuid4().hex[:8]}".lower()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{db}"')
        created.append(db)
        return admin_url.rsplit("/", 1)[0] + f"/{db}"

    yield new
    if created:
        from sqlalchemy import create_engine  # noqa: F401 - engines are disposed with the process

        admin_url = request.getfixturevalue("postgres_url")
        with psycopg.connect(admin_url, autocommit=True) as conn:
            for db in created:
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


ORG, OTHER_ORG = "org_1", "org_2"
DRIVER = "dana@example.com"
TOKENS = {ORG: new_token(), OTHER_ORG: new_token()}


@dataclass
class StatusService:
    """The status service in-process: HTTP through its app, events through its in-memory broker."""

    app: FastAPI
    http: httpx.AsyncClient
    bus: EventBus
    redis: MemoryRedis
    settings: StatusSettings
    database: Path

    @staticmethod
    def auth(org: str = ORG) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKENS[org]}"}

    async def publish(self, *events: Event) -> None:
        """Each event on its topic; the in-memory broker hands it to the consumer before returning."""
        for event in events:
            await self.bus.publish(event)

    async def job(self, job_id: str, org: str = ORG, *, route: bool = True, at: datetime | None = None) -> list[Event]:
        """A job of three stops, imported at `at`; routed (S1, S0; S2 unroutable) if `route`."""
        ids: dict[str, Any] = {"org_id": org, "job_id": job_id}
        at = at or utcnow()
        stops = [stop(i, f"{i} Queen St", job_id=job_id) for i in range(3)]
        imported = import_requested(*stops, **ids, external_job_id=f"EXT-{job_id}", driver_email=DRIVER)
        geo = geocoded([(-27.47, 153.02), (-27.48, 153.01), None], **ids)
        events: list[Event] = [imported.model_copy(update={"occurred_at": at})]
        if route:
            path = routed(geo, [1, 0], {2: UnroutedReason.GEOCODE_FAILED}, external_job_id=f"EXT-{job_id}")
            events += [geo, path.model_copy(update={"occurred_at": at + timedelta(seconds=1)})]
        await self.publish(*events)
        return events


@pytest.fixture
async def status(tmp_path) -> AsyncIterator[StatusService]:
    """create_app with a SQLite file, an in-memory Redis holding one token per organization, and
    FastStream's in-memory Kafka; the organizations' driver is registered."""
    redis = MemoryRedis()
    for org, token in TOKENS.items():
        seed_token(redis, token, org, f"rm_ci_{org}")
    settings, database = StatusSettings(), tmp_path / "status.db"
    broker = make_broker(settings, SERVICE)
    app = create_app(settings, redis=redis, broker=broker, engine=make_engine(f"sqlite:///{database}"))
    async with TestKafkaBroker(broker):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://status") as http:
            service = StatusService(app, http, EventBus(broker, "tests"), redis, settings, database)
            await service.publish(*(DriverRegistered(org_id=org, email=DRIVER, name="Dana") for org in TOKENS))
            yield service
