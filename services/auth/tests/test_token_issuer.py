"""The client-credentials grant behind the lockout, on fake Redis and a temporary SQLite database."""

import pytest

from services.auth.adapters.lockout import Lockout
from services.auth.adapters.store import AuthStore
from services.auth.adapters.tokens import TokenStore
from services.auth.admin_handlers import Integrations
from services.auth.credentials import ClientCredentials
from services.auth.handlers import ClientRejected, LockedOut, LockoutPolicy, TokenIssuer, TokenServiceUnavailable
from services.auth.metrics import AUTH_FAILURES
from shared.errors import Problem
from shared.events import TokenIssued
from shared.testing.fakes import MemoryRedis, RecordingBus
from shared.tokens import Principal, fingerprint, token_digest, verify_token

PEPPER = "test-pepper"
KEY = b"test-signing-key"
POLICY = LockoutPolicy(pair_threshold=3, address_threshold=5, window_seconds=600, lock_seconds=300)


class Desk:
    """A TokenIssuer with its fakes: the audit events it records and the pauses it asks for."""

    def __init__(self, store: AuthStore, policy: LockoutPolicy = POLICY) -> None:
        self.redis, self.audited, self.pauses = MemoryRedis(), [], []
        self.issuer = TokenIssuer(
            store,
            Lockout(self.redis),
            TokenStore(self.redis, KEY),
            self.audited.append,
            pepper=PEPPER,
            ttl_seconds=3600,
            policy=policy,
            pause=self._pause,
        )

    async def _pause(self, seconds: float) -> None:
        self.pauses.append(seconds)

    async def issue(self, client_id: str, secret: str, address: str = "10.0.0.1"):
        return await self.issuer.issue(ClientCredentials(client_id, secret, via_basic=False), address, "cid-1")


@pytest.fixture
def desk(store: AuthStore) -> Desk:
    return Desk(store)


@pytest.fixture
async def client(store: AuthStore):
    return await Integrations(store, TokenStore(MemoryRedis(), KEY), RecordingBus(), pepper=PEPPER).create(
        "acme", None, "c"
    )


def failures(outcome: str) -> float:
    return AUTH_FAILURES.labels(outcome)._value.get()


async def test_a_token_is_issued_that_ingest_and_status_accept(desk, client):
    issued = await desk.issue(client.client_id, client.client_secret)
    assert issued.access_token.startswith("rm_at_") and issued.expires_in == 3600
    assert await verify_token(desk.redis, f"Bearer {issued.access_token}", KEY) == Principal(
        client.org_id, client.client_id
    )
    event = desk.audited[0]
    assert isinstance(event, TokenIssued) and event.token_fingerprint == fingerprint(issued.access_token)
    assert issued.access_token not in event.model_dump_json() and event.correlation_id == "cid-1"


async def test_a_wrong_secret_and_an_unknown_client_are_refused_alike(desk, client):
    before = failures("invalid_client")
    for client_id in (client.client_id, "rm_ci_unknown"):
        with pytest.raises(ClientRejected):
            await desk.issue(client_id, "rm_cs_wrong")
    assert failures("invalid_client") == before + 2 and desk.audited == []


async def test_repeated_failures_lock_that_address_out_of_the_client_even_with_the_right_secret(desk, client):
    for _ in range(POLICY.pair_threshold):
        with pytest.raises(ClientRejected):
            await desk.issue(client.client_id, "rm_cs_guess")
    before = failures("locked_out")
    with pytest.raises(LockedOut) as locked:
        await desk.issue(client.client_id, client.client_secret)
    assert 0 < locked.value.retry_after <= POLICY.lock_seconds
    assert failures("locked_out") == before + 1


