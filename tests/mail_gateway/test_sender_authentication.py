"""Sender authentication beyond the envelope: DKIM aligned with From (DMARC's organisational
domains), a trusted upstream server's Authentication-Results (only from a trusted relay), one
table of what each mailbox requires, and SMTP AUTH passwords for automatic couplings."""

from __future__ import annotations

import base64
import smtplib
from collections.abc import Callable
from ipaddress import ip_network

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlmodel import Session, select

from core.covenant.sync import sync_covenant
from core.db import transaction
from core.models import InboundMessage
from core.passwords import hash_password, verify_password
from core.settings import Settings
from mail_gateway.authentication import (
    MAILBOX_REQUIREMENTS,
    MessageAuthenticator,
    Requirement,
    aligned,
)
from mail_gateway.context import Gateway
from mail_gateway.mailboxes import Mailbox
from tests.mail_gateway.conftest import RunningGateway
from tests.mail_gateway.test_smtp_intake import GGD, REGISTRATIE, registration

SELECTOR = b"vi2026"
UPSTREAM = "mx.gemeente-groningen.example"
LOOPBACK = (ip_network("127.0.0.0/8"), ip_network("::1/128"))


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


def test_alignment_compares_organisational_domains_like_dmarc() -> None:
    # RFC 7489 §3.1.1 relaxed alignment: the organisational domains (Public Suffix List) match.
    assert aligned("ggd-groningen.example", "ggd-groningen.example")
    assert aligned("ggd-groningen.example", "mail.ggd-groningen.example")
    assert aligned("mail.ggd-groningen.example", "ggd-groningen.example")
    assert aligned("Mail.GGD.co.uk.", "ggd.co.uk")
    assert not aligned("groningen.example", "evilggd-groningen.example")
    assert not aligned("ggd.co.uk", "wij.co.uk"), "two organisations under one public suffix"
    # A public suffix has no organisational domain: it aligns with nothing, itself included.
    for suffix in ("nl", "co.uk", "example"):
        assert not aligned(suffix, f"ggd.{suffix}")
        assert not aligned(f"ggd.{suffix}", suffix)
        assert not aligned(suffix, suffix)
    assert not aligned("", "ggd.nl")


def test_a_valid_aligned_dkim_signature_passes(ggd_key: SigningDomain) -> None:
    checker = MessageAuthenticator(verify_dkim=True, dns_lookup=ggd_key.dns)
    assert checker.verify(ggd_key.sign(registration()), GGD, peer=None).authentic


def test_a_signature_of_a_subdomain_vouches_for_the_organisation() -> None:
    mail_host = SigningDomain("mail.ggd-groningen.example")
    checker = MessageAuthenticator(verify_dkim=True, dns_lookup=mail_host.dns)
    assert checker.verify(mail_host.sign(registration()), GGD, peer=None).authentic


def test_a_signature_by_a_public_suffix_vouches_for_nobody() -> None:
    sender = "verwijsindex@ggd.co.uk"
    suffix = SigningDomain("co.uk")  # anyone who could sign as d=co.uk (valid, published key)
    checker = MessageAuthenticator(verify_dkim=True, dns_lookup=suffix.dns)
    verdict = checker.verify(suffix.sign(registration(sender=sender)), sender, peer=None)
    assert (verdict.authentic, verdict.reason) == (
        False,
        "no valid DKIM signature aligned with From",
    )


def test_a_message_altered_after_signing_fails(ggd_key: SigningDomain) -> None:
    checker = MessageAuthenticator(verify_dkim=True, dns_lookup=ggd_key.dns)
    signed = ggd_key.sign(registration())
    tampered = signed.replace(b"Kenmerk: GGD-1", b"Kenmerk: GGD-9")
    verdict = checker.verify(tampered, GGD, peer=None)
    assert not verdict.authentic and "DKIM" in verdict.reason


def test_a_signature_of_another_domain_does_not_vouch_for_from(ggd_key: SigningDomain) -> None:
    other = SigningDomain("kwaadwillend.example")
    checker = MessageAuthenticator(verify_dkim=True, dns_lookup=other.dns)
    assert not checker.verify(other.sign(registration()), GGD, peer=None).authentic


def test_unsigned_mail_fails_when_dkim_is_required() -> None:
    checker = MessageAuthenticator(verify_dkim=True, dns_lookup=lambda *_a, **_k: None)
    assert checker.verify(registration(), GGD, peer=None).reason == "no DKIM signature"


