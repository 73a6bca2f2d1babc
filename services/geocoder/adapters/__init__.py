"""The geocoder's adapters (providers, Redis cache, gazetteer) and the one factory that assembles them.

The service, the `routemate optimize` command, the benchmarks and the tests all build their
Geocoder here, so the chain and the cache are put together the same way everywhere.
"""

from redis.asyncio import Redis

from services.geocoder.adapters.cache import GeocodeCache, NoCache
from services.geocoder.adapters.gazetteer import World
from services.geocoder.adapters.providers import build_chain
from services.geocoder.handlers import AddressCache, Geocoder, Provider
from services.geocoder.settings import GeocoderSettings


def build_geocoder(
    settings: GeocoderSettings, redis: Redis | None = None, chain: list[Provider] | None = None
) -> Geocoder:
    """The GEOCODER_PROVIDERS chain (or `chain`) behind the Redis cache; without `redis`, uncached.
    `redis` is the cache instance (CACHE_REDIS_URL, allkeys-lru), never the durable one of tokens."""
    cache: AddressCache = (
        GeocodeCache(redis, settings.cache_ttl_seconds, settings.failure_cache_ttl_seconds)
        if redis is not None
        else NoCache()
    )
    return Geocoder(
        chain or build_chain(settings, World(settings.country_bias)),
        cache,
        settings.lookup_concurrency,
        settings.job_budget_seconds,
        settings.outlier_km,
    )
