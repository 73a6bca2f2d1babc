"""How values read on the pages: times in UTC to the minute, totals with their units."""

from datetime import datetime

from jinja2 import Environment


def when(value: str | datetime | None) -> str:
    if not value:
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return value.strftime("%Y-%m-%d %H:%M UTC")


def clock(value: str | None) -> str:
    return when(value)[11:16] if value else "—"


def install_filters(env: Environment) -> None:
    env.filters["when"] = when
    env.filters["clock"] = clock