def test_from_header_must_agree_with_the_envelope_sender() -> None:
    checker = MessageAuthenticator()
    forged = registration(sender="directeur@wij-groningen.example")
    assert not checker.verify(forged, GGD, peer=None).authentic
    assert checker.verify(registration(), GGD, peer=None).authentic
    bounce_host = "bounces@mail.ggd-groningen.example"  # the same organisation: agrees
    assert checker.verify(registration(), bounce_host, peer=None).authentic


def test_only_the_topmost_result_of_the_trusted_server_counts() -> None:
    checker = MessageAuthenticator(trusted_authserv_id=UPSTREAM, trusted_relays=LOOPBACK)
    trusted = b"Authentication-Results: mx.gemeente-groningen.example; "
    passing = trusted + b"dkim=pass header.d=ggd-groningen.example\r\n"
    failing = trusted + b"dkim=fail header.d=ggd-groningen.example\r\n"
    stranger = (
        b"Authentication-Results: mx.elders.example; dkim=pass header.d=ggd-groningen.example\r\n"
    )
    assert checker.verify(passing + registration(), GGD, peer="127.0.0.1").authentic
    # A forger who adds a passing header *below* the trusted server's own verdict gains nothing.
    assert not checker.verify(failing + passing + registration(), GGD, peer="127.0.0.1").authentic
    assert not checker.verify(stranger + registration(), GGD, peer="127.0.0.1").authentic


PASSING_UPSTREAM = (
    f"Authentication-Results: {UPSTREAM}; dkim=pass header.d=ggd-groningen.example\r\n".encode()
)


def test_authentication_results_count_only_from_a_trusted_relay(ggd_key: SigningDomain) -> None:
    checker = MessageAuthenticator(
        trusted_authserv_id=UPSTREAM, trusted_relays=[ip_network("10.1.0.0/16")]
    )
    claimed = PASSING_UPSTREAM + registration()
    assert checker.verify(claimed, GGD, peer="10.1.2.3").authentic
    assert checker.verify(claimed, GGD, peer="::ffff:10.1.2.3").authentic  # dual-stack socket
    for stranger in ("192.0.2.7", "10.2.0.1", "::1", "", None, "not-an-address"):
        verdict = checker.verify(claimed, GGD, peer=stranger)
        assert not verdict.authentic, stranger
        assert "trusted relay" in verdict.reason
    # With DKIM checked here as well, the ignored header leaves the mail judged as unsigned.
    both = MessageAuthenticator(
        verify_dkim=True,
        trusted_authserv_id=UPSTREAM,
        trusted_relays=LOOPBACK,
        dns_lookup=ggd_key.dns,
    )
    assert both.verify(claimed, GGD, peer="192.0.2.7").reason == "no DKIM signature"
    assert both.verify(ggd_key.sign(claimed), GGD, peer="192.0.2.7").authentic


