"""The client's own suite, run against the real platform from a virtualenv the package was
pip-installed into. RouteMate's `make test` (tests/clients/test_python_client.py) sets:

ROUTEMATE_BASE_URL, ROUTEMATE_CLIENT_ID, ROUTEMATE_CLIENT_SECRET, ROUTEMATE_DRIVER_EMAIL: the edge
and one integration; REDIS_URL: the platform's Redis (to revoke tokens and drain a rate bucket);
ROUTEMATE_ROOT and ROUTEMATE_PYTHON: the checkout and its interpreter, for the `routemate` CLI and
the broker script.
"""

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

EXAMPLE_STOPS = [
    {"external_stop_id": "STOP-1", "address": "123 Queen St, Brisbane City QLD 4000", "parcel_count": 3},
    {"external_stop_id": "STOP-2", "address": "45 Grey St, South Brisbane QLD 4101", "parcel_count": 1},
    {"external_stop_id": "STOP-3", "address": "61 Merthyr Rd, New Farm QLD 4005", "parcel_count": 2},
    {"external_stop_id": "STOP-4", "address": "12 Given Tce, Paddington QLD 4064", "parcel_count": 1},
]


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run this suite through RouteMate's make test")
    return value


class Platform:
    """The platform under test, and the few levers the fault tests pull."""

    def __init__(self) -> None:
        self.base_url = env("ROUTEMATE_BASE_URL")
        self.client_id, self.client_secret = env("ROUTEMATE_CLIENT_ID"), env("ROUTEMATE_CLIENT_SECRET")
        self.driver = env("ROUTEMATE_DRIVER_EMAIL")
        self.redis_url = env("REDIS_URL")
        self.root = Path(env("ROUTEMATE_ROOT"))

    def job(self, **over) -> dict:
        body = {
            "external_job_id": f"PYCLIENT-{uuid.uuid4().hex[:12]}",
            "title": "python client test",
            "driver_email": self.driver,
            "stops": [dict(s) for s in EXAMPLE_STOPS],
        }
        return {**body, **over}

    def redis(self, *args: str) -> str:
        done = subprocess.run(["redis-cli", "-u", self.redis_url, *args], capture_output=True, text=True, check=True)
        return done.stdout

    def revoke_tokens(self, client_id: str) -> int:
        """Delete every live token of an integration from Redis, as an expiry would."""
        digests = self.redis("SMEMBERS", f"rm:client-tokens:{client_id}").split()
        for digest in digests:
            self.redis("DEL", f"rm:token:{digest}")
        self.redis("DEL", f"rm:client-tokens:{client_id}")
        return len(digests)

    def live_tokens(self, client_id: str) -> int:
        return int(self.redis("SCARD", f"rm:client-tokens:{client_id}").strip())

    def drain_rate_bucket(self, client_id: str) -> None:
        """Empty the integration's import bucket, stamped in the future, so exactly the next
        import is refused with 429 and the one after it is admitted."""
        self.redis("HSET", f"rm:rl:{client_id}", "tokens", "0", "ts", str(time.time() + 1000))

    def new_integration(self) -> dict:
        done = subprocess.run(
            [env("ROUTEMATE_PYTHON"), "-m", "routemate_cli.main", "integration", "create", "--org",
             f"pyclient-{uuid.uuid4().hex[:8]}", "--name", "python client"],
            cwd=self.root, capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return json.loads(done.stdout)

    def kafka(self, action: str) -> None:
        state = os.environ.get("VAR_DIR", str(self.root / "var")) + "/kafka"
        subprocess.run(
            ["bash", str(self.root / "deploy/kafka/kafka.sh"), action],
            env={**os.environ, "KAFKA_STATE_DIR": state}, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip

    def up(self) -> None:
        subprocess.run(
            ["bash", str(self.root / "deploy/local/platform.sh"), "up"], check=True, stdout=subprocess.DEVNULL
        )


@pytest.fixture(scope="session")
def platform() -> Platform:
    return Platform()
