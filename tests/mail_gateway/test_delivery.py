"""Mail delivery through a real SMTP relay (an aiosmtpd sink on loopback) or a maildir: every
header of CONTRACT §4 on every kind the system sends, retries while the relay is down, dead
letters on 5xx, STARTTLS and AUTH, and nothing of a notification's content in the log."""

from __future__ import annotations

import hashlib
import json
import logging
import mailbox
import os
import re
import smtplib
import socket
import stat
import time
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import SMTP, default
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from core import outbox
from core.audit import use_keyring
from core.clock import as_utc, utcnow
from core.db import create_db_engine, transaction
from core.installation import installation_id
from core.models import OutboxMessage, OutboxStatus, metadata
from core.notifications.subscribers import NOTIFICATION_KINDS
from core.outbox import OutboundNotification
from core.rendering import RenderedEmail
from core.settings import Settings
from mail_gateway.delivery import message as message_module
from mail_gateway.delivery.message import (
    AUTO_REPLIED_KINDS,
    MessageTemplate,
    message_id_for,
    message_id_salt,
    one_line,
)
from mail_gateway.delivery.relay import MaildirRelay, SmtpRelay, relay_from_url
from mail_gateway.delivery.worker import MailDelivery
from tests.conftest import TEST_KEYRING, TEST_SECRET
from tests.core.conftest import CoreDriver, core  # noqa: F401  (the core driver fixture)
from tests.core.test_privacy import _gateway_contexts, _scan, _scenario
from tests.mail_gateway.relay_sink import Received, RelaySink, free_port

MAIL_DOMAIN = "verwijsindex.localhost"
REGION = "Groningen"
SECRET_WORD = "Vertrouwelijk-Q7"  # a context value that must never reach the log


# -- helpers, also used by test_delivery_worker -------------------------------------------------


def delivery_settings(tmp_path: Path, relay_url: str) -> Settings:
    return Settings(
        secret_key=TEST_SECRET,
        mail_domain=MAIL_DOMAIN,
        relay_url=relay_url,
        secret_file=tmp_path / "unused-secret",
    )


def recipient_of(number: int) -> str:
    return f"verwijsindex{number}@ggd-groningen.example"


def enqueue_notification(
    engine: Engine,
    number: int,
    *,
    kind: str = "foutmelding",
    token: str | None = None,
    in_reply_to: str | None = None,
    recipient: str | None = None,
    reference: str | None = None,
    without: tuple[str, ...] = (),
    **context: Any,
) -> None:
    """A ``foutmelding`` (renders without the core: the gateway writes these itself), with
    ``context`` added to its context and the keys in ``without`` left out."""
    reference = reference or f"B-{number}"
    values = {
        "kind": kind,
        "reference": reference,
        "region": REGION,
        "recipient_name": "GGD Groningen",
        "recipient_role": "sender",
        "on_behalf_of": None,
        "asks_reply": token is not None,
        "problems": ["het bericht bevat geen velden"],
        "hint": f"Zet per regel Veld: waarde. {SECRET_WORD}",
        **context,
    }
    for key in without:
        del values[key]
    with transaction(engine) as session:
        outbox.enqueue(
            session,
            kind=kind,
            channel="email",
            recipient=recipient or recipient_of(number),
            recipient_role="sender",
            reference=reference,
            context=values,
            idempotency_key=f"test:{number}",
            reply_token=token,
            in_reply_to=in_reply_to,
        )


def outbox_rows(engine: Engine, **where: Any) -> list[OutboxMessage]:
    with Session(engine) as session:
        return outbox.list_outbox(session, limit=1000, **where)


def by_reference(engine: Engine) -> dict[str, OutboxMessage]:
    return {row.reference: row for row in outbox_rows(engine)}


def header_names(received: Received) -> list[str]:
    head = received.raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    return [line.split(":", 1)[0].lower() for line in head.splitlines() if line[:1] not in " \t"]


@pytest.fixture
def sink() -> Iterator[RelaySink]:
    with RelaySink() as relay:
        yield relay


def delivery_for(engine: Engine, tmp_path: Path, relay_url: str, **options: Any) -> MailDelivery:
    return MailDelivery(
        engine, delivery_settings(tmp_path, relay_url), region_name=REGION, **options
    )


