"""The token endpoint's use-case: the client-credentials grant behind the brute-force lockout.

No HTTP or Kafka types here: the issuer gets its adapters as arguments, returns a typed token
and says no with an exception of this module, which the edge turns into its RFC 6749 answer.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.auth.adapters.lockout import Lockout
from services.auth.adapters.store import AuthStore
from services.auth.adapters.tables import IntegrationRow
from services.auth.adapters.tokens import TokenStore
from services.auth.credentials import ClientCredentials
from services.auth.metrics import AUTH_FAILURES
from services.auth.secrets import secret_matches
from shared.events import Event, TokenIssued, utcnow
from shared.tokens import Principal, fingerprint, new_token
from shared.vocabulary import as_utc


class ClientRejected(Exception):
    """Unknown client, wrong secret or revoked integration: the caller is not told which."""


class LockedOut(Exception):
    """Too many failures from this address (for this client_id, or overall); try again after `retry_after` s."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"locked out for {retry_after} s")
        self.retry_after = retry_after


class TokenServiceUnavailable(Exception):
    """Redis (lockout counters, token store) cannot be reached."""


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int


@dataclass(frozen=True)
class LockoutPolicy:
    """When repeated failures lock a (client_id, address) pair or an address out, and for how long.

    Failures are never counted per client_id alone: whoever knows a client_id could then lock
    its owner out. The owner, calling from its own address, is not slowed by someone else's guesses.
    """

    pair_threshold: int
    address_threshold: int
    window_seconds: int
    lock_seconds: int
    delay_cap_seconds: float = 1.0

    def delay(self, pair_failures: int) -> float:
        """How long a failed attempt waits before its answer: growing with the pair's failures."""
        return min(0.05 * 2 ** max(pair_failures - 2, 0), self.delay_cap_seconds)


@dataclass(frozen=True)
class Authenticated:
    """A live integration, and until when its token may live (the grace end for an old secret)."""

    row: IntegrationRow
    valid_until: datetime | None = None


def authenticate(store: AuthStore, pepper: str, client_id: str, secret: str, now: datetime) -> Authenticated | None:
    """The live integration these credentials belong to, or None. Same work for unknown ids."""
    row = store.integration(client_id)
    current = secret_matches(secret, row.secret_hash if row else None, pepper)
    previous = secret_matches(secret, row.previous_secret_hash if row else None, pepper)
    if row is None or row.revoked_at is not None:
        return None
    grace_until = as_utc(row.previous_valid_until)
    if current:
        return Authenticated(row)
    if previous and grace_until is not None and grace_until > now:
        return Authenticated(row, grace_until)
    return None


class TokenIssuer:
    """The client-credentials grant: the lockout first, then the secret, then a signed token."""

    def __init__(
        self,
        store: AuthStore,
        lockout: Lockout,
        tokens: TokenStore,
        audit: Callable[[Event], None],
        *,
        pepper: str,
        ttl_seconds: int,
        policy: LockoutPolicy,
        pause: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store, self.lockout, self.tokens, self.audit = store, lockout, tokens, audit
        self.pepper, self.ttl_seconds, self.policy, self.pause = pepper, ttl_seconds, policy, pause

    async def issue(self, creds: ClientCredentials, address: str, correlation_id: str) -> IssuedToken:
        """A new bearer token, or ClientRejected, LockedOut or TokenServiceUnavailable."""
        try:
            # The epoch is read before the credentials are checked: a revocation that lands after
            # this read bumps it, so the token stored below is dead on arrival (no race survives).
            epoch = await self.tokens.epoch(creds.client_id)
            found = await self._authenticated(creds, address)
            now = utcnow()
            ttl = self.ttl_seconds
            if found.valid_until is not None:  # an old secret in its grace: the token ends with the grace
                ttl = max(1, min(ttl, int((found.valid_until - now).total_seconds())))
            token, row = new_token(), found.row
            await self.tokens.keep(token, Principal(row.org_id, row.client_id), ttl, epoch)
        except OSError:  # the Redis adapters report an outage as ConnectionError
            raise TokenServiceUnavailable from None
        self.audit(
            TokenIssued(
                org_id=row.org_id,
                client_id=row.client_id,
                token_fingerprint=fingerprint(token),
                expires_at=now + timedelta(seconds=ttl),
                correlation_id=correlation_id,
            )
        )
        return IssuedToken(token, ttl)

    async def _authenticated(self, creds: ClientCredentials, address: str) -> Authenticated:
        if wait := await self.lockout.locked_for(creds.client_id, address):
            AUTH_FAILURES.labels("locked_out").inc()
            raise LockedOut(wait)
        found = await asyncio.to_thread(
            authenticate, self.store, self.pepper, creds.client_id, creds.client_secret, utcnow()
        )
        if found is None:
            AUTH_FAILURES.labels("invalid_client").inc()
            await self._failed(creds.client_id, address)
            raise ClientRejected
        await self.lockout.clear(creds.client_id, address)
        return found

    async def _failed(self, client_id: str, address: str) -> None:
        policy = self.policy
        pair_fails, address_fails = await self.lockout.count_failure(client_id, address, policy.window_seconds)
        if pair_fails >= policy.pair_threshold:
            await self.lockout.lock_pair(client_id, address, policy.lock_seconds)
        if address_fails >= policy.address_threshold:
            await self.lockout.lock_address(address, policy.lock_seconds)
        await self.pause(policy.delay(pair_fails))  # slow repeated guessing from this address
