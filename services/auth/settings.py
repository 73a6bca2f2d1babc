"""Auth service settings."""

from pydantic import Field, SecretStr, model_validator

from shared.settings import PlatformSettings

LOCAL_ADMIN_TOKEN = "routemate-local-admin"
LOCAL_PEPPER = "routemate-local-pepper-not-for-production"


class AuthSettings(PlatformSettings):
    auth_port: int = 8081
    token_ttl_seconds: int = Field(3600, ge=1, le=86_400)
    # Secrets: working defaults in local mode only; production must set them.
    admin_token: SecretStr | None = None
    secret_pepper: SecretStr | None = None
    lockout_threshold: int = Field(5, ge=1, description="failed attempts per client_id before lockout")
    ip_lockout_threshold: int = Field(20, ge=1, description="failed attempts per address before lockout")
    lockout_window_seconds: int = 600
    lockout_seconds: int = 300
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    max_token_request_bytes: int = 8192
    token_mint_per_minute: float = Field(30.0, gt=0, description="tokens one client_id may mint a minute, sustained")
    token_mint_burst: int = Field(10, ge=1, description="tokens one client_id may mint at once")

    @model_validator(mode="after")
    def _local_defaults(self) -> "AuthSettings":
        if self.environment == "local":
            object.__setattr__(self, "admin_token", self.admin_token or SecretStr(LOCAL_ADMIN_TOKEN))
            object.__setattr__(self, "secret_pepper", self.secret_pepper or SecretStr(LOCAL_PEPPER))
        elif not (self.admin_token and self.secret_pepper):
            raise ValueError("ADMIN_TOKEN and SECRET_PEPPER must be set outside local mode")
        return self

    @property
    def auth_database_url(self) -> str:
        return self.sqlite_or_database_url("auth")
