"""Geocoder settings."""

from pydantic import Field

from shared.lanes import LaneSettings
from shared.settings import DataKeySettings


class GeocoderSettings(LaneSettings, DataKeySettings):
    geocoder_port: int = 8084
    # The geocode cache lives in its own Redis, one that may evict (allkeys-lru): addresses are
    # chosen by callers, and filling that instance must never push out a token or a lockout.
    cache_redis_url: str = "redis://127.0.0.1:6380/0"
    # Comma-separated chain tried in order; `gazetteer` (offline, shipped) is always the last resort.
    geocoder_providers: str = "gazetteer"
    nominatim_domain: str = "nominatim.openstreetmap.org"
    nominatim_scheme: str = "https"
    nominatim_user_agent: str = "routemate-geocoder"
    provider_rate_per_second: float = Field(1.0, gt=0, description="Nominatim's public policy: 1 request/s")
    provider_timeout_seconds: float = Field(5.0, gt=0)
    provider_retries: int = Field(2, ge=0, le=5)
    breaker_failures: int = Field(5, ge=1, description="consecutive failures that open the circuit")
    breaker_reset_seconds: float = Field(30.0, gt=0)
    job_budget_seconds: float = Field(20.0, gt=0, description="provider time per job before falling back")
    country_bias: str = "AU"
    lookup_concurrency: int = Field(8, ge=1, le=64)
    cache_ttl_seconds: int = 30 * 86_400
    failure_cache_ttl_seconds: int = 600
    outlier_km: float = Field(150.0, gt=0, description="a stop this far from the others is flagged")