# -- the message ----------------------------------------------------------------------------


def test_every_header_of_the_contract(engine: Engine, sink: RelaySink, tmp_path: Path) -> None:
    enqueue_notification(engine, 1, in_reply_to="<origineel.1@ggd-groningen.example>")
    delivery = delivery_for(engine, tmp_path, sink.url)
    assert delivery.deliver_batch().sent == 1

    [received] = sink.messages()
    message = received.message
    assert received.envelope_from == f"postmaster@{MAIL_DOMAIN}"
    assert received.recipients == [recipient_of(1)]
    [sender] = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (
        f"Verwijsindex {REGION}",
        f"noreply@{MAIL_DOMAIN}",
    )
    assert message["To"] == recipient_of(1)
    assert message["Subject"] and "\n" not in message["Subject"]
    assert abs(parsedate_to_datetime(message["Date"]) - utcnow()) < timedelta(minutes=1)
    assert message["Auto-Submitted"] == "auto-replied"  # an error report answers a message
    assert message["X-Verwijsindex-Type"] == "foutmelding"
    assert message["X-Verwijsindex-Ref"] == "B-1"
    assert message["In-Reply-To"] == "<origineel.1@ggd-groningen.example>"
    assert message["References"] == "<origineel.1@ggd-groningen.example>"
    assert message["Reply-To"] is None, "no answer asked, no Reply-To"
    assert message["Precedence"] is None, "RFC 3834: Auto-Submitted, not Precedence"
    [row] = outbox_rows(engine)
    assert message["Message-ID"] == row.message_id
    assert re.fullmatch(rf"<[0-9a-f]{{32}}@{re.escape(MAIL_DOMAIN)}>", row.message_id or "")
    assert b"\r\nMessage-ID: <" in received.raw, "on one line, not folded"

    assert message.get_content_type() == "multipart/alternative"
    text, html = message.iter_parts()
    assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    assert "B-1" in text.get_content() and "B-1" in html.get_content()
    assert html.get_content().lstrip().startswith("<!DOCTYPE html>")
    assert received.raw.isascii(), "7-bit clean: no relay needs 8BITMIME"


def test_every_kind_the_system_sends_carries_the_contract_headers(
    core: CoreDriver,  # noqa: F811
    sink: RelaySink,
    tmp_path: Path,
) -> None:
    """The core's scenario covering every notification kind, plus the gateway's own two, all
    through the real relay: the headers of CONTRACT §4 on each, and no youth's identity."""
    _scenario(core)
    for number, (kind, context) in enumerate(_gateway_contexts().items(), start=900):
        own = {k: v for k, v in context.items() if k not in ("kind", "reference")}
        enqueue_notification(core.engine, number, kind=kind, reference=f"R-{number}", **own)
    delivery = delivery_for(core.engine, tmp_path, sink.url)
    everything_due = utcnow() + timedelta(days=5 * 365)  # the scenario runs in its own time
    while delivery.deliver_batch(now=everything_due).claimed:
        pass

    rows = [row for row in outbox_rows(core.engine) if row.channel == "email"]
    assert {row.status for row in rows} == {OutboxStatus.SENT}, [
        (row.kind, row.last_error) for row in rows if row.status != OutboxStatus.SENT
    ]
    assert {row.kind for row in rows} == set(NOTIFICATION_KINDS)
    arrived = {r.message["Message-ID"]: r for r in sink.messages()}
    assert len(arrived) == len(sink.messages()) == len(rows), "one message, one unique id"
    for row in rows:
        received = arrived[row.message_id]
        message = received.message
        assert received.recipients == [row.recipient], row.kind
        assert message["X-Verwijsindex-Type"] == row.kind
        assert message["X-Verwijsindex-Ref"] == row.reference
        expected = "auto-replied" if row.kind in AUTO_REPLIED_KINDS else "auto-generated"
        assert message["Auto-Submitted"] == expected, row.kind
        # The text and HTML; the monthly report wraps them with its charts and CSV.
        body = next(p for p in message.walk() if p.get_content_type() == "multipart/alternative")
        assert [p.get_content_type() for p in body.iter_parts()] == ["text/plain", "text/html"]
        text, html = (part.get_content() for part in body.iter_parts())
        if row.reply_token:
            answer_to = f"antwoord+{row.reply_token}@{MAIL_DOMAIN}"
            assert message["Reply-To"] == answer_to, row.kind
            assert answer_to in text, f"{row.kind}: the text says where to answer"
        else:
            assert message["Reply-To"] is None, row.kind
        _scan(received.raw.decode("ascii"), f"the {row.kind} mail to {row.recipient}")
        _scan(text, f"the {row.kind} text")
        _scan(html, f"the {row.kind} html")


