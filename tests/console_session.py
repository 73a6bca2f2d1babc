"""A console member as a test sees them: an organization, its first admin (made by the operator's
CLI), and an HTTP session through the edge that signs in and posts forms with their CSRF token."""

import re
import subprocess
import sys
import uuid

import httpx

from services.auth.settings import LOCAL_ADMIN_TOKEN
from shared.testing.stack import ADMIN_URL
from tests.conftest import ROOT, routemate

ADMIN = {"Authorization": f"Bearer {LOCAL_ADMIN_TOKEN}"}

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def new_org() -> str:
    return f"console-{uuid.uuid4().hex[:10]}"


def add_member(org: str, role: str = "admin", password: str | None = PASSWORD, via_cli: bool = False) -> str:
    """A member added by the operator with a password: through the admin API the CLI drives, or
    through the CLI itself (`routemate user add --password-stdin`; a process start is slow)."""
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    if password is None:
        routemate("user", "add", "--org", org, "--email", email, "--role", role)
        return email
    if not via_cli:
        body = {"org": org, "email": email, "role": role, "password": password}
        answer = httpx.post(f"{ADMIN_URL}/admin/v1/members", json=body, headers=ADMIN, timeout=30)
        assert answer.status_code == 201 and answer.json()["active"], answer.text
        return email
    done = subprocess.run(
        [sys.executable, "-m", "routemate_cli.main", "user", "add", "--org", org, "--email", email, "--role", role,
         "--password-stdin"],
        cwd=ROOT, input=password + "\n", capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert '"active": true' in done.stdout, done.stdout
    return email


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.text[:500]
    return found.group(1)


class ConsoleUser:
    def __init__(self, base_url: str, **client: object) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30, follow_redirects=False, **client)  # type: ignore[arg-type]

    def sign_in(self, email: str, password: str = PASSWORD) -> httpx.Response:
        token = csrf_of(self.http.get("/login"))
        answer = self.http.post("/login", data={"email": email, "password": password, "csrf_token": token})
        return answer

    def csrf(self, path: str = "/jobs") -> str:
        return csrf_of(self.http.get(path))

    def post(self, path: str, data: dict[str, str], token: str | None = None) -> httpx.Response:
        return self.http.post(path, data={**data, "csrf_token": token if token is not None else self.csrf()})

    def close(self) -> None:
        self.http.close()
