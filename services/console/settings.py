"""Console settings: where auth's and status's internal endpoints are, how sessions live."""

from pydantic import Field, SecretStr, model_validator

from shared.settings import PlatformSettings, internal_token_or_default


class ConsoleSettings(PlatformSettings):
    console_port: int = 8086
    # auth's admin listener (members, credentials, drivers, activity) and the status service
    # (jobs): both internal, never through the edge.
    admin_url: str = "http://127.0.0.1:8091"
    status_url: str = "http://127.0.0.1:8083"
    notifier_admin_url: str = "http://127.0.0.1:8097"  # its admin listener (the webhooks page)
    internal_token: SecretStr | None = None
    # Where members open the console (the edge's base URL), as the CLI's: set-up links are built on it.
    routemate_base_url: str = "https://127.0.0.1:8443"
    session_idle_seconds: int = Field(30 * 60, ge=60, le=7 * 86_400, description="a session unused this long ends")
    session_absolute_seconds: int = Field(12 * 3600, ge=300, le=30 * 86_400, description="a session ends this old")
    jobs_page_size: int = Field(25, ge=5, le=200)
    refresh_seconds: int = Field(5, ge=1, le=300, description="how often a page with jobs in flight reloads itself")
    # Proxies whose X-Real-IP / X-Forwarded-Proto are believed (the edge).
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")

    @model_validator(mode="after")
    def _internal_token(self) -> "ConsoleSettings":
        object.__setattr__(self, "internal_token", internal_token_or_default(self.environment, self.internal_token))
        return self
