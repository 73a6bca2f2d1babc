"""`routemate optimize FILE.json`: a job solved by the pipeline's own code, without Kafka, as a real process."""

import json
import random
import subprocess
import sys

from shared.testing.builders import at
from tests.conftest import ROOT

CLI = [sys.executable, "-m", "routemate_cli.main", "optimize"]


def optimize(body: dict | str) -> subprocess.CompletedProcess:
    text = body if isinstance(body, str) else json.dumps(body)
    return subprocess.run([*CLI, "-"], input=text, capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_the_example_file_comes_back_in_the_import_response_shape_with_the_solver():
    done = subprocess.run(
        [*CLI, "deploy/examples/brisbane-job.json"], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert [s["sequence"] for s in job["stops"]] == list(range(1, 9)) and not job["unrouted_stops"]
    assert all(s["geocode_provider"] == "gazetteer" for s in job["stops"])  # addresses placed offline
    assert job["solver"]["engine"] == "exact" and job["solver"]["matrix_provider"] == "great_circle"
    legs = sum(s["distance_from_previous_km"] for s in job["stops"])
    assert abs(job["solver"]["objective"] / 1000 - legs) < 0.01  # open route: the objective is the legs driven
    assert job["optimization"]["total_distance_km"] == round(job["solver"]["objective"] / 1000, 2)


def test_a_larger_closed_tour_from_a_depot_takes_the_local_search():
    rng = random.Random(5)
    body = {
        "external_job_id": "CLI-40",
        "title": "forty stops",
        "return_to_depot": True,
        "depot": {"lat": -27.47, "lng": 153.02},
        "stops": [
            {
                "external_stop_id": f"S{i}",
                "lat": -27.47 + rng.uniform(-0.1, 0.1),
                "lng": 153.02 + rng.uniform(-0.1, 0.1),
            }
            for i in range(40)
        ],
    }
    done = optimize(body)
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert job["solver"]["engine"] == "local_search" and job["solver"]["stops"] == 40
    assert sorted(s["external_stop_id"] for s in job["stops"]) == sorted(s["external_stop_id"] for s in body["stops"])
    assert job["solver"]["objective"] > sum(s["distance_from_previous_km"] for s in job["stops"]) * 1000  # + return leg


def test_an_unservable_window_is_reported_unrouted_not_dropped():
    body = {
        "external_job_id": "CLI-TW",
        "title": "windows",
        "start_time": at(0),
        "depot": {"lat": -27.47, "lng": 153.02},
        "stops": [
            {
                "external_stop_id": "EARLY",
                "lat": -27.30,
                "lng": 153.10,
                "time_window": {"start": at(-1), "end": at(-0.5)},
            },
            {"external_stop_id": "A", "lat": -27.48, "lng": 153.03},
            {"external_stop_id": "B", "lat": -27.50, "lng": 153.05},
        ],
    }
    done = optimize(body)
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert job["solver"]["engine"] == "pyvrp"  # windows go to the fleet engine with one vehicle
    assert [(u["external_stop_id"], u["reason"]) for u in job["unrouted_stops"]] == [("EARLY", "TIME_WINDOW_VIOLATION")]
    assert {w["code"] for w in job["warnings"]} == {"TIME_WINDOW_VIOLATION"}


def test_an_invalid_import_names_every_bad_field_and_exits_1():
    done = optimize({"external_job_id": "x", "stops": [{"external_stop_id": "a"}, {"lat": 1}]})
    assert done.returncode == 1 and not done.stdout
    assert "validation_failed" in done.stderr
    for pointer in ("/title", "/stops/0", "/stops/1/external_stop_id"):
        assert pointer in done.stderr


def test_a_file_that_is_not_json_exits_1_with_the_reason():
    done = optimize("not json")
    assert done.returncode == 1 and "is not JSON" in done.stderr and "Traceback" not in done.stderr


def test_a_20_stop_optimize_loads_no_compiled_search_database_web_or_network_stack(tmp_path):
    """A 20-stop job is searched without numba (about a second to import and load), answered without
    SQLAlchemy, and imports no web framework, migration tool, network geocoder or OR-Tools: the
    whole command stays under a second. `solver.time_ms` is the solve alone; nothing was loaded."""
    rng = random.Random(20)
    body = {
        "external_job_id": "CLI-20",
        "title": "twenty stops",
        "stops": [
            {
                "external_stop_id": f"S{i}",
                "lat": -27.47 + rng.uniform(-0.1, 0.1),
                "lng": 153.02 + rng.uniform(-0.1, 0.1),
            }
            for i in range(20)
        ],
    }
    (tmp_path / "job.json").write_text(json.dumps(body))
    probe = (
        "import json, sys; import routemate_cli.main; from routemate_cli.optimize import run; "
        f"view = run(json.loads(open({str(tmp_path / 'job.json')!r}).read())); "
        "heavy = sorted(m for m in ('fastapi', 'starlette', 'alembic', 'geopy', 'aiohttp', 'ortools', 'httpx', "
        "'numba', 'sqlalchemy', 'sqlmodel', 'pyvrp') if m in sys.modules); "
        "print(json.dumps({'heavy': heavy, 'solver': view['solver']}))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["heavy"] == []
    solver = out["solver"]
    assert solver["engine"] == "local_search" and solver["stops"] == 20
    assert solver["time_ms"] > 0 and solver["load_ms"] == 0


def test_a_larger_job_loads_the_compiled_search_before_the_solve_clock():
    """Past 20 stops the compiled search pays off: it is loaded before the clock starts (`load_ms`)."""
    rng = random.Random(21)
    body = {
        "external_job_id": "CLI-21",
        "title": "twenty-one stops",
        "stops": [
            {"external_stop_id": f"S{i}", "lat": -27.47 + rng.uniform(-0.1, 0.1), "lng": 153.02 + rng.uniform(-0.1, 0)}
            for i in range(21)
        ],
    }
    done = optimize(body)
    assert done.returncode == 0, done.stderr
    solver = json.loads(done.stdout)["solver"]
    assert solver["engine"] == "local_search" and solver["stops"] == 21
    assert 0 < solver["time_ms"] < solver["load_ms"]
