"""Sealing inbound mail at rest: a registration mail carries BSNs, which are never stored in
clear (DOMAIN, privacy). AES-GCM with a key derived from the region's secret for this purpose
only, so a leaked mail key never opens the identity fields, nor the reverse."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.errors import SystemError_

NONCE_BYTES = 12


class MessageVault:
    def __init__(self, secret: bytes):
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"verwijsindex inbound mail v1"
        ).derive(secret)
        self._aead = AESGCM(key)

    def seal(self, raw: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, raw, None)

    def open(self, sealed: bytes) -> bytes:
        try:
            return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], None)
        except InvalidTag as exc:
            raise SystemError_("een opgeslagen bericht is niet te lezen met de sleutel") from exc