async def test_each_failure_slows_the_next_answer_down_up_to_a_second(store):
    desk = Desk(store, LockoutPolicy(pair_threshold=100, address_threshold=100, window_seconds=600, lock_seconds=1))
    for _ in range(8):
        with pytest.raises(ClientRejected):
            await desk.issue("rm_ci_unknown", "rm_cs_guess")
    assert desk.pauses == [0.05, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


async def test_one_address_guessing_many_clients_is_locked_out_but_others_are_not(desk, client):
    for n in range(POLICY.address_threshold):
        with pytest.raises(ClientRejected):
            await desk.issue(f"rm_ci_guess{n}", "rm_cs_guess", address="10.6.6.6")
    with pytest.raises(LockedOut):
        await desk.issue(client.client_id, client.client_secret, address="10.6.6.6")
    assert await desk.issue(client.client_id, client.client_secret, address="10.0.0.2")


async def test_a_success_forgets_the_pairs_earlier_failures(desk, client):
    for _ in range(POLICY.pair_threshold - 1):
        with pytest.raises(ClientRejected):
            await desk.issue(client.client_id, "rm_cs_guess")
    await desk.issue(client.client_id, client.client_secret)
    with pytest.raises(ClientRejected):  # not locked: the count started again
        await desk.issue(client.client_id, "rm_cs_guess")
    assert await desk.issue(client.client_id, client.client_secret)


async def test_without_redis_the_token_service_says_it_is_unavailable(desk, client):
    desk.redis.down = True
    with pytest.raises(TokenServiceUnavailable):
        await desk.issue(client.client_id, client.client_secret)
    assert desk.audited == []


async def test_an_attacker_guessing_a_client_id_does_not_lock_its_owner_out(desk, client):
    """The attacker's (client_id, address) pair is locked; the owner, elsewhere, still gets a token."""
    for _ in range(POLICY.pair_threshold):
        with pytest.raises(ClientRejected):
            await desk.issue(client.client_id, "rm_cs_guess", address="203.0.113.66")
    with pytest.raises(LockedOut):
        await desk.issue(client.client_id, "rm_cs_guess", address="203.0.113.66")
    issued = await desk.issue(client.client_id, client.client_secret, address="198.51.100.7")
    assert await verify_token(desk.redis, f"Bearer {issued.access_token}", KEY)


async def test_a_token_minted_with_an_old_secret_in_its_grace_ends_with_the_grace(desk, store, client):
    integrations = Integrations(store, TokenStore(desk.redis, KEY), RecordingBus(), pepper=PEPPER)
    rotated = await integrations.rotate(client.client_id, 120, "c")
    old = await desk.issue(client.client_id, client.client_secret)
    new = await desk.issue(client.client_id, rotated.client_secret)
    assert 115 <= old.expires_in <= 120 and new.expires_in == 3600
    ttl = await desk.redis.ttl(f"rm:token:{token_digest(old.access_token)}")
    assert 0 < ttl <= 120
    assert desk.audited[0].expires_at <= rotated.old_secret_valid_until


class RevokedMidway(TokenStore):
    """A token store whose integration is revoked after the secret was checked, before the token is kept."""

    def __init__(self, redis, integrations_of) -> None:
        super().__init__(redis, KEY)
        self.integrations_of = integrations_of

    async def keep(self, token, principal, ttl_seconds, epoch) -> None:
        await self.integrations_of(self).revoke(principal.client_id, "race")
        await super().keep(token, principal, ttl_seconds, epoch)


async def test_a_revocation_that_lands_while_a_token_is_minted_still_ends_that_token(store, client):
    redis = MemoryRedis()
    tokens = RevokedMidway(redis, lambda t: Integrations(store, t, RecordingBus(), pepper=PEPPER))
    issuer = TokenIssuer(
        store, Lockout(redis), tokens, [].append, pepper=PEPPER, ttl_seconds=3600, policy=POLICY, pause=_no_pause
    )
    issued = await issuer.issue(ClientCredentials(client.client_id, client.client_secret, False), "10.0.0.1", "c")
    with pytest.raises(Problem) as refused:
        await verify_token(redis, f"Bearer {issued.access_token}", KEY)
    assert refused.value.status == 401


async def _no_pause(seconds: float) -> None:
    return None
