"""Console members' passwords (Argon2id) and set-up links (random, kept as SHA-256 digests)."""

import functools
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# argon2-cffi's defaults are RFC 9106's second recommendation: Argon2id, 64 MiB, 3 passes.
_HASHER = PasswordHasher()
MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 256


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


@functools.cache
def _unknown_member_hash() -> str:
    return _HASHER.hash(secrets.token_urlsafe(16))


def password_matches(password: str, stored: str | None) -> bool:
    """Whether `password` is the one `stored` hashes; an unknown member or one without a password
    costs the same Argon2 work, so timing does not tell which emails are members."""
    try:
        return _HASHER.verify(stored or _unknown_member_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def new_setup_token() -> str:
    return "rm_setup_" + secrets.token_urlsafe(32)


def setup_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