def test_a_value_from_the_context_or_a_foreign_message_cannot_add_a_header(
    engine: Engine, sink: RelaySink, tmp_path: Path
) -> None:
    enqueue_notification(
        engine,
        2,
        reference="B-2\r\nBcc: ref@aanvaller.example",
        in_reply_to="<orig.2@ggd-groningen.example>\r\nBcc: irt@aanvaller.example",
        original_subject="Aanmelding\r\nBcc: subject@aanvaller.example\r\n\r\nnep-tekst",
    )
    delivery_for(engine, tmp_path, sink.url).deliver_batch()
    [received] = sink.messages()
    assert received.recipients == [recipient_of(2)]
    assert "bcc" not in header_names(received)
    assert received.message["Bcc"] is None
    assert received.message["In-Reply-To"] == "<orig.2@ggd-groningen.example>"
    assert received.message["X-Verwijsindex-Ref"] == "B-2 Bcc: ref@aanvaller.example"
    assert "\n" not in received.message["Subject"]
    assert sorted(header_names(received)) == sorted(
        [
            "from", "to", "subject", "date", "message-id", "auto-submitted",
            "x-verwijsindex-type", "x-verwijsindex-ref", "in-reply-to", "references",
            "mime-version", "content-type",
        ]
    )  # fmt: skip


def test_a_recipient_that_is_not_one_address_is_a_dead_letter(
    engine: Engine, sink: RelaySink, tmp_path: Path
) -> None:
    enqueue_notification(engine, 3, recipient="a@ggd-groningen.example, b@aanvaller.example")
    enqueue_notification(engine, 4, recipient="a@ggd-groningen.example\r\nBcc: b@x.example")
    report = delivery_for(engine, tmp_path, sink.url).deliver_batch()
    assert (report.failed, report.sent) == (2, 0)
    assert sink.messages() == []
    for row in outbox_rows(engine):
        assert row.last_error == "PermanentDeliveryError: recipient is not one e-mail address"


def test_message_ids_follow_the_idempotency_key(monkeypatch: pytest.MonkeyPatch) -> None:
    def notification(key: str) -> OutboundNotification:
        return OutboundNotification(
            id=1, kind="match", channel="email", recipient="a@b.example", recipient_role="x",
            reference="M-1", context={}, reply_token=None, in_reply_to=None,
            idempotency_key=key, attempts=1, professional_id=None, institution_id=None,
        )  # fmt: skip

    rendered = RenderedEmail(subject="Match M-1", text="tekst\n", html="<p>html</p>\n")
    salt = message_id_salt(TEST_KEYRING, "0" * 32)

    template = MessageTemplate(mail_domain=MAIL_DOMAIN, region_name="G", message_id_salt=salt)

    def build(key: str) -> EmailMessage:
        built = template.build(notification(key), rendered)
        parsed = message_from_bytes(built.raw, _class=EmailMessage, policy=default)
        assert parsed["Message-ID"] == built.message_id
        return parsed

    first = build("k1")
    monkeypatch.setattr(message_module, "utcnow", lambda: utcnow() + timedelta(hours=3))
    again, other = build("k1"), build("k2")
    assert first["Date"] != again["Date"]
    assert first["Message-ID"] == again["Message-ID"] != other["Message-ID"]
    assert first["Message-ID"] == message_id_for(notification("k1"), MAIL_DOMAIN, salt)
    assert first["Auto-Submitted"] == "auto-generated"


def _parsed(raw: bytes) -> EmailMessage:
    return message_from_bytes(raw, _class=EmailMessage, policy=default)


