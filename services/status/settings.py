"""Status service settings."""

from pydantic import Field, SecretStr, model_validator

from shared.settings import DataKeySettings, TokenVerifierSettings, internal_token_or_default


class StatusSettings(TokenVerifierSettings, DataKeySettings):
    status_port: int = 8083
    page_size_default: int = Field(50, ge=1, le=500)
    page_size_max: int = Field(200, ge=1, le=1000)
    max_page_bytes: int = Field(
        4 * 1024 * 1024, ge=64 * 1024, description="JSON of the jobs on one list page, at most (one job always fits)"
    )
    job_reads_per_second: float = Field(20.0, gt=0, description="job reads per integration, sustained")
    job_read_burst: int = Field(100, ge=1, description="job reads an integration may make at once")
    stop_updates_per_second: float = Field(20.0, gt=0, description="stop status updates per integration, sustained")
    stop_update_burst: int = Field(100, ge=1, description="stop status updates an integration may post at once")
    projection_batch_size: int = Field(200, ge=1, le=5000, description="events applied per transaction, at most")
    # Only while several jobs' events flow (shared.broker.lingering): a single job's events go at once.
    projection_linger_ms: int = Field(
        20, ge=0, le=1000, description="how long the projection collects events after the first one of a batch"
    )
    # A day covers an integrator's retries of an import; a replay after that answers 202 with the
    # job's Location instead of the route. Outcomes dominate the durable Redis (README, sizing).
    outcome_ttl_seconds: int = Field(
        24 * 3600, ge=1, description="how long a settled job's outcome is kept in Redis for import replays"
    )

    outbox_poll_seconds: float = Field(
        0.5, gt=0, le=60, description="how often the webhook outbox relay looks for changes it was not told of"
    )

    # Retention of finished jobs (README, "Erasing and retaining"). Each organization's own setting
    # comes from the auth admin API (`routemate org retention`); these are the operator's: an
    # override for every organization, and a cap no organization's setting may pass. Unset: kept.
    job_retention_days: float | None = Field(None, gt=0, description="platform-wide override, days")
    job_retention_max_days: float | None = Field(None, gt=0, description="cap on any organization's setting, days")
    job_retention_check_seconds: float = Field(60.0, gt=0, description="how often the retention task runs")
    status_group: str = Field("routemate-status", description="the projection's consumer group")
    # Snapshots of the read model that `routemate status rebuild` starts from (README, "The event log").
    snapshot_dir: str | None = Field(None, description="default: VAR_DIR/snapshots")
    snapshot_interval_seconds: float | None = Field(None, gt=0, description="unset: only `routemate status snapshot`")
    snapshots_kept: int = Field(3, ge=1, le=100)

    # The console's credential for the internal read endpoints (/internal/v1, not routed by the edge).
    internal_token: SecretStr | None = None

    @model_validator(mode="after")
    def _internal_token(self) -> "StatusSettings":
        object.__setattr__(self, "internal_token", internal_token_or_default(self.environment, self.internal_token))
        return self

    @property
    def status_database_url(self) -> str:
        return self.sqlite_or_database_url("status")
