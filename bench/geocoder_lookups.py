"""Geocoder lookups/s with a cold and a warm Redis cache (offline gazetteer provider).

Reference: the gazetteer alone, in-process, without the cache (the floor of any lookup).
"""

import asyncio
import time
import uuid

from bench.common import machine
from services.geocoder.adapters import build_geocoder
from services.geocoder.handlers import Geocoder
from services.geocoder.settings import GeocoderSettings
from shared.events import ImportRequested
from shared.events.jobs import JobSpec, RequestedStop
from shared.service import make_redis

SUBURBS = [
    ("Brisbane City", "QLD", "4000"),
    ("South Brisbane", "QLD", "4101"),
    ("New Farm", "QLD", "4005"),
    ("Paddington", "QLD", "4064"),
    ("Bulimba", "QLD", "4171"),
    ("Albion", "QLD", "4010"),
    ("Sydney", "NSW", "2000"),
    ("Melbourne", "VIC", "3000"),
]


def jobs(count: int, stops: int, salt: str) -> list[ImportRequested]:
    out = []
    for j in range(count):
        spec_stops = tuple(
            RequestedStop(
                stop_id=f"j{j}.{i}",
                external_stop_id=f"S{i}",
                address=f"{i + j * stops} {salt} St, {s[0]} {s[1]} {s[2]}",
            )
            for i, s in ((i, SUBURBS[i % len(SUBURBS)]) for i in range(stops))
        )
        out.append(
            ImportRequested(
                org_id="o",
                job_id=f"j{j}",
                integration_id="c",
                job=JobSpec(external_job_id=f"X{j}", title="t", stops=spec_stops, payload_hash="h"),
            )
        )
    return out


async def run(geocoder: Geocoder, batch: list[ImportRequested]) -> float:
    started = time.perf_counter()
    for event in batch:
        await geocoder.geocode(event)
    return sum(len(e.job.stops) for e in batch) / (time.perf_counter() - started)


async def main() -> None:
    # The local platform's cache Redis; its keys live an hour, as this bench's addresses are never asked again.
    settings = GeocoderSettings(geocoder_providers="gazetteer", cache_ttl_seconds=3600)
    redis = make_redis(settings, settings.cache_redis_url)
    geocoder = build_geocoder(settings, redis)
    gazetteer = geocoder.chain[-1]
    batch = jobs(50, 20, uuid.uuid4().hex[:8])  # unique street names: every address a cache miss
    cold = await run(geocoder, batch)
    warm = await run(geocoder, batch)
    started = time.perf_counter()
    for event in batch:
        for stop in event.job.stops:
            await gazetteer.lookup(stop.address)
    floor = sum(len(e.job.stops) for e in batch) / (time.perf_counter() - started)
    await redis.aclose()
    print(f"# geocoder lookups/s, 1000 distinct addresses in 50 jobs; {machine()}")
    print("| path | lookups/s | ratio to reference |")
    print("|---|---|---|")
    print(f"| gazetteer alone, no cache (reference) | {floor:.0f} | 1.00 |")
    print(f"| geocoder, cold cache (miss + store) | {cold:.0f} | {cold / floor:.2f} |")
    print(f"| geocoder, warm cache (hit) | {warm:.0f} | {warm / floor:.2f} |")


if __name__ == "__main__":
    asyncio.run(main())