@pytest.mark.parametrize(
    ("subject", "region"),
    [
        ("Match M-1", "Groningen"),
        ("Coördinatie toegewezen: één jeugdige, reactie binnen vijf werkdagen " * 3, "Fryslân"),
        ("Re: =?utf-8?q?nep?= geen encoded word", "Groningen"),
    ],
)
def test_the_assembled_message_reads_as_the_stdlib_would_build_it(
    subject: str, region: str
) -> None:
    """Each header and part, parsed back, says what the stdlib's own EmailMessage says for the
    same values (a long or non-ASCII subject folded and encoded, RFC 2047; an encoded-word
    look-alike), and no line over 78 characters in the headers."""
    notification = OutboundNotification(
        id=1, kind="coordinatie-toegewezen", channel="email", recipient="a@b.example",
        recipient_role="coordinator", reference="C-7", context={}, reply_token="tok-3_x",
        in_reply_to="<v@ggd.example>", idempotency_key="k", attempts=1, professional_id=None,
        institution_id=None,
    )  # fmt: skip
    boundary_like = "--=_" + "0" * 32  # a body line that looks like the parts' boundary
    rendered = RenderedEmail(
        subject=subject,
        text=f"Beste collega,\n\nÉén regel met spaties aan het eind   \n{boundary_like}\n",
        html=f"<p>Één</p>\n<p>{'lang ' * 40}</p>\n",
    )
    template = MessageTemplate(mail_domain=MAIL_DOMAIN, region_name=region, message_id_salt=b"s")
    built = template.build(notification, rendered)
    head = built.raw.split(b"\r\n\r\n", 1)[0]
    assert built.raw.isascii() and b"\n" not in built.raw.replace(b"\r\n", b"")
    assert max(len(line) for line in head.split(b"\r\n")) <= 78

    message = _parsed(built.raw)
    assert not message.defects and all(not part.defects for part in message.iter_parts())
    stdlib = EmailMessage()
    stdlib["Subject"] = one_line(subject)
    assert message["Subject"] == _parsed(stdlib.as_bytes(policy=SMTP))["Subject"]
    [sender] = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (
        f"Verwijsindex {region}",
        f"noreply@{MAIL_DOMAIN}",
    )
    assert message["To"] == "a@b.example"
    assert message["Reply-To"] == f"antwoord+tok-3_x@{MAIL_DOMAIN}"
    assert message["In-Reply-To"] == message["References"] == "<v@ggd.example>"
    assert message["Message-ID"] == built.message_id
    text, html = message.iter_parts()
    assert [text.get_content_charset(), html.get_content_charset()] == ["utf-8", "utf-8"]
    # CRLF on the wire (RFC 5322 §2.3); the boundary look-alike stayed inside its part.
    assert text.get_content().replace("\r\n", "\n") == rendered.text
    assert html.get_content().replace("\r\n", "\n") == rendered.html


@pytest.mark.parametrize("secret", ["same key", "another key"])
def test_a_new_installation_on_the_same_domain_never_reissues_a_message_id(
    engine: Engine, sink: RelaySink, tmp_path: Path, secret: str
) -> None:
    """A new database starts its idempotency keys again (``test:1`` here, ``match:M-3:...`` in
    real life); its Message-IDs are its own (RFC 5322 §3.6.4), with another secret key or with
    the same one (a trial copy, a second database of one region)."""
    enqueue_notification(engine, 1)
    delivery_for(engine, tmp_path, sink.url).deliver_batch()
    [before] = outbox_rows(engine)

    new_settings = delivery_settings(tmp_path, sink.url)
    if secret == "another key":
        new_settings = new_settings.model_copy(
            update={"secret_key": SecretStr("een-andere-installatie-" + "x" * 32)}
        )
    new_database = create_db_engine(f"sqlite:///{tmp_path / 'nieuw.db'}")
    use_keyring(new_database, new_settings.keyring())
    metadata.create_all(new_database)
    enqueue_notification(new_database, 1)
    MailDelivery(new_database, new_settings, region_name=REGION).deliver_batch()
    [after] = outbox_rows(new_database)
    new_database.dispose()

    assert before.idempotency_key == after.idempotency_key
    assert before.message_id and after.message_id and before.message_id != after.message_id
    assert [r.message["Message-ID"] for r in sink.messages()] == [
        before.message_id,
        after.message_id,
    ]
    digest = hashlib.sha256(before.idempotency_key.encode()).hexdigest()[:32]
    assert f"<{digest}@{MAIL_DOMAIN}>" not in (before.message_id, after.message_id)


