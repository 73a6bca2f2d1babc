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
    """Too many failures for this client_id or address; try again after `retry_after` seconds."""

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
    """When repeated failures lock a client_id or an address out, and for how long."""

    client_threshold: int
    address_threshold: int
    window_seconds: int
    lock_seconds: int


def authenticate(store: AuthStore, pepper: str, client_id: str, secret: str, now: datetime) -> IntegrationRow | None:
    """The live integration these credentials belong to, or None. Same work for unknown ids."""
    row = store.integration(client_id)
    current = secret_matches(secret, row.secret_hash if row else None, pepper)
    previous = secret_matches(secret, row.previous_secret_hash if row else None, pepper)
    if row is None or row.revoked_at is not None:
        return None
    grace_until = as_utc(row.previous_valid_until)
    if current or (previous and grace_until is not None and grace_until > now):
        return row
    return None


class TokenIssuer:
    """The client-credentials grant: the lockout first, then the secret, then a stored token."""

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
            row = await self._authenticated(creds, address)
            token = new_token()
            await self.tokens.keep(token, Principal(row.org_id, row.client_id), self.ttl_seconds)
        except OSError:  # the Redis adapters report an outage as ConnectionError
            raise TokenServiceUnavailable from None
        expires_at = utcnow() + timedelta(seconds=self.ttl_seconds)
        self.audit(
            TokenIssued(
                org_id=row.org_id,
                client_id=row.client_id,
                token_fingerprint=fingerprint(token),
                expires_at=expires_at,
                correlation_id=correlation_id,
            )
        )
        return IssuedToken(token, self.ttl_seconds)

    async def _authenticated(self, creds: ClientCredentials, address: str) -> IntegrationRow:
        if wait := await self.lockout.locked_for(creds.client_id, address):
            AUTH_FAILURES.labels("locked_out").inc()
            raise LockedOut(wait)
        row = await asyncio.to_thread(
            authenticate, self.store, self.pepper, creds.client_id, creds.client_secret, utcnow()
        )
        if row is None:
            AUTH_FAILURES.labels("invalid_client").inc()
            await self._failed(creds.client_id, address)
            raise ClientRejected
        await self.lockout.clear(creds.client_id)
        return row

    async def _failed(self, client_id: str, address: str) -> None:
        policy = self.policy
        client_fails, address_fails = await self.lockout.count_failure(client_id, address, policy.window_seconds)
        if client_fails >= policy.client_threshold:
            await self.lockout.lock_client(client_id, policy.lock_seconds)
        if address_fails >= policy.address_threshold:
            await self.lockout.lock_address(address, policy.lock_seconds)
        await self.pause(min(0.05 * 2 ** max(client_fails - 2, 0), 1.0))  # slow repeated guessing
