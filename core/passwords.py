"""Passwords of automatic couplings (SMTP AUTH per institution): the covenant holds only a
PBKDF2 hash, ``pbkdf2_sha256$<iterations>$<salt_b64>$<hash_b64>``, the format Django uses."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Iterable

HASH_ITERATIONS = 600_000  # OWASP's 2023 advice for PBKDF2-HMAC-SHA256


def _b64decode(text: str) -> bytes:
    text = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4))


def hash_password(
    password: str, *, salt: bytes | None = None, iterations: int = HASH_ITERATIONS
) -> str:
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    encode = base64.b64encode
    return f"pbkdf2_sha256${iterations}${encode(salt).decode()}${encode(digest).decode()}"


def stand_in_hash(stored_hashes: Iterable[str]) -> str:
    """A hash that no password matches and that costs as much to check as the costliest of
    ``stored_hashes`` (as a new hash does, when there are none): checking a password against it for
    a login that does not exist takes as long as a wrong password for one that does, so the time
    of the answer does not tell which logins exist."""
    iterations = [_iterations(stored) for stored in stored_hashes]
    costliest = max((n for n in iterations if n is not None), default=HASH_ITERATIONS)
    # A random digest for a random salt: no password matches it, and making it costs nothing.
    salt, digest = (base64.b64encode(os.urandom(n)).decode() for n in (16, 32))
    return f"pbkdf2_sha256${costliest}${salt}${digest}"


def _iterations(stored: str) -> int | None:
    parts = stored.split("$")
    if len(parts) != 4 or parts[0] != "pbkdf2_sha256" or not parts[1].isdigit():
        return None
    return int(parts[1])


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, iterations, salt, digest = stored.split("$")
        if scheme != "pbkdf2_sha256":
            return False
        computed = hashlib.pbkdf2_hmac(
            "sha256", password.encode(), _b64decode(salt), int(iterations)
        )
        return hmac.compare_digest(computed, _b64decode(digest))
    except (ValueError, TypeError):
        return False
