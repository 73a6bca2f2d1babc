"""Geocoding a job: every stop placed at the precision we really have, or an honest warning."""

import asyncio
import logging
import statistics
import time
from dataclasses import dataclass
from typing import Protocol

from services.geocoder import metrics
from services.geocoder.normalize import normalize
from shared.events import ImportRequested, JobFailed, JobWarning, StopsGeocoded, caused_by
from shared.events.jobs import Location, Source, VehiclePlaces
from shared.geo import haversine_km
from shared.vocabulary import FailureCode, WarningCode

log = logging.getLogger(__name__)
APPROXIMATE = {"postcode", "locality"}
MISS = object()  # the cache has no answer for an address (a cached failure is None)

# The ports the use-case needs are declared here and implemented in adapters/, so the adapters
# depend on the handlers and never the reverse (adapters/__init__.py can then build a Geocoder).


@dataclass(frozen=True)
class Found:
    """Where a provider placed an address, and how precisely."""

    lat: float
    lng: float
    precision: str
    provider: str
    ambiguous: bool = False


class Provider(Protocol):
    name: str

    async def lookup(self, address: str) -> Found | None: ...

    async def close(self) -> None: ...


class ProviderDown(Exception):
    """The provider failed or its circuit is open: try the next one."""


class AddressCache(Protocol):
    async def get(self, address: str) -> Found | None | object: ...

    async def put(self, address: str, found: Found | None, job_id: str | None = None) -> None: ...

    async def forget_job(self, job_id: str) -> int: ...


class Geocoder:
    """Resolution order per address: the cache, then each provider of the chain in turn."""

    def __init__(
        self, chain: list[Provider], cache: AddressCache, concurrency: int, budget_s: float, outlier_km: float
    ) -> None:
        self.chain, self.cache, self.outlier_km = chain, cache, outlier_km
        self.concurrency, self.budget_s = concurrency, budget_s

    async def close(self) -> None:
        """Release the providers' HTTP sessions."""
        for provider in self.chain:
            await provider.close()

    async def place(self, address: str, deadline: float, job_id: str | None = None) -> tuple[Found | None, Source]:
        """Where the address is, and whether the cache knew it or a provider was asked."""
        cached = await self.cache.get(address)
        if cached is not MISS:
            metrics.CACHE.labels("hit").inc()
            return cached, "cache"  # type: ignore[return-value]
        metrics.CACHE.labels("miss").inc()
        found, any_down = None, False
        for provider in self.chain:
            if provider.name != "gazetteer" and time.monotonic() > deadline:
                continue  # the job's provider budget is spent: straight to the offline fallback
            try:
                found = await provider.lookup(address)
            except ProviderDown:
                any_down = True
                continue
            if found:
                break
        if found or not any_down:  # don't cache a miss caused by an outage
            await self.cache.put(address, found, job_id)  # the job's entry: erasing the job deletes it
        return found, "provider"

    async def geocode(self, event: ImportRequested) -> StopsGeocoded | JobFailed:
        job = event.job
        deadline = time.monotonic() + self.budget_s
        gate = asyncio.Semaphore(self.concurrency)
        addresses: dict[str, str] = {}  # normalized -> the first spelling seen; one lookup each
        for s in job.stops:
            if s.lat is None and s.address:
                addresses.setdefault(normalize(s.address), s.address)
        for place in (job.depot, *_vehicle_places(job)):
            if place and place.lat is None and place.address:
                addresses.setdefault(normalize(place.address), place.address)

        async def one(address: str) -> tuple[Found | None, Source]:
            async with gate:
                return await self.place(address, deadline, event.job_id)

        keys = list(addresses)
        results = dict(zip(keys, await asyncio.gather(*(one(addresses[k]) for k in keys)), strict=False))
        warnings = list(event.warnings)
        locations = []
        for stop in job.stops:
            if stop.lat is not None:
                found, source = Found(stop.lat, stop.lng, "provided", "client"), "client"
            else:
                found, source = results.get(normalize(stop.address or ""), (None, None))
            locations.append(_location(stop.stop_id, stop.external_stop_id, found, source))
            warnings += _warnings(stop.external_stop_id, found)
        depot = None
        if job.depot:
            d = job.depot
            found, source = (
                (Found(d.lat, d.lng, "provided", "client"), "client")
                if d.lat is not None
                else results.get(normalize(d.address or ""), (None, None))
            )
            if found is None:
                warnings.append(
                    JobWarning(
                        code=WarningCode.DEPOT_GEOCODE_FAILED,
                        message="The depot could not be placed; the route starts at a stop.",
                    )
                )
            else:
                depot = _location("depot", "depot", found, source)
        vehicles = _vehicles(job, results, warnings)
        warnings += self._outliers(locations)
        if not any(loc.lat is not None for loc in locations):
            return JobFailed(
                **caused_by(event, "JobFailed"),
                job_id=event.job_id,
                spec_version=event.spec_version,
                stage="geocoder",
                code=FailureCode.GEOCODE_FAILED_ALL,
                message="No stop of the job could be placed.",
                warnings=tuple(warnings),
            )
        return StopsGeocoded(
            **caused_by(event, "StopsGeocoded"),
            job_id=event.job_id,
            job=job,
            locations=tuple(locations),
            depot=depot,
            warnings=tuple(warnings),
            spec_version=event.spec_version,
            keep=event.keep,  # finished stops: the optimizer routes the others, from the last of these
            vehicles=vehicles,
        )

    async def forget(self, job_id: str) -> int:
        """An erased job: delete the cache entries its addresses created."""
        return await self.cache.forget_job(job_id)

    def _outliers(self, locations: list[Location]) -> list[JobWarning]:
        placed = [loc for loc in locations if loc.lat is not None]
        if len(placed) < 3:
            return []
        lat = statistics.median(loc.lat for loc in placed)
        lng = statistics.median(loc.lng for loc in placed)
        return [
            JobWarning(
                code=WarningCode.ADDRESS_OUTSIDE_REGION,
                external_stop_id=loc.external_stop_id,
                message=f"This stop is {d:.0f} km from the job's other stops; check the address.",
            )
            for loc in placed
            if (d := haversine_km(lat, lng, loc.lat, loc.lng)) > self.outlier_km
        ]


