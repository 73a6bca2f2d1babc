"""Two Redis instances over the real stack: the durable one (tokens, lockouts, rate buckets,
idempotency, outcomes) never evicts and refuses writes when full; the cache one holds the
geocode cache only and evicts its least recently used entries when full."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import redis

from services.geocoder.adapters.cache import GeocodeCache
from shared.testing.stack import CACHE_REDIS_URL, REDIS_URL
from tests.conftest import Tenant


@pytest.fixture
def durable() -> Iterator[redis.Redis]:
    with redis.Redis.from_url(REDIS_URL) as client:
        yield client


@pytest.fixture
def cache() -> Iterator[redis.Redis]:
    with redis.Redis.from_url(CACHE_REDIS_URL) as client:
        yield client


@contextmanager
def maxmemory(client: redis.Redis, limit: int) -> Iterator[None]:
    """The instance's maxmemory at `limit` bytes for a while, then back to what it was."""
    before = client.config_get("maxmemory")["maxmemory"]
    client.config_set("maxmemory", limit)
    try:
        yield
    finally:
        client.config_set("maxmemory", before)


def test_each_instance_runs_with_its_own_eviction_policy_and_a_memory_limit(durable, cache):
    assert durable.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    assert cache.config_get("maxmemory-policy")["maxmemory-policy"] == "allkeys-lru"
    assert int(durable.config_get("maxmemory")["maxmemory"]) > 0
    assert int(cache.config_get("maxmemory")["maxmemory"]) > 0
    assert durable.connection_pool.connection_kwargs["port"] != cache.connection_pool.connection_kwargs["port"]


async def test_geocode_cache_entries_land_only_in_the_cache_instance(durable, cache, tenant: Tenant):
    body = tenant.job()
    run = uuid.uuid4().hex[:8]
    for stop in body["stops"]:  # addresses no earlier run looked up: their entries are this run's
        stop["address"] = f"Unit {run} {stop['address']}"
    routed = await tenant.import_job(body)
    assert routed.status_code == 201 and routed.json()["status"] == "assigned"
    keys = [GeocodeCache.key(stop["address"]) for stop in body["stops"]]
    assert all(cache.exists(key) for key in keys)
    assert not any(durable.exists(key) for key in keys)


async def test_a_full_cache_evicts_cache_entries_while_tokens_and_imports_keep_working(
    durable, cache, tenant: Tenant, http: httpx.AsyncClient
):
    base = int(cache.info("memory")["used_memory"])
    evicted_before = int(cache.info("stats")["evicted_keys"])
    tokens_before = sum(1 for _ in durable.scan_iter("rm:token:*", count=1000))
    prefix = f"rm:geo:fill-{uuid.uuid4().hex[:8]}:"
    with maxmemory(cache, base + 4 * 1024 * 1024):
        # Attacker-chosen addresses, 16 MiB of them, into an instance that may hold 4 MiB more.
        with cache.pipeline(transaction=False) as pipe:
            for i in range(4096):
                pipe.set(f"{prefix}{i}", b"x" * 4096)
            pipe.execute()
        assert int(cache.info("stats")["evicted_keys"]) > evicted_before
        assert sum(1 for _ in cache.scan_iter(f"{prefix}*", count=1000)) < 4096
        # The durable instance lost nothing and takes new tokens; imports still route.
        assert int(durable.info("stats")["evicted_keys"]) == 0
        assert sum(1 for _ in durable.scan_iter("rm:token:*", count=1000)) >= tokens_before
        assert (await tenant.get_job(str(uuid.uuid4()))).status_code == 404
        fresh = await Tenant(http).login()
        routed = await fresh.import_job()
        assert routed.status_code == 201 and routed.json()["status"] == "assigned"
    for key in cache.scan_iter(f"{prefix}*", count=1000):
        cache.delete(key)


async def test_a_full_durable_instance_refuses_new_tokens_and_drops_none(durable, tenant: Tenant, http):
    keys = sorted(durable.scan_iter("rm:token:*", count=1000))
    with maxmemory(durable, 1):  # below what it holds: every write is refused
        refused = await http.post(
            "/v1/integration-token",
            json={"client_id": tenant.creds["client_id"], "client_secret": tenant.creds["client_secret"]},
        )
        assert refused.status_code == 503 and refused.json()["error"] == "temporarily_unavailable"
        assert sorted(durable.scan_iter("rm:token:*", count=1000)) == keys
    assert (await tenant.get_job(str(uuid.uuid4()))).status_code == 404  # the token it held still works