def test_trusted_relays_default_to_loopback_and_take_addresses_and_ranges(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("VERWIJSINDEX_TRUSTED_RELAYS", raising=False)
    assert tuple(Settings(_env_file=None).trusted_relays) == LOOPBACK
    monkeypatch.setenv("VERWIJSINDEX_TRUSTED_RELAYS", "192.0.2.25, 2001:db8::/32")
    configured = Settings(_env_file=None).trusted_relays
    assert configured == [ip_network("192.0.2.25/32"), ip_network("2001:db8::/32")]
    assert MessageAuthenticator.from_settings(Settings(_env_file=None)).trusted_relays == tuple(
        configured
    )
    monkeypatch.setenv("VERWIJSINDEX_TRUSTED_RELAYS", "mx.regio.example")
    with pytest.raises(ValueError):
        Settings(_env_file=None)


def test_every_mailbox_has_one_requirement_and_replies_are_proven_like_registrations() -> None:
    assert set(MAILBOX_REQUIREMENTS) == set(Mailbox)
    assert MAILBOX_REQUIREMENTS[Mailbox.REPLY] is MAILBOX_REQUIREMENTS[Mailbox.REGISTRATION]
    assert MAILBOX_REQUIREMENTS[Mailbox.SIGNAL] is Requirement.AUTHENTIC_SENDER
    assert MAILBOX_REQUIREMENTS[Mailbox.POSTMASTER] is Requirement.ANYONE
    checker = MessageAuthenticator(verify_dkim=True, dns_lookup=lambda *_a, **_k: None)
    unsigned = registration()

    def verdict(mailbox: Mailbox, login: str | None = None) -> bool:
        return checker.authenticate(
            mailbox,
            unsigned,
            GGD,
            sender_institution="ggd-groningen",
            authenticated_as=login,
            peer="127.0.0.1",
        ).authentic

    assert [verdict(m) for m in Mailbox] == [m is Mailbox.POSTMASTER for m in Mailbox]
    assert all(verdict(m, login="ggd-groningen") for m in Mailbox)


def test_a_login_vouches_only_for_its_own_institutions_mail() -> None:
    checker = MessageAuthenticator(verify_dkim=True, dns_lookup=lambda *_a, **_k: None)
    professional = "s.jansen@wij-groningen.example"
    signal = registration(sender=professional)
    for mailbox in (Mailbox.SIGNAL, Mailbox.REPLY):
        as_other = checker.authenticate(
            mailbox,
            signal,
            professional,
            sender_institution="wij-groningen",
            authenticated_as="ggd-groningen",  # GGD's coupling posing as a WIJ professional
            peer="127.0.0.1",
        )
        assert (as_other.authentic, as_other.reason) == (False, "no DKIM signature")
        as_own = checker.authenticate(
            mailbox,
            signal,
            professional,
            sender_institution="wij-groningen",
            authenticated_as="wij-groningen",
            peer="127.0.0.1",
        )
        assert as_own.authentic


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


def test_the_listener_trusts_authentication_results_only_from_a_trusted_relay(
    make_gateway: Callable[..., Gateway],
    run_gateway: Callable[..., RunningGateway],
) -> None:
    claimed = PASSING_UPSTREAM + registration()
    behind_the_mx = run_gateway(make_gateway(trusted_authserv_id=UPSTREAM), ["smtp"])
    # The test connects from 127.0.0.1, which here is not the region's MX.
    elsewhere = make_gateway(trusted_authserv_id=UPSTREAM, trusted_relays="192.0.2.25")
    exposed = run_gateway(elsewhere, ["smtp"])
    with (
        smtplib.SMTP("127.0.0.1", exposed.smtp_port, timeout=10) as smtp,
        pytest.raises(smtplib.SMTPDataError) as refused,
    ):
        smtp.sendmail(GGD, [REGISTRATIE], claimed)
    assert (refused.value.smtp_code, refused.value.smtp_error[:5]) == (550, b"5.7.1")
    with Session(elsewhere.engine) as session:
        assert session.exec(select(InboundMessage)).all() == []
    with smtplib.SMTP("127.0.0.1", behind_the_mx.smtp_port, timeout=10) as smtp:
        assert smtp.sendmail(GGD, [REGISTRATIE], claimed) == {}
    with Session(elsewhere.engine) as session:
        assert len(session.exec(select(InboundMessage)).all()) == 1


def test_the_listener_follows_a_covenant_sync_without_a_restart(
    make_gateway: Callable[..., Gateway], run_gateway: Callable[..., RunningGateway]
) -> None:
    """The senders are kept in memory (``core.sender_directory``) until the covenant is synced
    again: a sender the new covenant drops is refused at once, and one it adds is let in."""
    gateway = make_gateway()
    running = run_gateway(gateway, ["smtp"])
    covenant = gateway.config.covenant
    newcomer = "koppeling@nieuw-domein.example"

    def rcpt(sender: str) -> int:
        with smtplib.SMTP("127.0.0.1", running.smtp_port, timeout=10) as smtp:
            smtp.ehlo("client.example")
            smtp.mail(sender)
            return smtp.rcpt(REGISTRATIE)[0]

    assert (rcpt(GGD), rcpt(newcomer)) == (250, 550)
    institutions = [
        institution.model_copy(update={"allowed_senders": [newcomer]})
        if institution.id == "ggd-groningen"
        else institution
        for institution in covenant.institutions
    ]
    with transaction(gateway.engine) as session:
        sync_covenant(session, covenant.model_copy(update={"institutions": institutions}))
    # GGD's notification mailbox still counts as its own (core.actors.sender_allowed).
    assert (rcpt("iemand@ggd-groningen.example"), rcpt(newcomer), rcpt(GGD)) == (550, 250, 250)