def _vehicle_places(job) -> list:
    return [place for v in job.vehicles for place in (v.start, v.end)]


def _placed(place, results: dict) -> tuple[Found | None, Source | None]:
    if place.lat is not None:
        return Found(place.lat, place.lng, "provided", "client"), "client"
    return results.get(normalize(place.address or ""), (None, None))


def _vehicles(job, results: dict, warnings: list[JobWarning]) -> tuple[VehiclePlaces, ...]:
    """Each fleet vehicle's start and end, placed like a depot; a vehicle whose start or end
    cannot be placed is warned about (the optimizer leaves it out of the plan)."""
    out = []
    for i, vehicle in enumerate(job.vehicles):
        ends = {}
        for which in ("start", "end"):
            place = getattr(vehicle, which)
            if place is None:
                continue
            found, source = _placed(place, results)
            if found is None:
                warnings.append(
                    JobWarning(
                        code=WarningCode.VEHICLE_GEOCODE_FAILED,
                        message=f"/vehicles/{i}/{which} could not be placed; that vehicle gets no route.",
                    )
                )
            ends[which] = _location(f"vehicle.{i}.{which}", f"vehicle.{i}.{which}", found, source)
        out.append(VehiclePlaces(vehicle=i, **ends))
    return tuple(out)


def _location(stop_id: str, external_stop_id: str, found: Found | None, source: Source | None) -> Location:
    if found is None:
        return Location(stop_id=stop_id, external_stop_id=external_stop_id, source=source)
    return Location(
        stop_id=stop_id,
        external_stop_id=external_stop_id,
        lat=found.lat,
        lng=found.lng,
        precision=found.precision,
        provider=found.provider,
        source=source,
    )


def _warnings(external_stop_id: str, found: Found | None) -> list[JobWarning]:
    if found is None:
        return [
            JobWarning(
                code=WarningCode.GEOCODE_FAILED,
                external_stop_id=external_stop_id,
                message="The address could not be placed; the stop is left out of the route.",
            )
        ]
    out = []
    if found.precision in APPROXIMATE:
        out.append(
            JobWarning(
                code=WarningCode.GEOCODE_APPROXIMATE,
                external_stop_id=external_stop_id,
                message=f"Placed at the {found.precision} centroid only ({found.provider}).",
            )
        )
    if found.ambiguous:
        out.append(
            JobWarning(
                code=WarningCode.GEOCODE_AMBIGUOUS,
                external_stop_id=external_stop_id,
                message="The address matches several places; the first was taken.",
            )
        )
    return out
