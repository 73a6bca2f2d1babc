"""The optimize use-case on great-circle matrices: routes, unrouted stops, fallbacks, failures."""

from datetime import timedelta

from services.optimizer.adapters import great_circle
from services.optimizer.adapters.matrix import RoutingUnavailable
from services.optimizer.handlers import optimize
from services.optimizer.settings import OptimizerSettings
from shared.events import JobFailed, RouteOptimized
from shared.events.jobs import TimeWindow
from shared.testing.builders import BRISBANE, START, geocoded
from shared.vocabulary import FailureCode, UnroutedReason, WarningCode

SETTINGS = OptimizerSettings()
MATRICES = great_circle(SETTINGS)


def test_a_route_has_every_placed_stop_with_legs_etas_and_totals():
    out = optimize(geocoded(BRISBANE, depot=(-27.45, 153.03), ret=True), SETTINGS, MATRICES)
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
        SETTINGS,
        MATRICES,
    )
    assert {(u.external_stop_id, u.reason) for u in out.unrouted} == {
        ("S2", UnroutedReason.GEOCODE_FAILED),
        ("S1", UnroutedReason.TIME_WINDOW_VIOLATION),
    }
    assert (UnroutedReason.TIME_WINDOW_VIOLATION, "S1") in [(w.code, w.external_stop_id) for w in out.warnings]


def test_capacity_is_respected():
    out = optimize(geocoded(BRISBANE, capacity=6), SETTINGS, MATRICES)
    assert len(out.route) == 3 and {u.reason for u in out.unrouted} == {UnroutedReason.CAPACITY_EXCEEDED}


def test_a_routing_outage_falls_back_to_great_circle_with_a_warning():
    class DeadRouting:
        name = "osrm"

        def build(self, points):
            raise RoutingUnavailable("connection refused")

    out = optimize(geocoded(BRISBANE), SETTINGS, DeadRouting())
    assert out.solver.matrix_provider == "great_circle"
    assert WarningCode.ROUTING_FALLBACK in [w.code for w in out.warnings]


def test_nothing_routable_is_a_failure():
    out = optimize(geocoded([None, None]), SETTINGS, MATRICES)
    assert isinstance(out, JobFailed) and out.code == FailureCode.NO_ROUTABLE_STOPS