def test_the_installation_id_is_drawn_once_and_kept(engine: Engine) -> None:
    first = installation_id(engine)
    assert len(first) == 32 and installation_id(engine) == first


def test_a_resend_after_a_crash_carries_the_same_message_id(
    engine: Engine, sink: RelaySink, tmp_path: Path
) -> None:
    enqueue_notification(engine, 5)
    crashed = delivery_for(engine, tmp_path, sink.url, worker_id="crashed")
    [claimed] = outbox.claim_due(engine, channel="email", worker_id="crashed", limit=1)
    crashed.send(claimed)  # sent, then the worker died before recording it
    crashed.relay.close()

    after_the_lease = utcnow() + outbox.DEFAULT_LEASE + timedelta(seconds=1)
    restarted = delivery_for(engine, tmp_path, sink.url, worker_id="restarted")
    assert restarted.deliver_batch(now=after_the_lease).sent == 1
    first, second = sink.messages()
    assert first.message["Message-ID"] == second.message["Message-ID"]
    [row] = outbox_rows(engine)
    assert (row.status, row.message_id) == (OutboxStatus.SENT, first.message["Message-ID"])


def test_one_line_removes_every_control_character() -> None:
    assert one_line("a\r\nb\x00c\x0bd\x1b[31m\u2028e  f") == "a b c d [31m e f"


# -- maildir --------------------------------------------------------------------------------


