import time

import pytest

from shared.errors import Problem, json_pointer
from shared.testing.fakes import MemoryRedis, seed_token
from shared.tokens import (
    Principal,
    TokenCache,
    fingerprint,
    new_token,
    revoke_tokens,
    signed_record,
    token_digest,
    token_key,
    verify_token,
)


def test_pointers_name_the_field_in_the_body():
    assert json_pointer(("body", "stops", 3, "address")) == "/stops/3/address"
    assert json_pointer(("body", "a/b~c")) == "/a~1b~0c"


def test_tokens_carry_256_bits_and_only_their_hash_is_a_key():
    token = new_token()
    assert token.startswith("rm_at_") and len(token) >= 6 + 43
    assert token not in token_digest(token) and len(token_digest(token)) == 64
    assert token_digest(token) != token_digest(new_token())
    assert len(fingerprint(token)) == 12


KEY = b"k" * 32
OWNER = Principal("org_1", "rm_ci_1")


class FakeRedis:
    def __init__(self, data: dict) -> None:
        self.data = data

    async def hgetall(self, key: str) -> dict:
        return self.data.get(key, {})

    async def get(self, key: str):
        return self.data.get(key)


def stored(token: str, owner: Principal = OWNER, key: bytes = KEY, expires_at: int | None = None, epoch: int = 0):
    record = signed_record(key, token_digest(token), owner, expires_at or int(time.time()) + 60, epoch)
    return {token_key(token_digest(token)): {k.encode(): v.encode() for k, v in record.items()}}


async def test_a_stored_token_names_its_integration():
    token = new_token()
    assert await verify_token(FakeRedis(stored(token)), f"Bearer {token}", KEY) == OWNER


def forged(token: str) -> dict:
    """A record written into Redis by someone without the signing key."""
    return {token_key(token_digest(token)): {b"org_id": b"org_victim", b"client_id": b"rm_ci_1"}}


def tampered(token: str) -> dict:
    data = stored(token)
    data[token_key(token_digest(token))][b"org_id"] = b"org_victim"  # the MAC no longer matches
    return data


def revoked_since(token: str) -> dict:
    return {**stored(token, epoch=0), "rm:client-epoch:rm_ci_1": b"1"}


@pytest.mark.parametrize(
    "records",
    [
        forged,
        tampered,
        lambda t: stored(t, key=b"another key"),
        lambda t: stored(t, expires_at=int(time.time()) - 1),
        revoked_since,
    ],
    ids=["no-mac", "tampered-org", "other-key", "expired", "older-epoch"],
)
async def test_a_record_not_signed_by_the_server_expired_or_revoked_is_refused(records):
    token = new_token()
    with pytest.raises(Problem) as refused:
        await verify_token(FakeRedis(records(token)), f"Bearer {token}", KEY)
    assert refused.value.status == 401 and refused.value.code == "invalid_token"


@pytest.mark.parametrize(
    "header, code",
    [
        (None, "missing_token"),
        ("Basic abc", "invalid_token"),
        ("Bearer not-a-routemate-token", "invalid_token"),
        ("Bearer " + "rm_at_" + "A" * 43, "invalid_token"),  # well-formed but unknown
    ],
)
async def test_bad_tokens_get_401_with_a_bearer_challenge(header, code):
    with pytest.raises(Problem) as err:
        await verify_token(FakeRedis({}), header, KEY)
    assert err.value.status == 401 and err.value.code == code
    assert err.value.headers["WWW-Authenticate"].startswith("Bearer")


class CountingRedis(MemoryRedis):
    """MemoryRedis that counts the token-record reads."""

    reads = 0

    async def hgetall(self, key: str):
        self.reads += 1
        return await super().hgetall(key)


def _cached_setup(ttl_s: float = 60.0, clock=None):
    redis, token = CountingRedis(), new_token()
    seed_token(redis, token, OWNER.org_id, OWNER.client_id, key=KEY)
    cache = TokenCache(size=2, ttl_s=ttl_s, **({"clock": clock} if clock else {}))
    return redis, token, cache


async def test_a_cached_token_is_read_once_but_a_revocation_ends_it_at_once():
    redis, token, cache = _cached_setup()
    for _ in range(3):
        assert await verify_token(redis, f"Bearer {token}", KEY, cache) == OWNER
    assert redis.reads == 1
    await revoke_tokens(redis, OWNER.client_id)
    with pytest.raises(Problem) as err:
        await verify_token(redis, f"Bearer {token}", KEY, cache)
    assert (err.value.status, err.value.code) == (401, "invalid_token")


async def test_a_record_deleted_without_revocation_stops_working_within_the_cache_ttl():
    now = [0.0]
    redis, token, cache = _cached_setup(ttl_s=60, clock=lambda: now[0])
    assert await verify_token(redis, f"Bearer {token}", KEY, cache) == OWNER
    redis.values.clear()  # a flushed Redis: no record, and the epoch back at 0
    now[0] = 59.0
    assert await verify_token(redis, f"Bearer {token}", KEY, cache) == OWNER  # within the documented bound
    now[0] = 60.0
    with pytest.raises(Problem):
        await verify_token(redis, f"Bearer {token}", KEY, cache)


async def test_the_cache_is_bounded_and_never_holds_an_expired_or_refused_token():
    redis, token, cache = _cached_setup()
    others = [new_token() for _ in range(2)]
    for other in others:
        seed_token(redis, other, OWNER.org_id, OWNER.client_id, key=KEY)
    for t in [token, *others]:
        await verify_token(redis, f"Bearer {t}", KEY, cache)
    assert len(cache) == 2 and cache.get(token_digest(token), time.time()) is None  # least recently used out
    assert cache.get(token_digest(others[1]), time.time() + 7200) is None  # past its exp: gone
    with pytest.raises(Problem):
        await verify_token(redis, f"Bearer {new_token()}", KEY, cache)
    assert len(cache) == 1
