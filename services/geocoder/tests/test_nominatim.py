"""The provider chain against a local HTTP server speaking Nominatim's /search JSON.

geopy's real Nominatim client goes over real HTTP, so our rate limit, retries and circuit
breaker are exercised on slow, failing and empty answers.
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from services.geocoder.adapters import build_geocoder
from services.geocoder.handlers import MISS, ProviderDown
from services.geocoder.settings import GeocoderSettings
from shared.testing.fakes import MemoryRedis


class FakeNominatim(BaseHTTPRequestHandler):
    calls: list[str] = []

    def do_GET(self) -> None:
        query = parse_qs(urlparse(self.path).query)
        q = query.get("q", [""])[0]
        FakeNominatim.calls.append(q)
        if "slow" in q:
            time.sleep(3)
        if "fail" in q:
            self.send_response(503)
            self.end_headers()
            return
        body = (
            []
            if "empty" in q
            else [
                {
                    "lat": "-27.4705",
                    "lon": "153.0260",
                    "display_name": q,
                    "class": "place",
                    "type": "house",
                    "addresstype": "house",
                }
            ]
        )
        payload = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def nominatim():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeNominatim)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def settings(domain: str, **over) -> GeocoderSettings:
    options = dict(
        geocoder_providers="nominatim,gazetteer",
        nominatim_domain=domain,
        nominatim_scheme="http",
        provider_rate_per_second=50,
        provider_timeout_seconds=0.5,
        provider_retries=1,
        breaker_failures=3,
        breaker_reset_seconds=60,
    )
    return GeocoderSettings(**{**options, **over})


def chain(domain: str, **over):
    """The chain the service builds from these settings: Nominatim, then the gazetteer."""
    return build_geocoder(settings(domain, **over)).chain


@pytest.fixture(autouse=True)
def fresh_calls():
    FakeNominatim.calls.clear()


async def test_a_found_address_is_rooftop_from_nominatim(nominatim):
    found = await chain(nominatim)[0].lookup("123 Queen St, Brisbane QLD 4000")
    assert (found.provider, found.precision, round(found.lat, 4)) == ("nominatim", "rooftop", -27.4705)


async def test_an_empty_answer_is_not_found_and_the_gazetteer_takes_over(nominatim):
    geocoder = build_geocoder(settings(nominatim), MemoryRedis())
    found, source = await geocoder.place("empty 45 Grey St, South Brisbane QLD 4101", time.monotonic() + 5)
    assert found.provider == "gazetteer" and found.precision == "postcode" and source == "provider"
    assert len(FakeNominatim.calls) == 1


async def test_server_errors_are_retried_then_skipped(nominatim):
    provider = chain(nominatim)[0]
    with pytest.raises(ProviderDown):
        await provider.lookup("fail 1 Queen St, Brisbane QLD 4000")
    assert len(FakeNominatim.calls) == 2  # one try and one retry


async def test_a_slow_provider_times_out(nominatim):
    started = time.monotonic()
    with pytest.raises(ProviderDown):
        await chain(nominatim, provider_retries=0)[0].lookup("slow 1 Queen St, Brisbane QLD 4000")
    assert time.monotonic() - started < 2.0  # the 0.5 s timeout, not the 3 s answer


async def test_the_circuit_opens_after_repeated_failures_and_skips_the_provider(nominatim):
    provider = chain(nominatim, provider_retries=0)[0]
    for _ in range(3):
        with pytest.raises(ProviderDown):
            await provider.lookup("fail 1 Queen St, Brisbane QLD 4000")
    assert len(FakeNominatim.calls) == 3
    with pytest.raises(ProviderDown, match="circuit open"):
        await provider.lookup("1 Queen St, Brisbane QLD 4000")
    assert len(FakeNominatim.calls) == 3  # not even asked


async def test_the_rate_limit_spaces_the_calls(nominatim):
    provider = chain(nominatim, provider_rate_per_second=5)[0]
    started = time.monotonic()
    for i in range(4):
        await provider.lookup(f"{i} Queen St, Brisbane QLD 4000")
    assert time.monotonic() - started >= 0.6  # 4 calls at 5/s: three gaps of 0.2 s


async def test_an_outage_is_not_cached_as_a_miss(nominatim):
    geocoder = build_geocoder(settings(nominatim, provider_retries=0), MemoryRedis())
    await geocoder.place("fail nowhere at all", time.monotonic() + 5)
    assert await geocoder.cache.get("fail nowhere at all") is MISS
