"""Status service settings."""

from pydantic import Field

from shared.settings import PlatformSettings


class StatusSettings(PlatformSettings):
    status_port: int = 8083
    page_size_default: int = Field(50, ge=1, le=500)
    page_size_max: int = Field(200, ge=1, le=1000)
    projection_batch_size: int = Field(200, ge=1, le=5000, description="events applied per transaction, at most")
    outcome_ttl_seconds: int = Field(
        7 * 24 * 3600, ge=1, description="how long a settled job's outcome is kept in Redis for import replays"
    )

    outbox_poll_seconds: float = Field(
        0.5, gt=0, le=60, description="how often the webhook outbox relay looks for changes it was not told of"
    )

    @property
    def status_database_url(self) -> str:
        return self.sqlite_or_database_url("status")
