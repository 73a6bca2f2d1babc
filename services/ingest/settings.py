"""Ingest gateway settings."""

from pydantic import Field

from shared.settings import DataKeySettings, TokenVerifierSettings


class IngestSettings(TokenVerifierSettings, DataKeySettings):
    ingest_port: int = 8082
    ingest_wait_seconds: float = Field(25.0, ge=0, le=120, description="how long an import waits for its route")
    max_stops: int = Field(500, ge=1, le=10_000)
    max_body_bytes: int = Field(5 * 1024 * 1024, ge=1024)
    rate_limit_per_second: float = Field(50.0, gt=0, description="sustained imports per integration")
    rate_limit_burst: int = Field(200, ge=1, description="imports an integration may post at once")
    idempotency_ttl_seconds: int = Field(7 * 86_400, ge=60)
    publish_timeout_seconds: float = Field(10.0, gt=0)
    fair_share_jobs: int = Field(
        2, ge=1, le=10_000, description="an organization's jobs in flight that travel the normal lane; more: bulk"
    )
    inflight_ttl_seconds: int = Field(
        3600, ge=60, description="a job still counted in flight after this long stops counting (lost settle)"
    )
    token_cache_seconds: float = Field(
        60.0,
        ge=0,
        le=3600,
        description="how long a verified token record is reused without reading it again (revocation is "
        "still seen at once: the integration's epoch is read on every import)",
    )
    token_cache_size: int = Field(10_000, ge=0, description="token records kept verified, least recently used out")
