"""SMTP AUTH for automatic couplings: offered only after STARTTLS (RFC 4954 §4), the login is
the institution id, the password is checked against the covenant's hash."""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.config import CoreConfig
from core.covenant import bundled_covenant_path, load_covenant
from core.covenant.sync import sync_covenant
from core.db import transaction
from core.identity import IdentityKeys
from core.models import InboundMessage
from core.passwords import hash_password
from mail_gateway.context import build_gateway
from tests.conftest import TEST_SECRET
from tests.mail_gateway.certificates import LocalCertificate, make_certificate
from tests.mail_gateway.conftest import Beside, RunningGateway, gateway_settings
from tests.mail_gateway.test_smtp_intake import REGISTRATIE, registration

PASSWORD = "koppeling-wachtwoord-2026"
COUPLING = "koppeling-jhn@ecd-leverancier.example"  # an allowed sender of jeugdhulp-noord


def coupling_config(tmp_path: Path, engine: Engine, iterations: int = 1000) -> CoreConfig:
    """The example covenant with Jeugdhulp Noord's coupling password, synced into ``engine``."""
    text = bundled_covenant_path().read_text(encoding="utf-8")
    anchor = 'id = "jeugdhulp-noord"\n'
    hashed = hash_password(PASSWORD, iterations=iterations)
    covenant_file = tmp_path / "covenant.toml"
    covenant_file.write_text(
        text.replace(anchor, anchor + f'smtp_auth_hash = "{hashed}"\n', 1), encoding="utf-8"
    )
    config = CoreConfig(load_covenant(covenant_file), IdentityKeys(TEST_SECRET.encode()))
    with transaction(engine) as session:
        sync_covenant(session, config.covenant)
    return config


@pytest.fixture
def make_tls_gateway(
    tmp_path: Path,
    database_url: str,
    engine: Engine,
    run_gateway: Callable[..., RunningGateway],
) -> Callable[..., tuple[RunningGateway, LocalCertificate]]:
    """The SMTP listener with STARTTLS, Jeugdhulp Noord's coupling password in the covenant
    (hashed with ``iterations``), settings ``overrides``, and ``also`` run in its event loop."""

    def make(
        *, iterations: int = 1000, also: Sequence[Beside] = (), **overrides: Any
    ) -> tuple[RunningGateway, LocalCertificate]:
        config = coupling_config(tmp_path, engine, iterations)
        certificate = make_certificate(tmp_path / "tls")
        settings = gateway_settings(
            tmp_path,
            database_url,
            smtp_tls_cert=certificate.cert,
            smtp_tls_key=certificate.key,
            **overrides,
        )
        gateway = build_gateway(settings, engine, config)
        return run_gateway(gateway, ["smtp"], also), certificate

    return make


@pytest.fixture
def tls_gateway(
    make_tls_gateway: Callable[..., tuple[RunningGateway, LocalCertificate]],
) -> tuple[RunningGateway, LocalCertificate]:
    return make_tls_gateway()


def connect(running: RunningGateway, certificate: LocalCertificate) -> smtplib.SMTP:
    smtp = smtplib.SMTP("127.0.0.1", running.smtp_port, timeout=10)
    smtp.ehlo("ecd.example")
    return smtp


def stored_count(running: RunningGateway) -> int:
    with Session(running.gateway.engine) as session:
        return len(session.exec(select(InboundMessage)).all())


def test_auth_is_not_offered_before_starttls(
    tls_gateway: tuple[RunningGateway, LocalCertificate],
) -> None:
    running, certificate = tls_gateway
    with connect(running, certificate) as smtp:
        assert smtp.has_extn("starttls")
        assert not smtp.has_extn("auth")
        with pytest.raises(smtplib.SMTPException):
            smtp.login("jeugdhulp-noord", PASSWORD)


def test_a_coupling_logs_in_after_starttls_and_registers_for_its_institution(
    tls_gateway: tuple[RunningGateway, LocalCertificate],
) -> None:
    running, certificate = tls_gateway
    with connect(running, certificate) as smtp:
        smtp.starttls(context=certificate.client_context())
        smtp.ehlo("ecd.example")
        assert smtp.has_extn("auth")
        smtp.login("jeugdhulp-noord", PASSWORD)
        assert smtp.sendmail(COUPLING, [REGISTRATIE], registration(COUPLING)) == {}
    with Session(running.gateway.engine) as session:
        [row] = session.exec(select(InboundMessage)).all()
    assert (row.institution_id, row.authenticated_as) == ("jeugdhulp-noord", "jeugdhulp-noord")


def test_a_wrong_password_is_refused_and_the_listener_keeps_serving(
    tls_gateway: tuple[RunningGateway, LocalCertificate],
) -> None:
    running, certificate = tls_gateway
    with connect(running, certificate) as smtp:
        smtp.starttls(context=certificate.client_context())
        smtp.ehlo("ecd.example")
        with pytest.raises(smtplib.SMTPAuthenticationError):
            smtp.login("jeugdhulp-noord", "geraden")
        with pytest.raises(smtplib.SMTPAuthenticationError):
            smtp.login("ggd-groningen", PASSWORD)  # an institution without a coupling password
    with connect(running, certificate) as smtp:
        assert smtp.noop()[0] == 250


def test_a_logged_in_coupling_cannot_send_as_another_institution(
    tls_gateway: tuple[RunningGateway, LocalCertificate],
) -> None:
    running, certificate = tls_gateway
    with connect(running, certificate) as smtp:
        smtp.starttls(context=certificate.client_context())
        smtp.ehlo("ecd.example")
        smtp.login("jeugdhulp-noord", PASSWORD)
        smtp.mail("verwijsindex@ggd-groningen.example")
        code, text = smtp.rcpt(REGISTRATIE)
    assert (code, text[:5]) == (550, b"5.7.1")
    assert stored_count(running) == 0
