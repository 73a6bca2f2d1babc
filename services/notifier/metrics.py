"""Prometheus series of the notifier; endpoint ids appear only for the few oldest backlogs."""

from prometheus_client import Counter, Gauge, Histogram

from shared.metrics import LATENCY_BUCKETS

ATTEMPTS = Counter(
    "routemate_webhook_attempts_total",
    "Delivery attempts, by outcome (success, http_error, timeout, connection_error, refused)",
    ["outcome"],
)
DELIVERIES = Counter(
    "routemate_webhook_deliveries_total",
    "Deliveries settled, by outcome (succeeded, failed)",
    ["outcome"],
)
ATTEMPT_LATENCY = Histogram(
    "routemate_webhook_attempt_duration_seconds", "One attempt, connect to answer", buckets=LATENCY_BUCKETS
)
SOURCE_TO_RECEIPT = Histogram(
    "routemate_webhook_delivery_latency_seconds",
    "Source change -> successful delivery",
    buckets=(*LATENCY_BUCKETS, 60, 300, 1800, 7200),
)
BACKLOG = Gauge("routemate_webhook_backlog", "Deliveries pending (due or waiting for a retry)")
OLDEST_PENDING = Gauge("routemate_webhook_oldest_pending_age_seconds", "Age of the oldest pending delivery")
ENDPOINT_OLDEST_PENDING = Gauge(
    "routemate_webhook_endpoint_oldest_pending_age_seconds",
    "Age of the oldest pending delivery of the endpoints with the oldest backlogs (at most 10 endpoints)",
    ["endpoint"],
)
# The notifier's own lag: how long the longest-waiting *due* delivery has waited for the worker. A
# customer's dead endpoint makes the oldest pending delivery age for days (retries are scheduled
# hours apart); only this one says the notifier itself is falling behind.
DUE_LAG = Gauge("routemate_webhook_due_lag_seconds", "How long the longest-waiting due delivery has waited")
ENDPOINTS_BACKLOGGED = Gauge("routemate_webhook_endpoints_backlogged", "Endpoints with a pending delivery")
ENDPOINTS_DISABLED = Counter("routemate_webhook_endpoints_disabled_total", "Endpoints disabled by the notifier")
for outcome in ("success", "http_error", "timeout", "connection_error", "refused"):
    ATTEMPTS.labels(outcome)
for outcome in ("succeeded", "failed"):
    DELIVERIES.labels(outcome)
