"""The settings base every service's pydantic-settings class extends; nothing else reads the environment."""

import ssl
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Kafka's one-message limit, set deliberately on the broker, every topic and every producer and
# consumer (the defaults cap near 1 MiB, which a valid 500-stop import can pass).
KAFKA_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
# What one event's JSON may take: the limit less room for the record batch, key and headers.
EVENT_BUDGET_BYTES = KAFKA_MAX_MESSAGE_BYTES - 64 * 1024


class PlatformSettings(BaseSettings):
    """Settings shared by every service: where Kafka, Redis and the database are."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    environment: Literal["local", "production"] = "local"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    topic_partitions: int = Field(12, ge=1, le=1000)
    topic_replication: int = Field(1, ge=1, le=7)
    # With replication 3, 2: an acks=all write is on two nodes before it is acknowledged, and
    # producing goes on while any one node is down.
    topic_min_insync_replicas: int = Field(1, ge=1, le=7)
    kafka_max_message_bytes: int = Field(KAFKA_MAX_MESSAGE_BYTES, ge=1024 * 1024, le=64 * 1024 * 1024)
    # How long a producer holds a record for others bound to the same partition leader. 0: the
    # stages await each event's ack before taking the next message, so a linger is added to every
    # hop; measured side by side (bench/pipeline_burst.py), 5 ms cut produce requests by a fifth
    # but lowered the burst's ratio (0.33 against 0.51 at 0). A deployment with many concurrent
    # publishers per process may still trade a few ms for fewer requests.
    kafka_linger_ms: int = Field(0, ge=0, le=1000)
    # The most a producer puts in one batch for one partition. aiokafka sends one produce request
    # per broker at a time, with at most one batch per partition, and a send that does not fit the
    # partition's open batch waits for it to go out: at aiokafka's 16 KiB, one 20-stop import
    # (8.4 KB sealed) filled a batch, so a burst of concurrent imports went to Kafka one per
    # partition per round trip. At 1 MiB the imports that arrive while a request is in flight
    # share the next one; each still awaits its own ack (acks=all), nothing lingers. At most
    # KAFKA_MAX_MESSAGE_BYTES (a batch is one record set to the broker).
    kafka_max_batch_bytes: int = Field(1024 * 1024, ge=16 * 1024, le=KAFKA_MAX_MESSAGE_BYTES)
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Connections per Redis client and process. A caller past the cap waits up to
    # REDIS_POOL_TIMEOUT_SECONDS for one to come free (redis-py's own pool refuses at once with
    # "Too many connections": a burst of 200 jobs dropped the status service's outcomes that way).
    redis_max_connections: int = Field(64, ge=1, le=10_000)
    redis_pool_timeout_seconds: float = Field(5.0, gt=0, le=60)
    # One URL for every service that keeps tables (PostgreSQL in production); unset means
    # each service uses its own SQLite file under var_dir.
    database_url: str | None = None
    var_dir: Path = PROJECT_ROOT / "var"
    host: str = "127.0.0.1"
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    # Unset: logs go to stderr (containers). Set (the local platform does): a file rotated at
    # log_max_bytes with log_backups old files, so disk use for logs is bounded.
    log_file: Path | None = None
    log_max_bytes: int = Field(20 * 1024 * 1024, ge=64 * 1024)
    log_backups: int = Field(3, ge=1, le=50)
    # The cyclic garbage collector's youngest generation runs every this many allocations (Python's
    # default is 700), and what a service holds once started is frozen out of its sight
    # (shared/service.settle_heap). 0: Python's defaults.
    gc_gen0_threshold: int = Field(10_000, ge=0, le=1_000_000)
    # Kafka client security: PLAINTEXT locally (loopback only); SASL_PLAINTEXT or SASL_SSL with
    # SCRAM in compose and Kubernetes (README, "Security").
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None

    @model_validator(mode="after")
    def _sasl_complete(self) -> "PlatformSettings":
        if self.kafka_security_protocol != "PLAINTEXT" and not (self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError("KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are required with SASL")
        if self.topic_min_insync_replicas > self.topic_replication:
            raise ValueError("TOPIC_MIN_INSYNC_REPLICAS cannot exceed TOPIC_REPLICATION (every write would be refused)")
        return self

    def kafka_client_security(self) -> dict[str, object]:
        """The security arguments every aiokafka client (producer, consumer, admin) takes."""
        if self.kafka_security_protocol == "PLAINTEXT":
            return {}
        assert self.kafka_sasl_password is not None
        tls = {"ssl_context": ssl.create_default_context()} if self.kafka_security_protocol == "SASL_SSL" else {}
        return tls | {
            "security_protocol": self.kafka_security_protocol,
            "sasl_mechanism": self.kafka_sasl_mechanism,
            "sasl_plain_username": self.kafka_sasl_username,
            "sasl_plain_password": self.kafka_sasl_password.get_secret_value(),
        }

    def sqlite_or_database_url(self, name: str) -> str:
        """The configured database, or the service's own SQLite file by default."""
        if self.database_url:
            return self.database_url
        self.var_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{self.var_dir / f'{name}.db'}"


