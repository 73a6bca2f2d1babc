"""The console through create_app, with auth and status faked at their internal API and Redis in memory."""

from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.console.adapters.internal_api import ApiRefused
from services.console.app import create_app
from services.console.settings import ConsoleSettings
from shared.testing.fakes import MemoryRedis

MEMBERS = {
    "ada@example.com": {"member_id": "mem_ada", "org_id": "org_a", "org": "acme", "email": "ada@example.com",
                        "role": "admin", "active": True},
    "vic@example.com": {"member_id": "mem_vic", "org_id": "org_a", "org": "acme", "email": "vic@example.com",
                        "role": "viewer", "active": True},
}  # fmt: skip
PASSWORD = "correct horse battery staple"


@dataclass
class FakeApi:
    """Answers the internal calls the console makes from `answers` (path -> body); records them."""

    answers: dict[str, Any] = field(default_factory=dict)
    calls: list[tuple[str, str, Any]] = field(default_factory=list)

    async def call(self, method: str, path: str, *, json: Any = None, params: Any = None) -> Any:
        self.calls.append((method, path, json or params))
        if path == "/internal/v1/sign-in":
            found = MEMBERS.get(json["email"])
            if found is None or json["password"] != PASSWORD:
                raise ApiRefused(401, "invalid_credentials", "Wrong email or password.")
            return found
        if path.startswith("/internal/v1/members/"):
            found = [m for m in MEMBERS.values() if m["member_id"] == path.rsplit("/", 1)[1]]
            if not found:
                raise ApiRefused(404, "not_found", "no such member")
            return found[0]
        if path not in self.answers:
            raise ApiRefused(404, "not_found", "nothing here")
        return self.answers[path]

    async def aclose(self) -> None:
        pass


@dataclass
class Console:
    client: TestClient
    auth: FakeApi
    status: FakeApi
    redis: MemoryRedis


@pytest.fixture
def console():
    auth, status, redis = FakeApi(), FakeApi(), MemoryRedis()
    status.answers["/internal/v1/orgs/org_a/jobs"] = {"jobs": [], "next_cursor": None}
    app = create_app(ConsoleSettings(), redis=redis, auth=auth, status=status)  # type: ignore[arg-type]
    with TestClient(app, follow_redirects=False) as client:
        yield Console(client, auth, status, redis)
