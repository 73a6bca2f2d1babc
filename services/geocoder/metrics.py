"""Geocoder metrics: lookups by provider and outcome, cache hits, provider latency, circuit state."""

from prometheus_client import Counter, Gauge, Histogram

LOOKUPS = Counter("routemate_geocode_lookups_total", "Provider lookups by outcome", ["provider", "outcome"])
CACHE = Counter("routemate_geocode_cache_total", "Geocode cache lookups", ["result"])
PROVIDER_LATENCY = Histogram(
    "routemate_geocode_provider_seconds",
    "Provider call latency",
    ["provider"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)
CIRCUIT_OPEN = Gauge("routemate_geocode_circuit_open", "1 while a provider's circuit is open", ["provider"])
