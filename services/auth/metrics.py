"""Prometheus series only the auth service defines (the shared ones are in shared/metrics.py)."""

from prometheus_client import Counter

# Outcomes: invalid_client (wrong or unknown credentials), locked_out (refused before checking).
AUTH_FAILURES = Counter("routemate_auth_failures_total", "Token requests refused, by outcome", ["outcome"])
