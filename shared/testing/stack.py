"""Where the platform under test listens: its defaults, or what the environment says (a second
platform on shifted ports, e.g. for a client library's tests beside a running one)."""

import os
from pathlib import Path
from urllib.parse import urlsplit

EDGE = os.environ.get("ROUTEMATE_BASE_URL", "http://127.0.0.1:8080").rstrip("/")
# The edge's https listener, and the CA its certificate is signed by: the local CA `make up` made
# under var/tls, or the one EDGE_TLS_CA names for an operator's own certificate.
EDGE_TLS_PORT = int(os.environ.get("EDGE_TLS_PORT", "8443"))
EDGE_TLS = os.environ.get("ROUTEMATE_TLS_BASE_URL", f"https://127.0.0.1:{EDGE_TLS_PORT}").rstrip("/")
VAR = Path(os.environ.get("VAR_DIR") or Path(__file__).resolve().parents[2] / "var")
TLS_CA = Path(os.environ.get("EDGE_TLS_CA") or VAR / "tls/ca.crt")
BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
# The evictable cache instance (the geocode cache): CACHE_REDIS_URL, or the durable port + 1 as
# deploy/local/platform.sh starts it.
CACHE_REDIS_URL = os.environ.get("CACHE_REDIS_URL", f"redis://127.0.0.1:{(urlsplit(REDIS_URL).port or 6379) + 1}/0")
SERVICE_PORTS = {
    name: int(os.environ.get(f"{name.upper()}_PORT", default))
    for name, default in (
        ("auth", 8081),
        ("ingest", 8082),
        ("status", 8083),
        ("geocoder", 8084),
        ("optimizer", 8085),
        ("notifier", 8087),
        ("console", 8086),
    )
}
# The auth admin API's own listener: AUTH_ADMIN_PORT, or AUTH_PORT+10 as deploy/local/platform.sh derives it.
AUTH_ADMIN_PORT = int(os.environ.get("AUTH_ADMIN_PORT", SERVICE_PORTS["auth"] + 10))
ADMIN_URL = f"http://127.0.0.1:{AUTH_ADMIN_PORT}"
# The notifier's admin API (the `routemate webhook` CLI) likewise: NOTIFIER_ADMIN_PORT or NOTIFIER_PORT+10.
NOTIFIER_ADMIN_PORT = int(os.environ.get("NOTIFIER_ADMIN_PORT", SERVICE_PORTS["notifier"] + 10))
NOTIFIER_ADMIN_URL = f"http://127.0.0.1:{NOTIFIER_ADMIN_PORT}"
# Extra processes a test starts beside the platform (a second replica, a short-TTL auth): ports
# kept clear of the platform's and of a shifted second platform's.
EXTRA_PORT_BASE = int(os.environ.get("ROUTEMATE_EXTRA_PORT_BASE", "7000"))


PROMETHEUS_PORT = EXTRA_PORT_BASE + 90


def service_url(name: str) -> str:
    return f"http://127.0.0.1:{SERVICE_PORTS[name]}"


def extra_port(name: str) -> int:
    return EXTRA_PORT_BASE + SERVICE_PORTS[name] % 100
