"""The console's rules without HTTP: roles, the route drawing, session expiry."""

import time

from services.console.adapters.sessions import Session, SessionStore
from services.console.handlers import draw_route, in_flight, may
from shared.testing.fakes import MemoryRedis


def test_roles_allow_what_the_issue_says():
    assert may("admin", "members") and may("admin", "integrations")
    assert may("developer", "integrations") and not may("developer", "members")
    assert may("viewer", "read") and not may("viewer", "integrations") and not may(None, "read")


def test_the_drawing_keeps_north_up_the_visiting_order_and_the_depot():
    job = {
        "depot": {"lat": -27.47, "lng": 153.02},
        "stops": [
            {"sequence": 2, "lat": -27.40, "lng": 153.10, "status": "pending"},  # north-east
            {"sequence": 1, "lat": -27.50, "lng": 152.95, "status": "completed"},  # south-west
            {"sequence": None, "lat": None, "lng": None},  # not placed: not drawn
        ],
    }
    drawing = draw_route(job)
    assert [p.label for p in drawing.stops] == ["1", "2"]
    first, second = drawing.stops
    assert second.y < first.y and second.x > first.x  # north is up, east is right
    assert drawing.path.split()[0] == f"{drawing.depot.x},{drawing.depot.y}"  # the path starts at the depot
    for p in [*drawing.stops, drawing.depot]:
        assert 0 <= p.x <= drawing.width and 0 <= p.y <= drawing.height
    assert draw_route({"stops": [{"lat": None, "lng": None}]}) is None


def test_jobs_in_flight_are_the_pending_and_processing_ones():
    assert in_flight([{"status": "completed"}, {"status": "processing"}])
    assert not in_flight([{"status": "assigned"}, {"status": "failed"}])


async def test_a_session_ends_when_idle_or_when_too_old(monkeypatch):
    redis = MemoryRedis()
    store = SessionStore(redis, idle_seconds=60, absolute_seconds=3600)
    sid = await store.start(Session(member_id="mem_1"))
    assert sid not in str(redis.values) and (await store.load(sid)).member_id == "mem_1"
    assert await store.load("forged") is None and await store.load("x" * 500) is None
    old = await store.start(Session(member_id="mem_1", created=time.time() - 3601))
    assert await store.load(old) is None
    monkeypatch.setattr(time, "monotonic", lambda: 10**12)  # the idle expiry has passed
    assert await store.load(sid) is None
