"""`routemate optimize FILE.json`: one job through the pipeline's own code, without Kafka or Redis.

The import is validated as ingest does, placed by the geocoder's chain (GEOCODER_PROVIDERS, the
offline gazetteer by default), ordered by the optimizer, and projected in memory by the status
projection's rules (routemate_cli/projection.py, which tests/cli/test_projection.py holds equal
to the real projection's view), so the answer has the import response's shape, without SQLAlchemy. A
`solver` object says which engine ran, for how long, and the objective it minimised. No driver
is assigned (there is no driver directory offline): the job's status stays `unassigned`.

`solver.time_ms` is the solve alone. A job of up to SMALL_JOB stops is searched by the
plain-Python local search (services/optimizer/ils_small.py), so the command never loads numba for
it (about a second); a larger one gets the compiled search, loaded (or compiled) before the clock
starts as the optimizer service does at start-up, and that load is `solver.load_ms`. Heavy modules
(numba, SQLAlchemy, OR-Tools, geopy, Redis, httpx, FastAPI) are imported only on the paths that
need them, so a 20-stop job answers in well under a second of wall time.
"""

import asyncio
import time
import uuid
from typing import Any

from routemate_cli.projection import JobModel
from services.geocoder.adapters import build_geocoder
from services.geocoder.settings import GeocoderSettings
from services.ingest import handlers as ingest
from services.ingest.settings import IngestSettings
from services.optimizer.adapters import matrix_provider
from services.optimizer.handlers import optimize
from services.optimizer.settings import OptimizerSettings
from shared.events import ImportRequested, JobFailed, RouteOptimized, StopsGeocoded

ORG, CLIENT = "local", "cli"
SMALL_JOB = 20  # stops: searched in plain Python, without loading numba (bench/cli_optimize.py --quality)


async def _geocode(event: ImportRequested, settings: GeocoderSettings):
    geocoder = build_geocoder(settings)  # no Redis: a one-off command has nothing to share a cache with
    try:
        return await geocoder.geocode(event)
    finally:
        await geocoder.close()


def _placed(geocoded: StopsGeocoded) -> int:
    """How many stops the optimizer will route: those the geocoder placed."""
    return sum(1 for loc in geocoded.locations if loc.lat is not None and loc.external_stop_id not in geocoded.keep)


def job_events(raw: Any) -> tuple[list[Any], float]:
    """The job's events as the pipeline's stages make them (import, geocoded, routed or failed),
    and the milliseconds spent loading the compiled search before the solve's clock started.

    Raises shared.errors.Problem for an invalid import, exactly as the API would answer it.
    """
    model, warnings = ingest.parse_import(raw, IngestSettings().max_stops)
    job_id = ingest.new_job_id()
    imported = ImportRequested(
        org_id=ORG,
        job_id=job_id,
        integration_id=CLIENT,
        correlation_id=str(uuid.uuid4()),
        job=ingest.job_spec(model, job_id, ingest.payload_hash(model)),
        warnings=tuple(warnings),
    )
    events: list[Any] = [imported]
    geocoded = asyncio.run(_geocode(imported, GeocoderSettings()))
    events.append(geocoded)
    load_ms = 0.0
    if not isinstance(geocoded, JobFailed):
        settings = OptimizerSettings()
        if "solver_compiled_min_stops" not in settings.model_fields_set:  # SOLVER_COMPILED_MIN_STOPS wins
            settings = settings.model_copy(update={"solver_compiled_min_stops": SMALL_JOB + 1})
        if _placed(geocoded) >= settings.solver_compiled_min_stops:
            started = time.perf_counter()
            from services.optimizer import ils

            ils.warm_up()  # load the compiled search before the solve's clock starts
            load_ms = (time.perf_counter() - started) * 1000
        events.append(optimize(geocoded, settings, matrix_provider(settings)))
    return events, load_ms


def run(raw: Any) -> dict[str, Any]:
    """The job view of `raw` (an import body) once routed, plus the solver's figures.

    Raises shared.errors.Problem for an invalid import, exactly as the API would answer it.
    """
    events, load_ms = job_events(raw)
    model = JobModel()
    model.apply_many(events)
    view = model.view()
    # Offline there is no driver directory to assign from: its "driver not found" would mislead.
    view["warnings"] = [w for w in view["warnings"] if w["code"] != "DRIVER_NOT_FOUND"]
    routed = events[-1]
    view["solver"] = (
        {
            "engine": routed.solver.solver,
            "time_ms": routed.solver.solve_ms,
            "load_ms": round(load_ms, 2),
            "objective": routed.solver.objective_m,
            "objective_unit": "metres driven",
            "matrix_provider": routed.solver.matrix_provider,
            "stops": routed.solver.stop_count,
        }
        if isinstance(routed, RouteOptimized)
        else None
    )
    return view
