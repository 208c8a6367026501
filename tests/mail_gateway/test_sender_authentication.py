"""Sender authentication beyond the envelope: DKIM aligned with From, a trusted upstream
server's Authentication-Results, and SMTP AUTH passwords for automatic couplings."""

from __future__ import annotations

import base64
import smtplib
from collections.abc import Callable

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlmodel import Session, select

from core.models import InboundMessage
from core.passwords import hash_password, verify_password
from mail_gateway.authentication import (
    MessageAuthenticator,
    aligned,
)
from mail_gateway.context import Gateway
from tests.mail_gateway.conftest import RunningGateway
from tests.mail_gateway.test_smtp_intake import GGD, REGISTRATIE, registration

SELECTOR = b"vi2026"


class SigningDomain:
    """A locally generated DKIM key and the DNS answer that publishes it."""

    def __init__(self, domain: str):
        self.domain = domain.encode()
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        public_der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.txt = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public_der)

    def sign(self, message: bytes) -> bytes:
        signature = dkim.sign(message, SELECTOR, self.domain, self.private_pem)
        return signature + message

    def dns(self, name: bytes, timeout: int = 5) -> bytes | None:
        return self.txt if name == SELECTOR + b"._domainkey." + self.domain + b"." else None


@pytest.fixture(scope="module")
def ggd_key() -> SigningDomain:
    return SigningDomain("ggd-groningen.example")


def test_alignment_is_relaxed_like_dmarc() -> None:
    assert aligned("ggd-groningen.example", "ggd-groningen.example")
    assert aligned("ggd-groningen.example", "mail.ggd-groningen.example")
    assert not aligned("mail.ggd-groningen.example", "ggd-groningen.example")
    assert not aligned("groningen.example", "evilggd-groningen.example")


def test_a_valid_aligned_dkim_signature_passes(ggd_key: SigningDomain) -> None:
    checker = MessageAuthenticator(verify_dkim=True, dns_lookup=ggd_key.dns)
    assert checker.verify(ggd_key.sign(registration()), GGD).authentic


def test_a_message_altered_after_signing_fails(ggd_key: SigningDomain) -> None:
    checker = MessageAuthenticator(verify_dkim=True, dns_lookup=ggd_key.dns)
    signed = ggd_key.sign(registration())
    tampered = signed.replace(b"Kenmerk: GGD-1", b"Kenmerk: GGD-9")
    verdict = checker.verify(tampered, GGD)
    assert not verdict.authentic and "DKIM" in verdict.reason


def test_a_signature_of_another_domain_does_not_vouch_for_from(ggd_key: SigningDomain) -> None:
    other = SigningDomain("kwaadwillend.example")
    checker = MessageAuthenticator(verify_dkim=True, dns_lookup=other.dns)
    assert not checker.verify(other.sign(registration()), GGD).authentic


def test_unsigned_mail_fails_when_dkim_is_required() -> None:
    checker = MessageAuthenticator(verify_dkim=True, dns_lookup=lambda *_a, **_k: None)
    assert checker.verify(registration(), GGD).reason == "no DKIM signature"


def test_from_header_must_agree_with_the_envelope_sender() -> None:
    checker = MessageAuthenticator()
    forged = registration(sender="directeur@wij-groningen.example")
    assert not checker.verify(forged, GGD).authentic
    assert checker.verify(registration(), GGD).authentic


def test_only_the_topmost_result_of_the_trusted_server_counts() -> None:
    checker = MessageAuthenticator(trusted_authserv_id="mx.gemeente-groningen.example")
    trusted = b"Authentication-Results: mx.gemeente-groningen.example; "
    passing = trusted + b"dkim=pass header.d=ggd-groningen.example\r\n"
    failing = trusted + b"dkim=fail header.d=ggd-groningen.example\r\n"
    stranger = (
        b"Authentication-Results: mx.elders.example; dkim=pass header.d=ggd-groningen.example\r\n"
    )
    assert checker.verify(passing + registration(), GGD).authentic
    # A forger who adds a passing header *below* the trusted server's own verdict gains nothing.
    assert not checker.verify(failing + passing + registration(), GGD).authentic
    assert not checker.verify(stranger + registration(), GGD).authentic


def test_passwords_are_checked_against_the_covenant_hash() -> None:
    stored = hash_password("geheim-wachtwoord", iterations=1000)
    assert verify_password("geheim-wachtwoord", stored)
    assert not verify_password("geraden", stored)
    assert not verify_password("geheim-wachtwoord", "md5$1$x$y")


def test_the_listener_refuses_unsigned_registrations_when_dkim_is_required(
    make_gateway: Callable[..., Gateway],
    run_gateway: Callable[..., RunningGateway],
    ggd_key: SigningDomain,
) -> None:
    gateway = make_gateway(verify_dkim=True)
    running = run_gateway(gateway, ["smtp"])
    # The listener's authenticator looks keys up in DNS; point it at the local key.
    gateway.authenticator.dns_lookup = ggd_key.dns
    with smtplib.SMTP("127.0.0.1", running.smtp_port, timeout=10) as smtp:
        code = smtp.sendmail(GGD, [REGISTRATIE], ggd_key.sign(registration()))
        assert code == {}
        with pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.sendmail(GGD, [REGISTRATIE], registration())
    assert refused.value.smtp_code == 550
    with Session(gateway.engine) as session:
        assert len(session.exec(select(InboundMessage)).all()) == 1
