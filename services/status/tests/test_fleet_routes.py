"""Fleet jobs in the read model (SQLite offline): per-stop vehicle and route columns, routes[] in the
job view, assignment per route's driver, and the ?driver= filter."""

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from services.status.adapters.projection import Projection
from services.status.adapters.queries import JobFilter, JobQueries
from services.status.adapters.tables import OutboxRow
from services.status.changes import Replan, replan_job
from services.status.handlers import JobSearch, PageSizes, find_jobs
from services.status.views import job_view
from shared.db import make_engine
from shared.errors import Problem
from shared.events import DriverRegistered, RouteOptimized, utcnow
from shared.events.jobs import RouteStop, RouteTotals, SolverStats, TimeWindow, UnroutedStop, VehicleRoute, VehicleSpec
from shared.testing.builders import geocoded, import_requested, routed, stop, stop_changed
from shared.vocabulary import JobStatus, StopStatus, UnroutedReason, WarningCode

T0 = utcnow().replace(microsecond=0) - timedelta(hours=1)
IDS = {"org_id": "org_1", "job_id": "job_1"}
DRIVERS = ("ann@example.com", "bob@example.com")
PLACES = [(-27.40, 153.0), (-27.41, 153.0), (-27.42, 153.0), (-27.43, 153.0), (-27.44, 153.0)]
WINDOWS = (
    TimeWindow(start=T0, end=T0 + timedelta(hours=1)),
    TimeWindow(start=T0 + timedelta(hours=3), end=T0 + timedelta(hours=4)),
)


def fleet_events():
    """Five stops, two vehicles: Ann drives S3, S0; Bob drives S1, S4; S2 did not fit."""
    stops = [stop(i, f"{i} Queen St", job_id="job_1") for i in range(5)]
    stops[1] = stops[1].model_copy(update={"time_windows": WINDOWS, "skills": ("fridge",), "priority": 2})
    vehicles = tuple(VehicleSpec(driver_email=email, capacity=4) for email in DRIVERS)
    imported = import_requested(*stops, **IDS, external_job_id="FLEET", vehicles=vehicles)
    geo = geocoded(PLACES, **IDS)

    def leg(sequence: int, i: int, vehicle: int, k: int) -> RouteStop:
        return RouteStop(
            stop_id=f"job_1.{i}",
            external_stop_id=f"S{i}",
            sequence=sequence,
            lat=PLACES[i][0],
            lng=PLACES[i][1],
            leg_distance_km=1.0,
            leg_duration_minutes=2.0,
            eta_offset_minutes=10.0 * sequence,
            vehicle=vehicle,
            route_sequence=k,
        )

    def summary(vehicle: int, stops: tuple[str, ...], km: float) -> VehicleRoute:
        return VehicleRoute(
            vehicle=vehicle,
            driver_email=DRIVERS[vehicle],
            external_stop_ids=stops,
            totals=RouteTotals(total_distance_km=km, total_duration_minutes=30.0, total_duration_seconds=1800),
            start_time=T0,
            end_time=T0 + timedelta(minutes=30),
            parcels=2,
        )

    route = RouteOptimized(
        **IDS,
        external_job_id="FLEET",
        route=(leg(1, 3, 0, 1), leg(2, 0, 0, 2), leg(3, 1, 1, 1), leg(4, 4, 1, 2)),
        routes=(summary(0, ("S3", "S0"), 4.5), summary(1, ("S1", "S4"), 6.0)),
        unrouted=(UnroutedStop(stop_id="job_1.2", external_stop_id="S2", reason=UnroutedReason.CAPACITY_EXCEEDED),),
        totals=RouteTotals(total_distance_km=10.5, total_duration_minutes=60.0, total_duration_seconds=3600),
        solver=SolverStats(solver="pyvrp", matrix_provider="great_circle", solve_ms=5.0, stop_count=5, vehicles=2),
        start_time=T0,
    )
    return [
        e.model_copy(update={"occurred_at": T0 + timedelta(seconds=n)}) for n, e in enumerate((imported, geo, route))
    ]


def projected(tmp_path, *drivers: str) -> tuple[Projection, JobQueries]:
    engine = make_engine(f"sqlite:///{tmp_path / 'fleet.db'}")
    projection, queries = Projection(engine), JobQueries(engine)
    for email in drivers:
        projection.apply(DriverRegistered(org_id="org_1", email=email, name=email.split("@")[0].title()))
    for event in fleet_events():
        projection.apply(event)
    return projection, queries


def view(queries: JobQueries, driver: str | None = None) -> dict:
    return job_view(*queries.job("org_1", job_id="job_1"), driver)


def test_a_fleet_job_shows_one_route_per_driver_with_its_stops_in_order_and_the_fleet_totals(tmp_path):
    _, queries = projected(tmp_path, *DRIVERS)
    job = view(queries)
    assert job["status"] == JobStatus.ASSIGNED
    assert [(r["driver"], r["stops"]) for r in job["routes"]] == [
        ({"email": DRIVERS[0], "name": "Ann"}, ["S3", "S0"]),
        ({"email": DRIVERS[1], "name": "Bob"}, ["S1", "S4"]),
    ]
    assert job["routes"][1]["optimization"] == {
        "total_distance_km": 6.0,
        "total_duration_minutes": 30,
        "total_duration_seconds": 1800,
    }
    assert job["routes"][0]["start_time"] < job["routes"][0]["end_time"]
    assert [(s["external_stop_id"], s["driver_email"], s["route_sequence"]) for s in job["stops"]] == [
        ("S3", DRIVERS[0], 1),
        ("S0", DRIVERS[0], 2),
        ("S1", DRIVERS[1], 1),
        ("S4", DRIVERS[1], 2),
    ]
    assert job["unrouted_stops"] == [
        {"external_stop_id": "S2", "reason": UnroutedReason.CAPACITY_EXCEEDED, "address": "2 Queen St"}
    ]
    assert job["optimization"]["total_distance_km"] == 10.5
    s1 = next(s for s in job["stops"] if s["external_stop_id"] == "S1")
    assert (s1["skills"], s1["priority"], len(s1["time_windows"])) == (["fridge"], 2, 2)
    assert [v["driver_email"] for v in job["vehicles"]] == list(DRIVERS)


