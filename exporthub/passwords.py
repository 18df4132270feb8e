"""Argon2 password hashing."""

from __future__ import annotations

import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """A real hash of a random string: verifying against it costs the same time as a real user, so a
    login for an unknown user does not answer faster than one for a known user. Made on first use,
    not at import: hashing costs 0.2 s and 64 MiB, which every command paid whether it checked a
    password or not."""
    return _hasher.hash("exporthub-timing-equaliser")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; False for a wrong password, a bad hash or no hash at all."""
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    """A random temporary password (16 URL-safe characters) for the admin page to hand out."""
    return secrets.token_urlsafe(12)
