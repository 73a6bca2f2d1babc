"""Fleet jobs through the optimize use-case: the Problem built from a geocoded job, and the answer
as one route per vehicle (checked against the job's own rules, not the engine's word)."""

from datetime import timedelta

import numpy as np

from services.optimizer import fleet
from services.optimizer.adapters import great_circle
from services.optimizer.handlers import _placed, optimize, service_seconds
from services.optimizer.settings import OptimizerSettings
from shared.events import JobFailed, RouteOptimized, StopsGeocoded
from shared.events.jobs import Depot, Location, RequestedStop, TimeWindow, VehiclePlaces, VehicleSpec
from shared.testing.builders import START, spec
from shared.vocabulary import UnroutedReason

SETTINGS = OptimizerSettings()
MATRICES = great_circle(SETTINGS)
DEPOT = (-27.47, 153.02)


def _point(i: int) -> tuple[float, float]:
    """Stop i on a ring of about 6 km around the depot, in a fixed order."""
    angle = 2.399963 * i  # golden angle: spread, deterministic
    return DEPOT[0] + 0.05 * np.sin(angle) * (0.4 + (i % 5) / 8), DEPOT[1] + 0.05 * np.cos(angle) * (0.4 + (i % 3) / 4)


def fleet_job(
    n: int,
    vehicles: list[VehicleSpec],
    *,
    stop: dict[int, dict] | None = None,
    places: tuple[VehiclePlaces, ...] = (),
    depot: bool = True,
    **job,
) -> StopsGeocoded:
    stops = tuple(
        RequestedStop(stop_id=f"j.{i}", external_stop_id=f"S{i}", address=f"{i} St", **(stop or {}).get(i, {}))
        for i in range(n)
    )
    locations = tuple(
        Location(stop_id=s.stop_id, external_stop_id=s.external_stop_id, lat=_point(i)[0], lng=_point(i)[1])
        for i, s in enumerate(stops)
    )
    depot_place = Depot(lat=DEPOT[0], lng=DEPOT[1]) if depot else None
    job_spec = spec(*stops, depot=depot_place, start_time=START, vehicles=tuple(vehicles), **job)
    depot_loc = Location(stop_id="depot", external_stop_id="depot", lat=DEPOT[0], lng=DEPOT[1]) if depot else None
    return StopsGeocoded(org_id="o", job_id="j", job=job_spec, locations=locations, depot=depot_loc, vehicles=places)


def three_drivers() -> StopsGeocoded:
    """12 stops of 2 parcels; a fridge van (6 parcels), two vans of 10 parcels, one with a short shift."""
    vehicles = [
        VehicleSpec(driver_email="a@x.test", capacity=6, skills=("fridge",)),
        VehicleSpec(driver_email="b@x.test", capacity=10, shift_end=START + timedelta(minutes=90)),
        VehicleSpec(driver_email="c@x.test", capacity=10, shift_start=START + timedelta(minutes=30)),
    ]
    chilled = {i: {"skills": ("fridge",), "parcel_count": 2} for i in (0, 5, 9)}
    return fleet_job(
        12, vehicles, stop={i: chilled.get(i, {"parcel_count": 2}) for i in range(12)}, return_to_depot=True
    )


def assert_feasible(job: StopsGeocoded, out: RouteOptimized) -> None:
    """Each route keeps its vehicle's capacity, skills and shift; every stop is routed once or unrouted."""
    stops = {s.external_stop_id: s for s in job.job.stops}
    routed = [leg.external_stop_id for leg in out.route]
    assert len(routed) == len(set(routed))
    assert set(routed) | {u.external_stop_id for u in out.unrouted} == set(stops)
    assert [leg.sequence for leg in out.route] == list(range(1, len(routed) + 1))
    for route in out.routes:
        vehicle = fleet.vehicles_of(job)[route.vehicle]
        assert route.driver_email == vehicle.driver_email
        legs = [leg for leg in out.route if leg.vehicle == route.vehicle]
        assert [leg.external_stop_id for leg in legs] == list(route.external_stop_ids)
        assert [leg.route_sequence for leg in legs] == list(range(1, len(legs) + 1))
        parcels = sum(stops[e].parcel_count for e in route.external_stop_ids)
        assert vehicle.capacity is None or parcels <= vehicle.capacity
        assert all(set(stops[e].skills) <= set(vehicle.skills) for e in route.external_stop_ids)
        assert vehicle.shift_start is None or route.start_time >= vehicle.shift_start
        assert vehicle.shift_end is None or route.end_time <= vehicle.shift_end
        for leg in legs:
            eta = out.start_time + timedelta(minutes=leg.eta_offset_minutes)
            windows = stops[leg.external_stop_id].windows()
            assert not windows or any(
                w.start - timedelta(seconds=1) <= eta <= w.end + timedelta(seconds=1) for w in windows
            )


def test_three_drivers_get_one_feasible_route_each_in_vehicle_order():
    job = three_drivers()
    out = optimize(job, SETTINGS, MATRICES)
    assert isinstance(out, RouteOptimized)
    assert_feasible(job, out)
    assert not out.unrouted  # 24 parcels, 26 places: everything fits
    assert [r.vehicle for r in out.routes] == sorted(r.vehicle for r in out.routes)
    fridge = next(r for r in out.routes if r.vehicle == 0)
    assert {"S0", "S5", "S9"} <= set(fridge.external_stop_ids)
    assert out.totals.total_distance_km == round(sum(r.totals.total_distance_km for r in out.routes), 2)
    assert out.solver.vehicles == 3 and out.solver.stop_count == 12


