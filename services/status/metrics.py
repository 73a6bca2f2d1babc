"""Prometheus series only the status service defines (the shared ones are in shared/metrics.py)."""

from prometheus_client import Counter, Histogram

from shared.metrics import LATENCY_BUCKETS

# Only the status projection sees both ends of a job: the import accepted, and its route published.
JOB_LATENCY = Histogram(
    "routemate_job_end_to_end_seconds",
    "Import accepted -> route published, seen by the status projection",
    buckets=LATENCY_BUCKETS,
)
RATE_LIMITED = Counter(
    "routemate_status_rate_limited_total",
    "Job reads and stop updates refused by the per-integration rate limits",
    ["kind"],
)
ERASED_JOBS = Counter(
    "routemate_jobs_erased_total",
    "Jobs erased (data key destroyed, rows deleted), by why: request, retention, organization",
    ["reason"],
)
