"""Notifier settings: where endpoints and deliveries are kept, how deliveries are paced and retried."""

from pydantic import Field, SecretStr, model_validator

from shared.settings import LOCAL_INTERNAL_TOKEN, DataKeySettings, TokenVerifierSettings, internal_token_or_default

LOCAL_SECRET_KEY = "local-only-webhook-secret-key-do-not-use-in-production"


class NotifierSettings(TokenVerifierSettings, DataKeySettings):
    notifier_port: int = 8087
    # The operators' admin API (the `routemate webhook` CLI) has its own listener, never routed by
    # the edge; bound to `host` like the public one (deploy/local/platform.sh: NOTIFIER_PORT+10).
    notifier_admin_port: int = 8097
    # Encrypts the endpoints' signing secrets at rest (AES-GCM, a key derived from this). Required
    # and at least 32 characters in production; the local default only works locally.
    webhook_secret_key: str = Field(LOCAL_SECRET_KEY, min_length=16, repr=False)
    # For local testing only: lets endpoints resolve to loopback and private addresses.
    webhook_allow_private_targets: bool = False
    webhook_timeout_seconds: float = Field(10.0, gt=0, le=60)
    # Multiplies the retry schedule (5 s ... 10 h): tests shrink it, production keeps 1.
    webhook_retry_scale: float = Field(1.0, gt=0, le=10)
    webhook_endpoint_concurrency: int = Field(4, ge=1, le=64, description="attempts in flight per endpoint")
    webhook_global_concurrency: int = Field(200, ge=1, le=5000, description="attempts in flight in this process")
    webhook_disable_after_seconds: float = Field(3 * 24 * 3600, gt=0, description="failing this long disables")
    webhook_poll_seconds: float = Field(0.5, gt=0, le=60, description="how often the worker looks for due deliveries")
    webhook_max_endpoints_per_org: int = Field(20, ge=1, le=1000)
    notifier_group: str = "routemate-notifier"
    changes_linger_ms: int = Field(
        50, ge=0, le=1000, description="how long the changes' consumer collects after the first change of a batch"
    )
    page_size: int = Field(50, ge=1, le=500)
    # The operators' admin API (the CLI); the same ADMIN_TOKEN as the auth service's.
    admin_token: SecretStr = SecretStr("routemate-local-admin")
    # The console's credential (INTERNAL_TOKEN) for the same admin API: its webhooks page. Unset in
    # production: the console has no webhooks page there.
    internal_token: SecretStr | None = None

    @model_validator(mode="after")
    def _production_needs_a_real_key(self) -> "NotifierSettings":
        if self.environment == "local" and self.internal_token is None:
            object.__setattr__(self, "internal_token", SecretStr(LOCAL_INTERNAL_TOKEN))
        if self.internal_token is not None:
            internal_token_or_default(self.environment, self.internal_token)
        if self.notifier_admin_port == self.notifier_port:
            raise ValueError("NOTIFIER_ADMIN_PORT must differ from NOTIFIER_PORT: the admin API has its own listener")
        if self.environment == "production":
            if self.admin_token.get_secret_value() == "routemate-local-admin":
                raise ValueError("ADMIN_TOKEN must be set in production")
            if self.webhook_secret_key == LOCAL_SECRET_KEY or len(self.webhook_secret_key) < 32:
                raise ValueError("WEBHOOK_SECRET_KEY must be set to at least 32 random characters in production")
            if self.webhook_allow_private_targets:
                raise ValueError("WEBHOOK_ALLOW_PRIVATE_TARGETS is for local testing only, never in production")
        return self

    @property
    def notifier_database_url(self) -> str:
        return self.sqlite_or_database_url("notifier")
