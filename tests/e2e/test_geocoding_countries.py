"""Geocoding beyond Australia over the real stack: jobs with stops in seven countries are imported
through the edge, geocoded by the offline gazetteer and routed; every stop lands in its country."""

import asyncio
import uuid

from tests.conftest import Tenant

# (south, west, north, east) of each country's mainland, wide enough for its centroids.
BOXES = {
    "US": (24.0, -125.0, 49.5, -66.0),
    "GB": (49.8, -8.7, 60.9, 1.8),
    "NZ": (-47.5, 166.0, -34.0, 179.0),
    "CA": (41.6, -141.0, 70.0, -52.0),
    "PL": (49.0, 14.1, 54.9, 24.2),
    "BE": (49.5, 2.5, 51.5, 6.4),
    "DK": (54.5, 8.0, 57.8, 15.2),
}
STOPS = {
    "US": ["1 Main St, Boulder, CO 80302, USA", "Pike Place, Seattle, WA 98101"],
    "GB": ["10 Downing St, London SW1A 2AA, United Kingdom", "1 Deansgate, Manchester M3 1AZ, UK"],
    "NZ": ["1 Queen St, Auckland 1010, New Zealand", "Lambton Quay 1, Wellington 6011, NZ"],
    "CA": ["24 Sussex Dr, Ottawa, ON K1M 1M4, Canada", "1 Yonge St, Toronto, ON M5E 1E5, Canada"],
    "PL": ["ul. Marszałkowska 1, 00-624 Warszawa, Poland", "Rynek Główny 1, 31-042 Kraków, Polska"],
    "BE": ["Rue Neuve 1, 1000 Bruxelles, Belgium", "Meir 1, 2000 Antwerpen, Belgium"],
    "DK": ["Rådhuspladsen 1, 1550 København, Denmark", "Strøget 1, 8000 Aarhus C, Denmark"],
}
PRECISION = {"GB": "locality"}  # the offline data has British postcode areas only


def inside(code: str, stop: dict) -> bool:
    south, west, north, east = BOXES[code]
    return south <= stop["lat"] <= north and west <= stop["lng"] <= east


async def test_stops_in_seven_countries_are_placed_in_their_country(tenant: Tenant):
    run = uuid.uuid4().hex[:6]  # fresh addresses: no cache entry from an earlier run answers them

    async def imported(code: str) -> dict:
        stops = [{"external_stop_id": f"{code}{i}", "address": f"Unit {run}, {a}"} for i, a in enumerate(STOPS[code])]
        answer = await tenant.import_job(tenant.job(stops=stops, title=f"deliveries in {code}"))
        assert answer.status_code == 201, answer.text
        return answer.json()

    jobs = await asyncio.gather(*(imported(code) for code in STOPS))
    for code, job in zip(STOPS, jobs, strict=True):
        assert job["status"] == "assigned", (code, job["status"], job["warnings"])
        for stop in job["stops"]:
            assert inside(code, stop), (code, stop)
            assert stop["geocode_precision"] == PRECISION.get(code, "postcode"), (code, stop)
            assert stop["geocode_provider"] == "gazetteer"
