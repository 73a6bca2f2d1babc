"""Auth service settings."""

from pydantic import Field, SecretStr, model_validator

from shared.settings import TokenVerifierSettings, internal_token_or_default, require_strong

LOCAL_ADMIN_TOKEN = "routemate-local-admin"
LOCAL_PEPPER = "routemate-local-pepper-not-for-production"


class AuthSettings(TokenVerifierSettings):
    auth_port: int = 8081
    # The admin API's own listener (never routed by the edge); bound to `host` like the public one.
    auth_admin_port: int = 8091
    token_ttl_seconds: int = Field(3600, ge=1, le=86_400)
    # Secrets: working defaults in local mode only; production must set strong ones.
    admin_token: SecretStr | None = None
    secret_pepper: SecretStr | None = None
    # Brute force: failures are counted per (client_id, address) pair, so an attacker slows down
    # and locks only themselves; the client's right secret from another address still works.
    lockout_threshold: int = Field(5, ge=1, description="failures per (client_id, address) before that pair is locked")
    ip_lockout_threshold: int = Field(
        50, ge=1, description="failures per address, across client_ids (credential stuffing), before it is locked"
    )
    lockout_window_seconds: int = Field(600, ge=1)
    lockout_seconds: int = Field(300, ge=1)
    failure_delay_cap_seconds: float = Field(1.0, ge=0, le=10)
    # Proxies whose X-Real-IP / X-Forwarded-For are believed (addresses or CIDR networks). Any
    # other peer is the caller itself, whatever headers it sends.
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    admin_failure_threshold: int = Field(10, ge=1, description="wrong admin tokens per address before 429")
    max_token_request_bytes: int = 8192
    token_mint_per_minute: float = Field(30.0, gt=0, description="tokens one client_id may mint a minute, sustained")
    token_mint_burst: int = Field(10, ge=1, description="tokens one client_id may mint at once")
    # The console's credential for the internal endpoints on the admin listener (/internal/v1).
    internal_token: SecretStr | None = None
    setup_link_hours: int = Field(72, ge=1, le=720, description="how long a member's set-up link works")

    @model_validator(mode="after")
    def _local_defaults(self) -> "AuthSettings":
        if self.environment == "local":
            object.__setattr__(self, "admin_token", self.admin_token or SecretStr(LOCAL_ADMIN_TOKEN))
            object.__setattr__(self, "secret_pepper", self.secret_pepper or SecretStr(LOCAL_PEPPER))
        require_strong(
            self.environment,
            {"ADMIN_TOKEN": self.admin_token, "SECRET_PEPPER": self.secret_pepper},
            frozenset({LOCAL_ADMIN_TOKEN, LOCAL_PEPPER}),
        )
        object.__setattr__(self, "internal_token", internal_token_or_default(self.environment, self.internal_token))
        if self.auth_admin_port == self.auth_port:
            raise ValueError("AUTH_ADMIN_PORT must differ from AUTH_PORT: the admin API has its own listener")
        return self

    @property
    def auth_database_url(self) -> str:
        return self.sqlite_or_database_url("auth")
