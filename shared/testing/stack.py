"""Where the platform under test listens: its defaults, or what the environment says (a second
platform on shifted ports, e.g. for a client library's tests beside a running one)."""

import os

EDGE = os.environ.get("ROUTEMATE_BASE_URL", "http://127.0.0.1:8080").rstrip("/")
BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
SERVICE_PORTS = {
    name: int(os.environ.get(f"{name.upper()}_PORT", default))
    for name, default in (
        ("auth", 8081),
        ("ingest", 8082),
        ("status", 8083),
        ("geocoder", 8084),
        ("optimizer", 8085),
        ("notifier", 8087),
    )
}
# Extra processes a test starts beside the platform (a second replica, a short-TTL auth): ports
# kept clear of the platform's and of a shifted second platform's.
EXTRA_PORT_BASE = int(os.environ.get("ROUTEMATE_EXTRA_PORT_BASE", "7000"))


PROMETHEUS_PORT = EXTRA_PORT_BASE + 90


def service_url(name: str) -> str:
    return f"http://127.0.0.1:{SERVICE_PORTS[name]}"


def extra_port(name: str) -> int:
    return EXTRA_PORT_BASE + SERVICE_PORTS[name] % 100
