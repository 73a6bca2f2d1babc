from datetime import datetime, timedelta, timezone

from services.optimizer.handlers import optimize
from services.optimizer.matrix import GreatCircle, RoutingUnavailable
from services.optimizer.settings import OptimizerSettings
from shared.events import JobFailed, RouteOptimized, StopsGeocoded
from shared.events.jobs import JobSpec, Location, RequestedStop, TimeWindow

BRISBANE = [(-27.468, 153.022), (-27.484, 153.010), (-27.470, 153.045), (-27.433, 153.044), (-27.456, 153.060)]
START = datetime(2026, 11, 30, 8, 0, tzinfo=timezone(timedelta(hours=10)))


def geocoded(points, *, windows=None, depot=None, ret=False, capacity=None) -> StopsGeocoded:
    stops = tuple(
        RequestedStop(
            stop_id=f"j.{i}",
            external_stop_id=f"S{i}",
            address=f"{i} St",
            parcel_count=2,
            time_window=(windows or {}).get(i),
        )
        for i in range(len(points))
    )
    spec = JobSpec(
        external_job_id="X",
        title="t",
        stops=stops,
        payload_hash="h",
        start_time=START,
        return_to_depot=ret,
        vehicle_capacity=capacity,
    )
    locs = tuple(
        Location(
            stop_id=s.stop_id,
            external_stop_id=s.external_stop_id,
            lat=p[0] if p else None,
            lng=p[1] if p else None,
            precision="rooftop" if p else None,
        )
        for s, p in zip(stops, points, strict=False)
    )
    dep = Location(stop_id="depot", external_stop_id="depot", lat=depot[0], lng=depot[1]) if depot else None
    return StopsGeocoded(org_id="o", job_id="j", job=spec, locations=locs, depot=dep)


def test_a_route_has_every_placed_stop_with_legs_etas_and_totals():
    out = optimize(geocoded(BRISBANE, depot=(-27.45, 153.03), ret=True), OptimizerSettings(), GreatCircle(1.3, 35))
    assert isinstance(out, RouteOptimized)
    assert [leg.sequence for leg in out.route] == [1, 2, 3, 4, 5]
    assert sorted(leg.external_stop_id for leg in out.route) == [f"S{i}" for i in range(5)]
    assert sum(leg.leg_distance_km for leg in out.route) < out.totals.total_distance_km  # plus the way home
    etas = [leg.eta_offset_minutes for leg in out.route]
    assert etas == sorted(etas) and etas[0] > 0
    assert out.solver.matrix_provider == "great_circle" and out.start_time == START


def test_unplaced_stops_stay_unrouted_and_unservable_windows_are_warned():
    windows = {1: TimeWindow(start=START - timedelta(hours=3), end=START - timedelta(hours=2))}
    out = optimize(
        geocoded([BRISBANE[0], BRISBANE[1], None, BRISBANE[3]], windows=windows),
        OptimizerSettings(),
        GreatCircle(1.3, 35),
    )
    assert {(u.external_stop_id, u.reason) for u in out.unrouted} == {
        ("S2", "GEOCODE_FAILED"),
        ("S1", "TIME_WINDOW_VIOLATION"),
    }
    assert ("TIME_WINDOW_VIOLATION", "S1") in [(w.code, w.external_stop_id) for w in out.warnings]


def test_capacity_is_respected():
    out = optimize(geocoded(BRISBANE, capacity=6), OptimizerSettings(), GreatCircle(1.3, 35))
    assert len(out.route) == 3 and {u.reason for u in out.unrouted} == {"CAPACITY_EXCEEDED"}


def test_a_routing_outage_falls_back_to_great_circle_with_a_warning():
    class DeadRouting:
        name = "osrm"

        def build(self, points):
            raise RoutingUnavailable("connection refused")

    out = optimize(geocoded(BRISBANE), OptimizerSettings(), DeadRouting())
    assert out.solver.matrix_provider == "great_circle"
    assert "ROUTING_FALLBACK" in [w.code for w in out.warnings]


def test_nothing_routable_is_a_failure():
    out = optimize(geocoded([None, None]), OptimizerSettings(), GreatCircle(1.3, 35))
    assert isinstance(out, JobFailed) and out.code == "NO_ROUTABLE_STOPS"
