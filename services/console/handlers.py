"""The console's rules: who may do what, which jobs are still moving, and the route drawing.

No HTTP types here; the pages (routes.py) ask these and call auth and status.
"""

import math
from dataclasses import dataclass
from typing import Any

# What each role may do. Admins manage members and credentials; developers manage integrations
# (and webhooks) and read jobs; viewers read jobs.
PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"read", "integrations", "drivers", "members", "activity"}),
    "developer": frozenset({"read", "integrations", "drivers", "activity"}),
    "viewer": frozenset({"read"}),
}
IN_FLIGHT = frozenset({"pending", "processing"})
JOB_STATUSES = ("pending", "processing", "assigned", "unassigned", "in_progress", "completed", "failed", "cancelled")
WEBHOOK_EVENTS = ("job.routed", "job.failed", "job.assigned", "job.in_progress", "job.completed", "stop.status_changed")
GRACE_CHOICES = {"0": "none: the old secret stops now", "3600": "1 hour", "86400": "24 hours", "604800": "7 days"}


def may(role: str | None, action: str) -> bool:
    return action in PERMISSIONS.get(role or "", frozenset())


def in_flight(jobs: list[dict[str, Any]]) -> bool:
    """Whether any of these jobs may still change on its own (being geocoded or routed)."""
    return any(job.get("status") in IN_FLIGHT for job in jobs)


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str
    status: str = ""


@dataclass(frozen=True)
class Drawing:
    width: int
    height: int
    depot: Point | None
    stops: list[Point]
    path: str  # the polyline's points, depot first, stops in visiting order


def draw_route(job: dict[str, Any], width: int = 640, height: int = 420, margin: int = 28) -> Drawing | None:
    """The route projected into a box: an equirectangular projection around the route's mean
    latitude (true enough at a city's scale), north up, aspect kept; None without placed stops."""
    stops = [s for s in job.get("stops", []) if s.get("lat") is not None and s.get("lng") is not None]
    depot = job.get("depot") if (job.get("depot") or {}).get("lat") is not None else None
    places = [(s["lat"], s["lng"]) for s in stops] + ([(depot["lat"], depot["lng"])] if depot else [])
    if not places:
        return None
    lats, lngs = [p[0] for p in places], [p[1] for p in places]
    shrink = math.cos(math.radians(sum(lats) / len(lats)))
    span_x = max((max(lngs) - min(lngs)) * shrink, 1e-6)
    span_y = max(max(lats) - min(lats), 1e-6)
    scale = min((width - 2 * margin) / span_x, (height - 2 * margin) / span_y)
    off_x = (width - span_x * scale) / 2
    off_y = (height - span_y * scale) / 2

    def at(lat: float, lng: float) -> tuple[float, float]:
        return round(off_x + (lng - min(lngs)) * shrink * scale, 1), round(
            height - off_y - (lat - min(lats)) * scale, 1
        )

    ordered = sorted(stops, key=lambda s: s.get("sequence") or 0)
    points = [Point(*at(s["lat"], s["lng"]), str(s.get("sequence") or "?"), s.get("status", "")) for s in ordered]
    home = Point(*at(depot["lat"], depot["lng"]), "depot") if depot else None
    path = " ".join(f"{p.x},{p.y}" for p in ([home] if home else []) + points)
    return Drawing(width, height, home, points, path)
