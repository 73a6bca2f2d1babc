"""JSON-lines logging with the service name, correlation id and job id on every line."""

import json
import logging
import logging.handlers
import sys
from contextvars import ContextVar
from pathlib import Path

correlation_id: ContextVar[str] = ContextVar("correlation_id", default="")
job_id: ContextVar[str] = ContextVar("job_id", default="")

_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line; extra fields passed with `extra=` are kept."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if cid := correlation_id.get():
            line["correlation_id"] = cid
        if jid := job_id.get():
            line["job_id"] = jid
        line.update({k: v for k, v in record.__dict__.items() if k not in _RESERVED})
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class Repeats(logging.Filter):
    """Lets one identical message through per `every_s` seconds (client libraries retry in tight loops)."""

    def __init__(self, every_s: float = 10.0) -> None:
        super().__init__()
        self.every_s, self.last = every_s, {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = record.created
        if now - self.last.get(key, 0.0) < self.every_s:
            return False
        self.last[key] = now
        return True


def configure_logging(
    service: str, level: str = "INFO", fmt: str = "json", file: Path | None = None, max_bytes: int = 0, backups: int = 3
) -> None:
    """Route every logger (ours, uvicorn's, FastStream's) through one formatter: on stderr, or into
    `file`, rotated at `max_bytes` with `backups` old files kept, so a long outage cannot fill the disk."""
    handler: logging.Handler
    if file is None:
        handler = logging.StreamHandler(sys.stderr)
    else:
        file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(file, maxBytes=max_bytes, backupCount=backups)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s {service} %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "uvicorn.access", "httpx", "faststream.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    handler.addFilter(Repeats())