def test_the_same_fleet_job_always_gets_the_same_routes():
    first, second = optimize(three_drivers(), SETTINGS, MATRICES), optimize(three_drivers(), SETTINGS, MATRICES)
    assert first.route == second.route and first.routes == second.routes


def test_when_not_everything_fits_the_lowest_priority_stops_are_unrouted_with_their_reason():
    vehicles = [VehicleSpec(driver_email="a@x.test", capacity=6), VehicleSpec(driver_email="b@x.test", capacity=4)]
    low = {i: {"parcel_count": 2, "priority": 1 if i in (2, 6) else 5} for i in range(7)}
    job = fleet_job(7, vehicles, stop=low)  # 14 parcels, room for 10: two stops must go
    out = optimize(job, SETTINGS, MATRICES)
    assert_feasible(job, out)
    assert {(u.external_stop_id, u.reason) for u in out.unrouted} == {
        ("S2", UnroutedReason.CAPACITY_EXCEEDED),
        ("S6", UnroutedReason.CAPACITY_EXCEEDED),
    }
    assert {(w.code, w.external_stop_id) for w in out.warnings} == {
        (UnroutedReason.CAPACITY_EXCEEDED, "S2"),
        (UnroutedReason.CAPACITY_EXCEEDED, "S6"),
    }


def test_a_stop_whose_windows_all_closed_before_the_plan_starts_is_unrouted_without_asking_the_engine():
    past = TimeWindow(start=START - timedelta(hours=3), end=START - timedelta(hours=2))
    job = fleet_job(3, [VehicleSpec(driver_email="a@x.test")], stop={1: {"time_windows": (past,)}})
    placed, _, by_id = _placed(job)
    plan = fleet.build_plan(job, placed, by_id, [60] * 3, lambda points: (MATRICES.build(points), []))
    assert plan.unrouted == {"j.1": UnroutedReason.TIME_WINDOW_VIOLATION}
    assert len(plan.problem.visits) == 2
    out = optimize(job, SETTINGS, MATRICES)
    assert [(u.external_stop_id, u.reason) for u in out.unrouted] == [("S1", UnroutedReason.TIME_WINDOW_VIOLATION)]


def test_the_problem_has_shared_points_once_times_from_the_plan_start_and_two_windows():
    morning = TimeWindow(start=START + timedelta(hours=1), end=START + timedelta(hours=2))
    noon = TimeWindow(start=START + timedelta(hours=4), end=START + timedelta(hours=5))
    vehicles = [
        VehicleSpec(driver_email="a@x.test", shift_start=START + timedelta(hours=1), max_duration_minutes=240),
        VehicleSpec(driver_email="b@x.test", start=Depot(address="Home"), end=Depot(address="Home"), max_stops=3),
    ]
    home = Location(stop_id="vehicle.1.start", external_stop_id="vehicle.1.start", lat=-27.5, lng=153.0)
    places = (VehiclePlaces(vehicle=0), VehiclePlaces(vehicle=1, start=home, end=home))
    job = fleet_job(4, vehicles, stop={2: {"time_windows": (morning, noon), "priority": 3}}, places=places)
    placed, _, by_id = _placed(job)
    service = [service_seconds(s, SETTINGS) for s in placed]
    plan = fleet.build_plan(job, placed, by_id, service, lambda points: (MATRICES.build(points), []))
    p = plan.problem
    assert np.asarray(p.distances).shape == (6, 6)  # 4 stops, the depot, the shared home
    first, second = p.vehicles
    assert (first.start, first.end, first.shift_start, first.max_duration) == (4, None, 3600, 14400)
    assert (second.start, second.end, second.max_stops) == (5, 5, 3)
    assert p.visits[2].windows == (fleet.vrp.Window(3600, 7200), fleet.vrp.Window(14400, 18000))
    assert p.visits[2].priority == 3 and plan.origin == START


def test_a_vehicle_whose_start_was_not_placed_gets_no_route_and_without_any_vehicle_the_job_fails():
    vehicles = [VehicleSpec(driver_email="a@x.test", start=Depot(address="Nowhere"))]
    lost = (VehiclePlaces(vehicle=0, start=Location(stop_id="v", external_stop_id="v")),)
    out = optimize(fleet_job(3, vehicles, places=lost), SETTINGS, MATRICES)
    assert isinstance(out, JobFailed)
    assert {w.code for w in out.warnings} == {UnroutedReason.NO_VEHICLE}


def test_a_single_driver_job_using_two_windows_is_planned_as_a_fleet_of_one_from_anywhere():
    morning = TimeWindow(start=START, end=START + timedelta(minutes=20))
    later = TimeWindow(start=START + timedelta(hours=2), end=START + timedelta(hours=3))
    job = fleet_job(5, [], stop={3: {"time_windows": (morning, later)}}, depot=False, driver_email="d@x.test")
    out = optimize(job, SETTINGS, MATRICES)
    assert isinstance(out, RouteOptimized) and not out.unrouted
    assert [r.driver_email for r in out.routes] == ["d@x.test"]
    assert out.route[0].leg_distance_km == 0  # no depot: the route starts at its first stop
    assert_feasible(job, out)


def test_the_solver_budget_grows_with_the_job_between_its_floor_and_its_cap():
    settings = OptimizerSettings(solver_min_seconds=2, solver_seconds_per_100_stops=10, solver_max_seconds=30)
    assert [settings.solver_budget(n) for n in (5, 100, 250, 1000)] == [2, 10, 25, 30]
