"""HMAC-SHA256 signatures under keys derived from the instance secret, one key per purpose.

Download links and session cookies are signed here. Each purpose gets its own key
(``HMAC(secret, "exporthub/<purpose>/v1")``), so a value signed for one purpose never verifies for
another: a session cookie can never pass as a download link, nor the other way round. Rotating
``EXPORTHUB_SECRET_KEY`` (or deleting ``data/secret.key``) invalidates every signature at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from exporthub.settings import Settings

SIGNATURE_LENGTH = 43  # base64url of 32 bytes, without padding


def b64(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def purpose_key(settings: Settings, purpose: str) -> bytes:
    """The key for one purpose. Raises ``SettingsError`` when the instance has no usable secret."""
    return hmac.new(
        settings.resolved_secret_key().encode("utf-8"), f"exporthub/{purpose}/v1".encode(), hashlib.sha256
    ).digest()


def sign(settings: Settings, purpose: str, message: str) -> str:
    """The signature of ``message`` (ASCII) for ``purpose``: 43 base64url characters."""
    return b64(hmac.new(purpose_key(settings, purpose), message.encode("ascii"), hashlib.sha256).digest())


def verify(settings: Settings, purpose: str, message: str, signature: str) -> bool:
    """Whether ``signature`` is the signature of ``message`` for ``purpose`` (constant-time compare).

    Anything that is not ASCII is simply not a valid signature.
    """
    try:
        expected = sign(settings, purpose, message).encode("ascii")
        return hmac.compare_digest(expected, signature.encode("ascii"))
    except UnicodeError:
        return False


def token_hash(secret: str) -> str:
    """The sha256 hex digest under which a high-entropy secret (session id, ticket, API token) is stored.

    The database keeps only this: a copy of the metadata DB gives nobody a usable cookie or token.
    """
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
