"""What every public edge accepts: JSON of bounded depth without NUL characters, text without
control characters, and times in a window around now (so no value can overflow or pin a job)."""

import json
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import Field

from shared.events import utcnow

MAX_JSON_DEPTH = 32
# When a delivery may be planned: start times and time windows.
PLAN_PAST, PLAN_FUTURE = timedelta(days=7), timedelta(days=400)
# When a reported event may have happened: stop outcomes (a little future for clock skew).
REPORT_PAST, REPORT_FUTURE = timedelta(days=30), timedelta(minutes=15)

# Free text from integrators: any length-bounded text but NUL (PostgreSQL cannot store it).
NO_NUL = r"^[^\x00]*$"


def SafeText(max_length: int, min_length: int = 0) -> Any:
    """A str field of at most `max_length` characters, without NUL."""
    return Annotated[str, Field(min_length=min_length, max_length=max_length, pattern=NO_NUL)]


class InvalidJson(ValueError):
    """The body is not JSON this platform accepts; `code` is the problem code, `pointer` where."""

    def __init__(self, code: str, reason: str, pointer: str = "") -> None:
        super().__init__(reason)
        self.code, self.reason, self.pointer = code, reason, pointer


def parse_json(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """JSON of at most `max_depth` nested arrays/objects and without NUL in any string or key."""
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidJson("invalid_json", f"The request body is not valid JSON: {exc}.") from None
    except RecursionError:
        raise InvalidJson("json_too_deep", f"The request body nests deeper than {max_depth} levels.") from None
    _check(value, max_depth)
    return value


def _check(root: Any, max_depth: int) -> None:
    """Iterative walk (a recursive one is what deep input attacks). The JSON pointer of a node is
    spelled out only when it is reported: each node carries its parent's path and its own key."""
    stack: list[tuple[Any, Any, int]] = [(root, None, 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                raise InvalidJson("invalid_text", "Text may not contain NUL characters.", _pointer(path))
            continue
        if not isinstance(value, dict | list):
            continue
        if depth >= max_depth:
            raise InvalidJson(
                "json_too_deep", f"The request body nests deeper than {max_depth} levels.", _pointer(path)
            )
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str) and "\x00" in key:
                raise InvalidJson("invalid_text", "Keys may not contain NUL characters.", _pointer(path))
            stack.append((item, (path, key), depth + 1))


def _pointer(path: Any) -> str:
    """The JSON pointer of a (parent path, key) chain; None is the root."""
    keys = []
    while path is not None:
        path, key = path
        keys.append(key)
    return "".join(f"/{_escape(key)}" for key in reversed(keys))


def _escape(key: object) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def within(value: datetime | None, past: timedelta, future: timedelta, name: str) -> None:
    """ValueError unless `value` (if given) carries an offset and lies in [now - past, now + future]."""
    if value is None:
        return
    if value.tzinfo is None:
        raise ValueError(f"{name} must carry a UTC offset (ISO 8601, e.g. 2026-11-28T09:00:00+10:00)")
    now = utcnow()
    if not now - past <= value <= now + future:
        raise ValueError(
            f"{name} must lie between {_days(past)} ago and {_days(future)} from now; got {value.isoformat()}"
        )


def _days(span: timedelta) -> str:
    return f"{span.days} days" if span.days else f"{int(span.total_seconds() // 60)} minutes"
