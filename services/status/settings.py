"""Status service settings."""

from pydantic import Field

from shared.settings import TokenVerifierSettings


class StatusSettings(TokenVerifierSettings):
    status_port: int = 8083
    page_size_default: int = Field(50, ge=1, le=500)
    page_size_max: int = Field(200, ge=1, le=1000)
    projection_batch_size: int = Field(200, ge=1, le=5000, description="events applied per transaction, at most")
    outcome_ttl_seconds: int = Field(
        7 * 24 * 3600, ge=1, description="how long a settled job's outcome is kept in Redis for import replays"
    )

    @property
    def status_database_url(self) -> str:
        return self.sqlite_or_database_url("status")
