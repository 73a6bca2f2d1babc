"""Prometheus series only the ingest gateway defines (the cross-service ones are in shared/metrics.py)."""

from prometheus_client import Counter

RATE_LIMITED = Counter("routemate_rate_limited_total", "Imports refused by the per-integration rate limit")
LANE_PUBLISHED = Counter("routemate_jobs_published_total", "Imports published, by lane (normal, bulk)", ["lane"])
for _lane in ("normal", "bulk"):
    LANE_PUBLISHED.labels(_lane)
