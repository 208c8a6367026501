"""DKIM signing of outgoing mail here, when the region's relay does not sign it (issue 13.5).

With ``VERWIJSINDEX_DKIM_KEY`` (a PEM private key file) every message the delivery worker sends
is signed (dkimpy, rsa-sha256, relaxed/relaxed) for ``VERWIJSINDEX_DKIM_DOMAIN`` (default: the
mail domain) with ``VERWIJSINDEX_DKIM_SELECTOR``; the public key goes in DNS as
``SELECTOR._domainkey.DOMAIN TXT "v=DKIM1; k=rsa; p=..."`` (README, "Outgoing DKIM"). Receivers
that check DMARC then accept mail from the verwijsindex's own domain. A key that cannot be read or
used stops the delivery role at start, not at the first mail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import dkim

from mail_gateway.delivery.relay import Relay

# Signed when present: what a receiver shows, and what threads the conversation.
SIGNED_HEADERS = (
    b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"in-reply-to", b"references",
    b"reply-to", b"mime-version", b"content-type", b"content-transfer-encoding",
    b"auto-submitted",
)


@dataclass(frozen=True)
class DkimSigner:
    domain: str
    selector: str
    private_key: bytes

    @classmethod
    def from_file(cls, path: Path, *, domain: str, selector: str) -> DkimSigner:
        try:
            private_key = path.read_bytes()
        except OSError as exc:
            problem = f"{path} cannot be read ({exc.strerror})"
            raise ValueError(f"VERWIJSINDEX_DKIM_KEY: {problem}") from None
        signer = cls(domain, selector, private_key)
        signer.sign(b"From: test@" + domain.encode() + b"\r\nSubject: test\r\n\r\ntest\r\n")
        return signer

    def sign(self, message: bytes) -> bytes:
        try:
            signature = dkim.sign(
                message,
                self.selector.encode("ascii"),
                self.domain.encode("ascii"),
                self.private_key,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=[h for h in SIGNED_HEADERS if _has_header(message, h)],
            )
        except (dkim.DKIMException, ValueError) as exc:
            raise ValueError(f"VERWIJSINDEX_DKIM_KEY cannot sign: {exc}") from None
        return signature + message


def _has_header(message: bytes, name: bytes) -> bool:
    head = message.split(b"\r\n\r\n", 1)[0].lower()
    return head.startswith(name + b":") or b"\r\n" + name + b":" in head


class DkimSigningRelay:
    """A relay that signs every message before the one it wraps sends it."""

    def __init__(self, relay: Relay, signer: DkimSigner):
        self.relay = relay
        self.signer = signer

    def send(self, message: bytes, *, envelope_from: str, recipients: Sequence[str]) -> None:
        self.relay.send(
            self.signer.sign(message), envelope_from=envelope_from, recipients=recipients
        )

    def close(self) -> None:
        self.relay.close()