# Values that must never guard a production deployment: the local defaults, the manifests'
# placeholders and the usual guesses.
KNOWN_WEAK_SECRETS = frozenset(
    {"replace-me", "changeme", "change-me", "secret", "password", "admin", "token", "test", "example"}
)
MIN_SECRET_CHARS = 32


def weak_secret(value: str, local_defaults: frozenset[str] = frozenset()) -> str | None:
    """Why `value` may not guard production, or None when it may."""
    if value in local_defaults or value.lower() in KNOWN_WEAK_SECRETS:
        return "is a published or placeholder value"
    if len(value) < MIN_SECRET_CHARS:
        return f"is shorter than {MIN_SECRET_CHARS} characters"
    if len(set(value)) < 8:
        return "has too few distinct characters"
    return None


def require_strong(environment: str, secrets: dict[str, SecretStr | None], local_defaults: frozenset[str]) -> None:
    """In production, every named secret is set and strong; ValueError naming the first that is not."""
    if environment != "production":
        return
    for name, secret in secrets.items():
        if secret is None or not secret.get_secret_value():
            raise ValueError(f"{name} must be set in production")
        if why := weak_secret(secret.get_secret_value(), local_defaults):
            raise ValueError(f"{name} {why}; generate one with: openssl rand -base64 48")


# The credential the console presents to the auth and status services' internal endpoints (never
# routed by the edge). Same value in the three services; production must set a strong one.
LOCAL_INTERNAL_TOKEN = "routemate-local-internal-token-not-for-production"


def internal_token_or_default(environment: str, token: SecretStr | None) -> SecretStr:
    """INTERNAL_TOKEN: the local default in local mode; strong and set in production."""
    if environment == "local" and token is None:
        token = SecretStr(LOCAL_INTERNAL_TOKEN)
    require_strong(environment, {"INTERNAL_TOKEN": token}, frozenset({LOCAL_INTERNAL_TOKEN}))
    assert token is not None
    return token


LOCAL_TOKEN_SIGNING_KEY = "routemate-local-token-signing-key-not-for-production"


class TokenVerifierSettings(PlatformSettings):
    """Settings of a service that mints or checks bearer tokens: the key that binds token records
    to the server (auth signs with it, ingest and status verify)."""

    token_signing_key: SecretStr | None = None

    @model_validator(mode="after")
    def _signing_key(self) -> "TokenVerifierSettings":
        if self.environment == "local" and self.token_signing_key is None:
            object.__setattr__(self, "token_signing_key", SecretStr(LOCAL_TOKEN_SIGNING_KEY))
        require_strong(
            self.environment, {"TOKEN_SIGNING_KEY": self.token_signing_key}, frozenset({LOCAL_TOKEN_SIGNING_KEY})
        )
        return self

    @property
    def signing_key(self) -> bytes:
        assert self.token_signing_key is not None
        return self.token_signing_key.get_secret_value().encode()


LOCAL_DATA_KEY_ENCRYPTION_KEY = "routemate-local-data-key-encryption-key-not-for-production"


class DataKeySettings(PlatformSettings):
    """Settings of a service that seals or opens the personal fields of job events (shared/pii.py):
    the key-encryption key that wraps every job's data key in the durable Redis."""

    data_key_encryption_key: SecretStr | None = Field(None, repr=False)
    # The unwrapped data keys a stage keeps in memory (shared/pii.py DataKeys): an erasure made by
    # another process that this one did not see reaches it within this many seconds at most.
    data_key_cache_seconds: float = Field(
        5.0, ge=0, le=60, description="how long a read data key is kept in process (0: read every time)"
    )
    data_key_cache_size: int = Field(10_000, ge=0, le=1_000_000, description="data keys kept in process, at most")

    @model_validator(mode="after")
    def _data_key_encryption_key(self) -> "DataKeySettings":
        if self.environment == "local" and self.data_key_encryption_key is None:
            object.__setattr__(self, "data_key_encryption_key", SecretStr(LOCAL_DATA_KEY_ENCRYPTION_KEY))
        require_strong(
            self.environment,
            {"DATA_KEY_ENCRYPTION_KEY": self.data_key_encryption_key},
            frozenset({LOCAL_DATA_KEY_ENCRYPTION_KEY}),
        )
        return self

    @property
    def kek_material(self) -> str:
        assert self.data_key_encryption_key is not None
        return self.data_key_encryption_key.get_secret_value()
