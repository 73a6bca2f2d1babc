"""Prometheus series only the ingest gateway defines (the cross-service ones are in shared/metrics.py)."""

from prometheus_client import Counter

RATE_LIMITED = Counter("routemate_rate_limited_total", "Imports refused by the per-integration rate limit")