def test_a_fleet_job_waits_for_every_route_driver_then_is_assigned(tmp_path):
    projection, queries = projected(tmp_path, DRIVERS[0])
    job = view(queries)
    assert job["status"] == JobStatus.UNASSIGNED
    assert [w["message"] for w in job["warnings"] if w["code"] == WarningCode.DRIVER_NOT_FOUND] == [
        f"No active driver {DRIVERS[1]} in this organization; the job is unassigned."
    ]
    projection.apply(DriverRegistered(org_id="org_1", email=DRIVERS[1], name="Bob"))
    job = view(queries)
    assert job["status"] == JobStatus.ASSIGNED
    assert not [w for w in job["warnings"] if w["code"] == WarningCode.DRIVER_NOT_FOUND]
    assert job["routes"][1]["driver"] == {"email": DRIVERS[1], "name": "Bob"}


def test_a_stop_update_on_one_route_keeps_every_route(tmp_path):
    projection, queries = projected(tmp_path, *DRIVERS)
    projection.apply(stop_changed(1, StopStatus.COMPLETED, T0 + timedelta(minutes=20), **IDS))
    job = view(queries)
    assert job["status"] == JobStatus.IN_PROGRESS
    assert [r["stops"] for r in job["routes"]] == [["S3", "S0"], ["S1", "S4"]]
    assert next(s for s in job["stops"] if s["external_stop_id"] == "S1")["status"] == StopStatus.COMPLETED


async def test_each_driver_finds_their_jobs_and_sees_only_their_route(tmp_path):
    _, queries = projected(tmp_path, *DRIVERS)
    sizes = PageSizes(50, 100)
    for driver, stops in ((DRIVERS[0], ["S3", "S0"]), (DRIVERS[1].upper(), ["S1", "S4"])):
        page = await find_jobs(queries, "org_1", JobSearch(filter=JobFilter(driver=driver)), sizes)
        [job] = page.jobs
        assert [r["stops"] for r in job["routes"]] == [stops]
        assert [s["external_stop_id"] for s in job["stops"]] == stops
    nobody = await find_jobs(queries, "org_1", JobSearch(filter=JobFilter(driver="eve@example.com")), sizes)
    assert nobody.jobs == []


def test_a_single_driver_job_has_one_route_too(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'single.db'}")
    projection, queries = Projection(engine), JobQueries(engine)
    stops = [stop(i, f"{i} Queen St", job_id="job_1") for i in range(2)]
    geo = geocoded(PLACES[:2], **IDS)
    for event in (import_requested(*stops, **IDS, driver_email="dana@example.com"), geo, routed(geo, [1, 0])):
        projection.apply(event)
    job = view(queries)
    [route] = job["routes"]
    assert route["stops"] == ["S1", "S0"] and route["driver"]["email"] == "dana@example.com"
    assert route["optimization"]["total_distance_km"] == job["optimization"]["total_distance_km"]
    assert all(s["vehicle"] is None for s in job["stops"])


async def test_a_fleet_job_is_not_replanned_as_one_drivers_route(tmp_path):
    _, queries = projected(tmp_path, *DRIVERS)
    published = []

    async def publish(event):
        published.append(event)

    with pytest.raises(Problem) as refused:
        await replan_job(queries, publish, "org_1", "job_1", Replan())
    assert (refused.value.status, refused.value.code, published) == (409, "fleet_replan_unsupported", [])


def test_a_single_driver_job_planned_as_a_fleet_of_one_stays_a_single_driver_job(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'one.db'}")
    projection, queries = Projection(engine), JobQueries(engine)
    projection.apply(DriverRegistered(org_id="org_1", email="dana@example.com", name="Dana"))
    imported, _, route = fleet_events()
    imported = imported.model_copy(
        update={"job": imported.job.model_copy(update={"vehicles": (), "driver_email": "dana@example.com"})}
    )
    one = route.model_copy(update={"routes": route.routes[:1]})  # the engine's route names the job's driver
    for event in (imported, one):
        projection.apply(event)
    job = view(queries)
    assert job["status"] == JobStatus.ASSIGNED and job["driver"] == {"email": "dana@example.com", "name": "Dana"}
    assert [r["driver"]["email"] for r in job["routes"]] == ["dana@example.com"]
    assert {(s["vehicle"], s["driver_email"]) for s in job["stops"]} == {(None, None)}


def test_the_webhook_payloads_of_a_fleet_job_carry_its_routes(tmp_path):
    projection, _ = projected(tmp_path, *DRIVERS)
    with Session(projection.engine) as s:
        rows = s.exec(select(OutboxRow).where(OutboxRow.change_type == "job.routed")).all()
    [routed] = rows
    assert [r["stops"] for r in routed.data["routes"]] == [["S3", "S0"], ["S1", "S4"]]
    assert routed.data["stops"][2]["driver_email"] == DRIVERS[1]
