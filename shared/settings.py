"""The settings base every service's pydantic-settings class extends; nothing else reads the environment."""

from pathlib import Path
from typing import Literal

from pydantic import Field
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
    kafka_max_message_bytes: int = Field(KAFKA_MAX_MESSAGE_BYTES, ge=1024 * 1024, le=64 * 1024 * 1024)
    redis_url: str = "redis://127.0.0.1:6379/0"
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

    def sqlite_or_database_url(self, name: str) -> str:
        """The configured database, or the service's own SQLite file by default."""
        if self.database_url:
            return self.database_url
        self.var_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{self.var_dir / f'{name}.db'}"
