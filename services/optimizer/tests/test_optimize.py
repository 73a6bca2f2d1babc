"""The optimize use-case on great-circle matrices: routes, unrouted stops, fallbacks, failures."""

from datetime import timedelta

from services.optimizer.adapters import great_circle
from services.optimizer.adapters.matrix import RoutingUnavailable
from services.optimizer.handlers import optimize, replan
from services.optimizer.settings import OptimizerSettings
from shared.events import JobFailed, ReplanRequested, RouteOptimized
from shared.events.jobs import ReplanStop, StartPoint, TimeWindow
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
    assert out.spec_version == 1  # the spec that failed: status ignores a refused or replaced one's
    update = optimize(geocoded([None, None]).model_copy(update={"spec_version": 3}), SETTINGS, MATRICES)
    assert update.spec_version == 3


def test_an_update_routes_only_the_unfinished_stops_from_the_last_finished_one():
    line = [(-27.40, 153.0), (-27.50, 153.0), (-27.41, 153.0), (-27.49, 153.0)]
    update = geocoded(line, depot=(-27.30, 153.0), ret=True).model_copy(
        update={"spec_version": 3, "keep": ("S2", "S1")}  # S1 was finished last: the driver is there
    )
    out = optimize(update, SETTINGS, MATRICES)
    assert isinstance(out, RouteOptimized) and out.remaining_only and out.spec_version == 3
    assert [leg.external_stop_id for leg in out.route] == ["S3", "S0"]  # nearest to S1 first
    assert out.route[0].leg_distance_km < 2  # S1 -> S3 is about a kilometre, not from the depot
    assert not out.unrouted


def test_a_replan_orders_the_remaining_stops_from_the_current_location_at_its_time():
    at = START + timedelta(hours=2)
    stops = tuple(
        ReplanStop(stop_id=f"j.{i}", external_stop_id=f"S{i}", lat=lat, lng=153.0)
        for i, lat in enumerate((-27.40, -27.50, -27.45))
    )
    here = StartPoint(lat=-27.51, lng=153.0, origin="current_location")
    command = ReplanRequested(org_id="o", job_id="j", stops=stops, start=here, start_time=at, spec_version=2)
    out = replan(command, SETTINGS, MATRICES)
    assert isinstance(out, RouteOptimized) and out.remaining_only and out.start_time == at
    assert [leg.external_stop_id for leg in out.route] == ["S1", "S2", "S0"]
    assert out.locations == () and out.spec_version == 2
    assert replan(command, SETTINGS, MATRICES).event_id == out.event_id  # a redelivery repeats the same route
