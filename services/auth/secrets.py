"""Client credentials: generation, peppered hashing, constant-time comparison."""

import hashlib
import hmac
import secrets

CLIENT_ID_PREFIX = "rm_ci_"
SECRET_PREFIX = "rm_cs_"


def new_client_id() -> str:
    return CLIENT_ID_PREFIX + secrets.token_urlsafe(16)


def new_secret() -> str:
    """A client secret with 256 bits of randomness, shown to its owner once."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str, pepper: str) -> str:
    """HMAC-SHA256 keyed with the server-side pepper: a stolen table alone verifies nothing."""
    return hmac.new(pepper.encode(), secret.encode(), hashlib.sha256).hexdigest()


def secret_matches(secret: str, stored_hash: str | None, pepper: str) -> bool:
    """Compare in constant time; a missing hash still costs one HMAC so timing says nothing."""
    candidate = hash_secret(secret, pepper)
    return hmac.compare_digest(candidate, stored_hash or "0" * 64) and stored_hash is not None
