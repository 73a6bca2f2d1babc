"""Geocoding providers: any geopy geocoder behind rate limit, retries and a circuit breaker; the gazetteer."""

import asyncio
import logging
import time
from typing import Any

from services.geocoder import metrics
from services.geocoder.adapters.gazetteer import World
from services.geocoder.handlers import Found, Provider, ProviderDown
from services.geocoder.settings import GeocoderSettings

log = logging.getLogger(__name__)


class Breaker:
    """Opens after `failures` consecutive errors; lets one trial call through after `reset_s`."""

    def __init__(self, failures: int, reset_s: float) -> None:
        self.limit, self.reset_s = failures, reset_s
        self.failures, self.opened_at = 0, 0.0

    @property
    def open(self) -> bool:
        return self.failures >= self.limit and time.monotonic() - self.opened_at < self.reset_s

    def record(self, ok: bool) -> None:
        if ok:
            self.failures = 0
        else:
            self.failures += 1
            if self.failures >= self.limit:
                self.opened_at = time.monotonic()


_ROOFTOP = {"house", "building", "residential", "address", "house_number", "commercial", "retail", "amenity"}
_STREET = {"road", "street", "highway", "primary", "secondary", "tertiary", "residential_street", "way"}
_POSTCODE = {"postcode", "postal_code"}


def precision_of(raw: dict[str, Any]) -> str:
    """Map a provider's place type onto our precision scale (Nominatim's addresstype/type)."""
    kinds = {str(raw.get(k, "")).lower() for k in ("addresstype", "type", "class", "result_type")}
    if kinds & _ROOFTOP:
        return "rooftop"
    if kinds & _STREET:
        return "street"
    if kinds & _POSTCODE:
        return "postcode"
    return "locality"


class GeopyProvider:
    """One geopy geocoder (Nominatim, Photon, Pelias, ArcGIS, …) on geopy's async (aiohttp) adapter, run politely."""

    def __init__(self, name: str, geocoder: Any, settings: GeocoderSettings, country: str | None) -> None:
        self.name, self.geocoder, self.settings, self.country = name, geocoder, settings, country
        self.breaker = Breaker(settings.breaker_failures, settings.breaker_reset_seconds)
        self._lock = asyncio.Lock()
        self._next_call = 0.0

    async def _polite(self) -> None:
        async with self._lock:  # serialize calls at the configured rate
            wait = self._next_call - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._next_call = time.monotonic() + 1.0 / self.settings.provider_rate_per_second

    async def _call(self, address: str) -> Any:
        kwargs: dict[str, Any] = {"exactly_one": False, "timeout": self.settings.provider_timeout_seconds}
        if self.name == "nominatim":
            kwargs.update(addressdetails=False, country_codes=self.country.lower() if self.country else None, limit=3)
        return await self.geocoder.geocode(address, **kwargs)

    async def close(self) -> None:
        session = self.geocoder.adapter.__dict__.get("session")  # created lazily by geopy on first call
        if session is not None:
            await session.close()

    async def lookup(self, address: str) -> Found | None:
        from geopy import exc as geopy_exc  # loaded with the provider (build_chain)

        metrics.CIRCUIT_OPEN.labels(self.name).set(1 if self.breaker.open else 0)
        if self.breaker.open:
            metrics.LOOKUPS.labels(self.name, "circuit_open").inc()
            raise ProviderDown(f"{self.name}: circuit open")
        for attempt in range(self.settings.provider_retries + 1):
            await self._polite()
            started = time.perf_counter()
            try:
                results = await self._call(address)
            except (
                TimeoutError,
                geopy_exc.GeocoderTimedOut,
                geopy_exc.GeocoderUnavailable,
                geopy_exc.GeocoderServiceError,
                OSError,
            ) as exc:
                metrics.PROVIDER_LATENCY.labels(self.name).observe(time.perf_counter() - started)
                metrics.LOOKUPS.labels(self.name, "error").inc()
                self.breaker.record(False)
                log.warning("%s failed (attempt %d): %s", self.name, attempt + 1, type(exc).__name__)
                if self.breaker.open or attempt == self.settings.provider_retries:
                    raise ProviderDown(f"{self.name}: {type(exc).__name__}") from None
                await asyncio.sleep(min(0.2 * 2**attempt, 2.0))
                continue
            metrics.PROVIDER_LATENCY.labels(self.name).observe(time.perf_counter() - started)
            self.breaker.record(True)
            if not results:
                metrics.LOOKUPS.labels(self.name, "not_found").inc()
                return None
            best = results[0]
            metrics.LOOKUPS.labels(self.name, "found").inc()
            return Found(
                best.latitude,
                best.longitude,
                precision_of(best.raw or {}),
                self.name,
                ambiguous=len(results) > 1
                and precision_of(results[1].raw or {}) == precision_of(best.raw or {})
                and abs(results[1].latitude - best.latitude) + abs(results[1].longitude - best.longitude) > 0.05,
            )
        return None


class GazetteerProvider:
    name = "gazetteer"

    def __init__(self, gazetteer: World) -> None:
        self.gazetteer = gazetteer

    async def close(self) -> None:
        pass

    async def lookup(self, address: str) -> Found | None:
        place, ambiguous = self.gazetteer.locate(address)
        metrics.LOOKUPS.labels(self.name, "found" if place else "not_found").inc()
        return Found(place.lat, place.lng, place.precision, self.name, ambiguous) if place else None


def build_chain(settings: GeocoderSettings, gazetteer: World) -> list[Provider]:
    """Providers named in GEOCODER_PROVIDERS, in order, always ending with the offline gazetteer."""
    chain: list[Provider] = []
    for name in [n.strip().lower() for n in settings.geocoder_providers.split(",") if n.strip()]:
        if name == "gazetteer":
            continue
        # geopy (and aiohttp under it) only when a network provider is configured: the gazetteer
        # alone, as `routemate optimize` runs by default, starts without them.
        from geopy.adapters import AioHTTPAdapter
        from geopy.geocoders import get_geocoder_for_service

        cls = get_geocoder_for_service(name)
        options: dict[str, Any] = {"timeout": settings.provider_timeout_seconds, "adapter_factory": AioHTTPAdapter}
        if name == "nominatim":
            options.update(
                domain=settings.nominatim_domain,
                scheme=settings.nominatim_scheme,
                user_agent=settings.nominatim_user_agent,
            )
        chain.append(GeopyProvider(name, cls(**options), settings, settings.country_bias))
    chain.append(GazetteerProvider(gazetteer))
    return chain
