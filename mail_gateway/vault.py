"""Sealing inbound mail at rest: a registration mail carries BSNs, which are never stored in
clear (DOMAIN, privacy). AES-GCM with a key derived from the region's key for this purpose
only, so a leaked mail key never opens the identity fields, nor the reverse. Each sealed message
names its key (core.sealing): mail kept for the administrator is still opened with the previous
key after a key change, until ``verwijsindex keys rotate`` has resealed it."""

from __future__ import annotations

from core.keyring import KeyRing
from core.sealing import INBOUND_MAIL_PURPOSE, Sealer


class MessageVault:
    def __init__(self, ring: KeyRing | bytes):
        self._sealer = Sealer(
            ring if isinstance(ring, KeyRing) else KeyRing.of(ring),
            INBOUND_MAIL_PURPOSE,
            unreadable="een opgeslagen bericht is niet te lezen met de sleutel",
        )

    def seal(self, raw: bytes) -> bytes:
        return self._sealer.seal(raw)

    def open(self, sealed: bytes) -> bytes:
        return self._sealer.open(sealed)
