"""The region's secret keys: the current one, and the previous ones while a rotation runs.

Every keyed thing in the project (BSN digests, identity encryption, sealed inbound mail, the
logboek's MAC chain, notification Message-IDs) derives its own key from a region secret with
HKDF and a purpose label of its own, so one derived key never opens another purpose's data.
What is written under a key carries that key's *id*, so after ``VERWIJSINDEX_SECRET_KEY`` is
replaced (the old value moved to ``VERWIJSINDEX_PREVIOUS_SECRET_KEYS``) the old data is still
read with the old key until ``verwijsindex keys rotate`` has moved it to the new one.

The id is a digest of the secret made with a label of its own: it names the key without
revealing anything that opens data.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache, cached_property

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.errors import SystemError_

KEY_ID_LENGTH = 8  # hex characters: enough to tell a handful of region keys apart


@cache  # a handful of keys and purposes, derived on every MAC and seal otherwise
def _hkdf(secret: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


@dataclass(frozen=True)
class SecretKey:
    """One region secret. ``derive(purpose)`` is the 32-byte key for that purpose."""

    secret: bytes = field(repr=False)

    @cached_property  # asked for every sealed value and digest: HKDF once per key
    def id(self) -> str:
        return _hkdf(self.secret, b"verwijsindex key id v1").hex()[:KEY_ID_LENGTH]

    def derive(self, purpose: bytes) -> bytes:
        return _hkdf(self.secret, purpose)

    def mac(self, purpose: bytes, message: bytes) -> str:
        """HMAC-SHA256 (hex) of ``message`` under this key's ``purpose`` key."""
        return hmac.new(self.derive(purpose), message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class KeyRing:
    """The current key (everything new is written under it) and the previous keys (still read)."""

    current: SecretKey
    previous: tuple[SecretKey, ...] = ()

    @classmethod
    def of(cls, secret: bytes, previous: Iterable[bytes] = ()) -> KeyRing:
        current = SecretKey(secret)
        older = tuple(
            SecretKey(s) for s in dict.fromkeys(previous) if SecretKey(s).id != current.id
        )
        return cls(current, older)

    @property
    def keys(self) -> tuple[SecretKey, ...]:
        return (self.current, *self.previous)

    def get(self, key_id: str) -> SecretKey:
        for key in self.keys:
            if key.id == key_id:
                return key
        raise SystemError_(
            f"sleutel {key_id} is niet bekend: zet de oude sleutel in "
            "VERWIJSINDEX_PREVIOUS_SECRET_KEYS tot 'verwijsindex keys rotate' klaar is"
        )
