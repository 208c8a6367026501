"""AES-GCM sealing under the region's key ring, each sealed value naming the key that sealed it.

A sealed value is ``FORMAT || key id (8 ASCII hex) || nonce (12) || ciphertext+tag``. The key id
lets a value written before a rotation still be opened with the previous key while
``verwijsindex keys rotate`` runs, and lets the rotation find what is still under an old key
without opening it. Each purpose (identity fields, inbound mail, Slack bot tokens, the secrets a
notification carries in the outbox) has its own label, so a key derived for one never opens
another's data.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.errors import SystemError_
from core.keyring import KEY_ID_LENGTH, KeyRing, SecretKey

FORMAT = b"\x01"
NONCE_BYTES = 12
HEADER_BYTES = len(FORMAT) + KEY_ID_LENGTH

IDENTITY_PURPOSE = b"verwijsindex identity encryption v1"
INBOUND_MAIL_PURPOSE = b"verwijsindex inbound mail v1"
SLACK_TOKEN_PURPOSE = b"verwijsindex slack token v1"  # core.slack_installations
OUTBOX_SECRET_PURPOSE = b"verwijsindex outbox secret v1"  # core.outbox_secrets


def header(key_id: str) -> bytes:
    """The first bytes of every value sealed under ``key_id``."""
    return FORMAT + key_id.encode("ascii")


def sealed_key_id(sealed: bytes) -> str:
    if len(sealed) < HEADER_BYTES + NONCE_BYTES or sealed[:1] != FORMAT:
        raise SystemError_("een versleutelde waarde heeft geen bekende opmaak")
    return sealed[1:HEADER_BYTES].decode("ascii")


class Sealer:
    """Seals under the ring's current key; opens under whichever ring key a value names."""

    def __init__(self, ring: KeyRing, purpose: bytes, *, unreadable: str):
        self.ring = ring
        self._purpose = purpose
        self._unreadable = unreadable  # the Dutch message when a value does not open
        self._aeads: dict[str, AESGCM] = {}

    def _aead(self, key: SecretKey) -> AESGCM:
        # HKDF once per key, not per value: the bulk import seals tens of thousands a second.
        aead = self._aeads.get(key.id)
        if aead is None:
            aead = self._aeads[key.id] = AESGCM(key.derive(self._purpose))
        return aead

    def seal(self, plaintext: bytes) -> bytes:
        key = self.ring.current
        nonce = os.urandom(NONCE_BYTES)
        # The header is authenticated too (associated data): a value cannot be relabelled.
        head = header(key.id)
        return head + nonce + self._aead(key).encrypt(nonce, plaintext, head)

    def open(self, sealed: bytes) -> bytes:
        key = self.ring.get(sealed_key_id(sealed))  # a clear error when that key is gone
        nonce = sealed[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES]
        try:
            return self._aead(key).decrypt(
                nonce, sealed[HEADER_BYTES + NONCE_BYTES :], sealed[:HEADER_BYTES]
            )
        except InvalidTag as exc:  # altered bytes, or another region's key with the same id
            raise SystemError_(self._unreadable) from exc

    def is_current(self, sealed: bytes) -> bool:
        return sealed[:HEADER_BYTES] == header(self.ring.current.id)

    def reseal(self, sealed: bytes) -> bytes:
        """The same value under the current key (unchanged when it is under it already)."""
        return sealed if self.is_current(sealed) else self.seal(self.open(sealed))
