"""Outgoing DKIM signing here (issue 13.5: ``VERWIJSINDEX_DKIM_KEY``): what the relay receives
verifies against the public key a receiver finds in DNS."""

from __future__ import annotations

import base64
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.engine import Engine

from core.settings import Settings
from mail_gateway.delivery.worker import MailDelivery
from tests.conftest import TEST_SECRET
from tests.mail_gateway.relay_sink import RelaySink
from tests.mail_gateway.test_delivery import MAIL_DOMAIN, REGION, enqueue_notification


def _key_pair(folder: Path) -> tuple[Path, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = folder / "dkim.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def _settings(tmp_path: Path, relay_url: str, **dkim_settings: object) -> Settings:
    return Settings(
        secret_key=TEST_SECRET,
        mail_domain=MAIL_DOMAIN,
        relay_url=relay_url,
        secret_file=tmp_path / "unused-secret",
        **dkim_settings,  # type: ignore[arg-type]
    )


def test_sent_mail_carries_a_signature_that_verifies(engine: Engine, tmp_path: Path) -> None:
    private, dns_record = _key_pair(tmp_path)
    enqueue_notification(engine, 1, in_reply_to="<origineel.1@ggd-groningen.example>")
    with RelaySink() as sink:
        settings = _settings(tmp_path, sink.url, dkim_key=private, dkim_selector="vi2026")
        assert MailDelivery(engine, settings, region_name=REGION).deliver_batch().sent == 1
        [received] = sink.messages()

    raw = received.raw
    assert raw.startswith(b"DKIM-Signature:")
    asked: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes:
        asked.append(name)
        return dns_record

    assert dkim.verify(raw, dnsfunc=dns)
    assert asked == [f"vi2026._domainkey.{MAIL_DOMAIN}.".encode()]
    header = raw.split(b"\r\nFrom:", 1)[0].decode()  # the DKIM-Signature field, first
    tags = dict(
        tag.strip().split("=", 1) for tag in " ".join(header.split(":", 1)[1].split()).split(";")
        if "=" in tag
    )
    assert (tags["d"], tags["s"], tags["a"]) == (MAIL_DOMAIN, "vi2026", "rsa-sha256")
    signed = {name.strip().lower() for name in tags["h"].split(":")}
    assert {"from", "to", "subject", "date", "message-id", "in-reply-to"} <= signed
    # Any change on the way (a rewritten subject) breaks it.
    assert not dkim.verify(raw.replace(b"Subject: ", b"Subject: [extern] ", 1), dnsfunc=dns)


def test_an_unusable_key_stops_delivery_at_start(engine: Engine, tmp_path: Path) -> None:
    broken = tmp_path / "dkim.pem"
    broken.write_text("-----BEGIN PRIVATE KEY-----\nniet-een-sleutel\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ValueError, match="VERWIJSINDEX_DKIM_KEY"):
        MailDelivery(
            engine, _settings(tmp_path, "maildir:" + str(tmp_path / "out"), dkim_key=broken),
            region_name=REGION,
        )
    with pytest.raises(ValueError, match="cannot be read"):
        MailDelivery(
            engine,
            _settings(tmp_path, "maildir:" + str(tmp_path / "out"), dkim_key=tmp_path / "weg"),
            region_name=REGION,
        )