def test_the_default_is_the_maildir_verzonden(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VERWIJSINDEX_RELAY_URL", raising=False)
    settings = Settings(secret_key=TEST_SECRET, secret_file=tmp_path / "unused-secret")
    assert settings.relay_url == "maildir:./verzonden"
    enqueue_notification(engine, 6, token="abcdefghijklmnopqrstuvwxyz234567")
    delivery = MailDelivery(engine, settings, region_name=REGION)
    assert isinstance(delivery.relay, MaildirRelay)
    assert delivery.deliver_batch().sent == 1
    [stored] = list(mailbox.Maildir(tmp_path / "verzonden"))
    assert stored["X-Verwijsindex-Type"] == "foutmelding"
    assert stored["Reply-To"] == f"antwoord+abcdefghijklmnopqrstuvwxyz234567@{MAIL_DOMAIN}"
    assert len(list((tmp_path / "verzonden" / "new").iterdir())) == 1


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_the_maildir_and_its_messages_are_private_whatever_the_umask(
    engine: Engine, tmp_path: Path, umask: int
) -> None:
    enqueue_notification(engine, 8)
    previous = os.umask(umask)
    try:
        report = delivery_for(engine, tmp_path, f"maildir:{tmp_path / 'verzonden'}").deliver_batch()
    finally:
        os.umask(previous)
    assert report.sent == 1
    maildir = tmp_path / "verzonden"
    folders = [maildir, *(maildir / name for name in ("tmp", "new", "cur"))]
    assert {folder.name: stat.S_IMODE(folder.stat().st_mode) for folder in folders} == {
        folder.name: 0o700 for folder in folders
    }
    [message] = (maildir / "new").iterdir()
    assert stat.S_IMODE(message.stat().st_mode) == 0o600


def test_an_unwritable_maildir_is_a_temporary_failure(engine: Engine, tmp_path: Path) -> None:
    blocked = tmp_path / "bestand"
    blocked.write_text("geen map")
    enqueue_notification(engine, 7)
    report = delivery_for(engine, tmp_path, f"maildir:{blocked / 'verzonden'}").deliver_batch()
    assert report.retried == 1
    [row] = outbox_rows(engine)
    assert row.status == OutboxStatus.PENDING and "maildir" in (row.last_error or "")


# -- a relay that goes down and comes back ----------------------------------------------------


def test_relay_down_then_up_every_notification_arrives_once(engine: Engine, tmp_path: Path) -> None:
    sink = RelaySink()  # not started: nothing listens on its port
    for number in range(10, 15):
        enqueue_notification(engine, number)
    delivery = delivery_for(engine, tmp_path, sink.url)
    before = utcnow()
    report = delivery.deliver_batch()
    assert (report.sent, report.retried) == (0, 5)
    for row in outbox_rows(engine):
        assert (row.status, row.attempts) == (OutboxStatus.PENDING, 1)
        assert as_utc(row.next_attempt_at) >= before + timedelta(seconds=23)  # 30 s ± 20 %
        assert row.last_error == "TemporaryDeliveryError: relay unreachable: ConnectionRefusedError"
    assert delivery.deliver_batch().claimed == 0, "nothing is due before its backoff"

    with sink:
        later = utcnow() + timedelta(hours=1)  # past every backoff
        while delivery.deliver_batch(now=later).claimed:
            pass
        # The relay goes down again with the service running, and comes back on the same port.
    for number in range(15, 18):
        enqueue_notification(engine, number)
    assert delivery.deliver_batch(now=later).retried == 3
    with sink:
        while delivery.deliver_batch(now=later + timedelta(hours=1)).claimed:
            pass

    references = sorted(r.message["X-Verwijsindex-Ref"] for r in sink.messages())
    assert references == sorted(f"B-{n}" for n in range(10, 18)), "each exactly once"
    assert {row.status for row in outbox_rows(engine)} == {OutboxStatus.SENT}
    assert all(row.attempts == 2 for row in outbox_rows(engine))


def test_a_kept_connection_the_relay_dropped_is_reopened(tmp_path: Path) -> None:
    with RelaySink() as sink:
        relay = SmtpRelay("127.0.0.1", sink.port, timeout=5)
        relay.send(plain_bytes("eerste"), envelope_from="p@x.example", recipients=["a@b.example"])
        sink.stop()
        sink.start()  # the relay restarted; our kept connection is dead
        relay.send(plain_bytes("tweede"), envelope_from="p@x.example", recipients=["a@b.example"])
        relay.close()
        assert [r.message["Subject"] for r in sink.messages()] == ["eerste", "tweede"]
        assert sink.connections() == 2


def test_one_connection_carries_a_whole_batch(
    engine: Engine, sink: RelaySink, tmp_path: Path
) -> None:
    for number in range(40, 46):
        enqueue_notification(engine, number)
    assert delivery_for(engine, tmp_path, sink.url).deliver_batch().sent == 6
    assert sink.connections() == 1


def test_a_relay_that_never_answers_holds_up_the_batch_once(engine: Engine, tmp_path: Path) -> None:
    """A black hole (connections accepted, no greeting ever): the first row waits out the
    timeout, the rest of the batch is put back at once instead of timing out one by one."""
    with socket.socket() as black_hole:
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen(50)
        port = black_hole.getsockname()[1]
        for number in range(50, 58):
            enqueue_notification(engine, number)
        delivery = delivery_for(engine, tmp_path, f"smtp://127.0.0.1:{port}?timeout=0.5")
        started = time.monotonic()
        report = delivery.deliver_batch()
        elapsed = time.monotonic() - started
    assert report.retried == 8
    assert elapsed < 2.5, f"{elapsed:.1f} s: every row waited for its own timeout"
    assert {row.last_error for row in outbox_rows(engine)} == {
        # smtplib reports a greeting that never came as a disconnection
        "TemporaryDeliveryError: relay unreachable: SMTPServerDisconnected"
    }


# -- refusals -------------------------------------------------------------------------------


def test_a_permanent_refusal_is_a_dead_letter_visible_in_outbox_list(
    engine: Engine,
    sink: RelaySink,
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sink.refuse_recipient(recipient_of(20), "550 5.1.1 No such user")
    sink.refuse_recipient(recipient_of(21), "451 4.3.0 Try again later")
    for number in (20, 21, 22):
        enqueue_notification(engine, number)
    report = delivery_for(engine, tmp_path, sink.url).deliver_batch()
    assert (report.sent, report.failed, report.retried) == (1, 1, 1)
    rows = by_reference(engine)
    assert rows["B-20"].status == OutboxStatus.FAILED
    assert rows["B-20"].last_error == "PermanentDeliveryError: recipient refused 550"
    assert rows["B-21"].status == OutboxStatus.PENDING
    assert rows["B-21"].last_error == "TemporaryDeliveryError: recipient refused 451"
    assert rows["B-22"].status == OutboxStatus.SENT
    assert sink.connections() == 1, "a refusal does not cost the connection"

    from core.cli.app import app

    monkeypatch.setenv("VERWIJSINDEX_DATABASE_URL", database_url)
    monkeypatch.setenv("VERWIJSINDEX_SECRET_KEY", TEST_SECRET)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["outbox", "list", "--status", "failed", "--json"])
    assert result.exit_code == 0, result.output
    [listed] = json.loads(result.stdout)
    assert (listed["reference"], listed["status"]) == ("B-20", "failed")
    assert "550" in listed["last_error"]


@pytest.mark.parametrize(
    ("answer", "status"),
    [("554 5.6.0 Content refused", OutboxStatus.FAILED), ("452 4.3.1 Full", OutboxStatus.PENDING)],
)
def test_an_answer_to_data_decides_like_one_to_rcpt(
    engine: Engine, sink: RelaySink, tmp_path: Path, answer: str, status: str
) -> None:
    sink.handler.data_answer = answer
    enqueue_notification(engine, 23)
    delivery_for(engine, tmp_path, sink.url).deliver_batch()
    [row] = outbox_rows(engine)
    assert row.status == status
    assert row.last_error and answer[:3] in row.last_error


# -- STARTTLS and AUTH ----------------------------------------------------------------------


def test_starttls_and_auth_to_the_relay(engine: Engine, tmp_path: Path) -> None:
    with RelaySink(
        tls_folder=tmp_path / "tls", credentials=("verwijsindex", "relay geheim:1")
    ) as sink:
        assert sink.url.endswith("?starttls=true") and "relay%20geheim%3A1" in sink.url
        enqueue_notification(engine, 30)
        delivery = delivery_for(engine, tmp_path, sink.url)
        assert isinstance(delivery.relay, SmtpRelay) and delivery.relay.starttls
        delivery.relay.tls_context = sink.client_context()
        assert delivery.deliver_batch().sent == 1
        [received] = sink.messages()
        assert received.login == "verwijsindex"
        assert sink.logins == ["verwijsindex"]


def test_a_refused_login_or_an_untrusted_certificate_waits_for_a_retry(
    engine: Engine, tmp_path: Path
) -> None:
    with RelaySink(tls_folder=tmp_path / "tls", credentials=("verwijsindex", "juist")) as sink:
        enqueue_notification(engine, 31)
        enqueue_notification(engine, 32)
        wrong = delivery_for(engine, tmp_path, sink.url.replace(":juist@", ":fout@"))
        assert isinstance(wrong.relay, SmtpRelay)
        wrong.relay.tls_context = sink.client_context()
        assert wrong.deliver_batch().retried == 2
        refused_connections = set(sink.refused_logins)
        assert len(refused_connections) == 1, "the rest of the batch did not try again"
        assert {row.last_error for row in outbox_rows(engine)} == {
            "TemporaryDeliveryError: relay refused the login (535)"
        }

        untrusting = delivery_for(engine, tmp_path, sink.url)  # the system's CA store
        assert untrusting.deliver_batch(now=utcnow() + timedelta(hours=1)).retried == 2
        assert {row.last_error for row in outbox_rows(engine)} == {
            "TemporaryDeliveryError: relay unreachable: SSLCertVerificationError"
        }
        assert sink.messages() == []


def test_relay_urls_are_checked() -> None:
    assert relay_from_url("maildir:./verzonden") == MaildirRelay(Path("verzonden"))
    relay = relay_from_url(
        "smtp://a%40b:p%3Ass@relay.example:587?starttls=true&timeout=7", local_hostname="vi.nl"
    )
    assert isinstance(relay, SmtpRelay)
    assert (relay.host, relay.port, relay.username, relay.password) == (
        "relay.example",
        587,
        "a@b",
        "p:ss",
    )
    assert (relay.starttls, relay.timeout, relay.local_hostname) == (True, 7.0, "vi.nl")
    assert "p:ss" not in repr(relay), "the password stays out of logs and tracebacks"
    plain = relay_from_url("smtp://relay.example")
    assert isinstance(plain, SmtpRelay)
    assert (plain.port, plain.starttls, plain.username) == (25, False, None)
    for bad in (
        "http://relay.example",
        "smtp://",
        "maildir:",
        "smtp://relay.example:poort",
        "smtp://relay.example?starttls=misschien",
        "smtp://relay.example?tls=true",
        "smtp://relay.example?timeout=lang",
    ):
        with pytest.raises(ValueError, match="VERWIJSINDEX_RELAY_URL"):
            relay_from_url(bad)


# -- failures of our own, and the log -------------------------------------------------------


def test_a_notification_that_cannot_be_rendered_is_a_dead_letter(
    engine: Engine, sink: RelaySink, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    enqueue_notification(engine, 60, without=("problems",))  # StrictUndefined: a key missing
    enqueue_notification(engine, 61, kind="onbekende-soort")  # no template at all
    report = delivery_for(engine, tmp_path, sink.url).deliver_batch()
    assert (report.failed, report.sent) == (2, 0)
    rows = by_reference(engine)
    assert rows["B-60"].last_error == "PermanentDeliveryError: rendering failed: UndefinedError"
    assert rows["B-61"].last_error == "PermanentDeliveryError: rendering failed: ValueError"
    assert sink.messages() == []
    assert "cannot be rendered" in our_log(caplog)
    assert SECRET_WORD not in our_log(caplog)


def test_a_template_that_includes_a_missing_one_is_a_dead_letter_too(
    engine: Engine, sink: RelaySink, tmp_path: Path
) -> None:
    """jinja2's TemplateNotFound is an OSError; it still is no reason to try again."""
    folder = tmp_path / "templates" / "email"
    folder.mkdir(parents=True)
    for part in ("subject", "text", "html"):
        (folder / f"foutmelding.{part}.j2").write_text('{% include "email/ontbreekt.j2" %}')
    settings = delivery_settings(tmp_path, sink.url).model_copy(
        update={"templates_dir": tmp_path / "templates"}
    )
    enqueue_notification(engine, 62)
    assert MailDelivery(engine, settings, region_name=REGION).deliver_batch().failed == 1
    [row] = outbox_rows(engine)
    assert row.last_error == "PermanentDeliveryError: rendering failed: TemplateNotFound"


def test_the_log_names_neither_the_recipient_nor_the_context(
    engine: Engine, sink: RelaySink, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sink.refuse_recipient(recipient_of(71), "550 5.1.1 No such user")
    for number in (70, 71):
        enqueue_notification(engine, number)
    delivery_for(engine, tmp_path, sink.url).deliver_batch()
    ours = our_log(caplog)
    assert "B-70" in ours and "@ggd-groningen.example" in ours
    for forbidden in (recipient_of(70), recipient_of(71), "verwijsindex70", SECRET_WORD):
        assert forbidden not in ours
    for row in outbox_rows(engine):
        assert "ggd-groningen" not in (row.last_error or "")


def our_log(caplog: pytest.LogCaptureFixture) -> str:
    """The system's log lines (not the relay sink's: aiosmtpd logs whole sessions)."""
    return "\n".join(
        record.getMessage()
        for record in caplog.records
        if record.name.split(".")[0] in ("core", "mail_gateway")
    )


def plain_message(subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "p@x.example", "a@b.example", subject
    message.set_content("tekst\n")
    return message


def plain_bytes(subject: str) -> bytes:
    return plain_message(subject).as_bytes(policy=SMTP)


def test_the_relay_sink_can_refuse_and_be_restarted_on_its_port() -> None:
    """The sink itself, as other tests rely on it."""
    sink = RelaySink(port=free_port())
    with sink:
        sink.refuse_recipient("Weg@B.example", "550 5.1.1 No such user")
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=5) as client:
            refused = client.send_message(
                plain_message("een"), to_addrs=["a@b.example", "weg@b.example"]
            )
        assert list(refused) == ["weg@b.example"]
        [received] = sink.wait_for(1)
        assert received.recipients == ["a@b.example"]
    assert not sink.running
    with pytest.raises(OSError), smtplib.SMTP("127.0.0.1", sink.port, timeout=1):
        pass
    with sink:
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=5) as client:
            client.send_message(plain_message("twee"))
        assert [r.message["Subject"] for r in sink.wait_for(2)] == ["een", "twee"]
    with pytest.raises(AssertionError, match="2 of 3 messages arrived"):
        sink.wait_for(3, timeout=0.1)
