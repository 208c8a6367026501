"""IMAP intake against a real Dovecot: one poll at a time (``poll_once``), messages put in with
APPEND. Stored once and moved to ``Verwerkt``; refused mail to ``Fout`` with nothing stored or
answered; flags untouched (``BODY.PEEK``); the UID cursor and a new UIDVALIDITY; a crash between
storing and moving; a server without MOVE."""

from __future__ import annotations

import logging
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid
from typing import Any

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError
from sqlmodel import Session, col, select

from core.models import ImapCursor, InboundMessage, OutboxMessage
from mail_gateway.context import Gateway
from mail_gateway.imap_poller import PollReport, connect, poll_once
from mail_gateway.imap_url import ImapAccount
from tests.core.conftest import BSN_A
from tests.mail_gateway.conftest import MAIL_DOMAIN
from tests.mail_gateway.dovecot import Dovecot, dovecot  # noqa: F401  (the fixture)
from tests.mail_gateway.test_sender_authentication import SigningDomain

GGD = "verwijsindex@ggd-groningen.example"
REGISTRATIE = f"registratie@{MAIL_DOMAIN}"
SEEN = b"\\Seen"
RECENT = b"\\Recent"  # Dovecot's session flag, not ours to keep


def message(
    sender: str = GGD, to: str = REGISTRATIE, *, message_id: str | None = None, **headers: str
) -> bytes:
    mail = EmailMessage()
    for name, value in headers.items():  # Delivered-To and friends come first, as an MDA adds
        mail[name.replace("_", "-")] = value
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = "Aanmelding"
    mail["Message-ID"] = message_id or make_msgid(domain="ggd-groningen.example")
    mail.set_content(
        f"BSN: {BSN_A}\nGeboortedatum: 01-05-2016\nGemeente: Groningen\nKenmerk: GGD-1\n"
    )
    return mail.as_bytes(policy=SMTP)


@pytest.fixture
def imap_gateway(
    make_gateway: Callable[..., Gateway],
    dovecot: Dovecot,  # noqa: F811
) -> Callable[..., Gateway]:
    def make(
        folder: str = "INBOX", query: dict[str, str] | None = None, **overrides: Any
    ) -> Gateway:
        return make_gateway(imap_url=dovecot.imap_url(folder, **(query or {})), **overrides)

    return make


def stored(gateway: Gateway) -> list[InboundMessage]:
    with Session(gateway.engine) as session:
        return list(session.exec(select(InboundMessage).order_by(col(InboundMessage.id))).all())


def outbox(gateway: Gateway) -> list[OutboxMessage]:
    with Session(gateway.engine) as session:
        return list(session.exec(select(OutboxMessage)).all())


def cursor(gateway: Gateway) -> ImapCursor | None:
    with Session(gateway.engine) as session:
        return session.exec(select(ImapCursor)).first()


def flags_in(dovecot: Dovecot, folder: str) -> list[set[bytes]]:  # noqa: F811
    return [set(flags) - {RECENT} for flags, _ in dovecot.messages(folder).values()]


def test_new_mail_is_stored_once_and_moved_to_verwerkt(
    imap_gateway: Callable[..., Gateway],
    dovecot: Dovecot,  # noqa: F811
) -> None:
    gateway = imap_gateway()
    first, second = message(), message(sender="Afdeling JGZ <JGZ@GGD-Groningen.example>")
    dovecot.append(first)
    dovecot.append(second)
    woken: list[bool] = []

    report = poll_once(gateway, on_stored=lambda: woken.append(True))

    assert (report.stored, report.duplicates, report.refused) == (2, 0, 0)
    assert report.outcomes == {1: "stored", 2: "stored"} and woken == [True, True]
    rows = stored(gateway)
    assert [(r.transport, r.mailbox, r.institution_id, r.rcpt_to) for r in rows] == [
        ("imap", "registratie", "ggd-groningen", REGISTRATIE)
    ] * 2
    assert [r.mail_from for r in rows] == [GGD, "jgz@ggd-groningen.example"]
    assert gateway.vault.open(rows[0].raw) == first
    assert BSN_A.encode() not in rows[0].raw
    assert dovecot.messages("INBOX") == {}
    assert sorted(raw for _, raw in dovecot.messages("Verwerkt").values()) == sorted(
        [first, second]
    )
    assert dovecot.messages("Fout") == {}  # created, and empty
    saved = cursor(gateway)
    assert saved is not None
    assert (saved.uidvalidity, saved.last_uid) == (dovecot.uidvalidity("INBOX"), 2)

    again = poll_once(gateway)
    assert again == PollReport(uidvalidity=report.uidvalidity, last_uid=2)
    assert len(stored(gateway)) == 2


def test_flags_are_left_as_they_were(
    imap_gateway: Callable[..., Gateway],
    dovecot: Dovecot,  # noqa: F811
) -> None:
    gateway = imap_gateway()
    dovecot.append(message(), flags=[SEEN])
    dovecot.append(message())
    dovecot.append(message(sender="iemand@elders.example"))

    poll_once(gateway)

    assert sorted(flags_in(dovecot, "Verwerkt"), key=len) == [set(), {SEEN}]
    assert flags_in(dovecot, "Fout") == [set()], "reading must not mark mail \\Seen"


def test_refused_mail_goes_to_fout_and_nothing_is_stored_or_answered(
    imap_gateway: Callable[..., Gateway],
    dovecot: Dovecot,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    gateway = imap_gateway()
    refused = [
        message(sender="vervalst@elders.example"),  # not a covenant sender (maybe forged)
        message(to="iemand@elders.example"),  # none of our mailboxes
        message(to=f"onbekend@{MAIL_DOMAIN}"),  # not a mailbox of ours either
        message(sender=f"{GGD}, tweede@ggd-groningen.example"),  # not exactly one From
        message(sender="iemand@elders.example", to=f"signaal@{MAIL_DOMAIN}"),
    ]
    for raw in refused:
        dovecot.append(raw)

    with caplog.at_level(logging.INFO, logger="mail_gateway.imap_poller"):
        report = poll_once(gateway)

    assert (report.stored, report.refused) == (0, len(refused))
    assert stored(gateway) == [] and outbox(gateway) == []
    assert dovecot.messages("INBOX") == {}
    assert sorted(raw for _, raw in dovecot.messages("Fout").values()) == sorted(refused)
    assert dovecot.messages("Verwerkt") == {}
    assert "elders.example" in caplog.text  # the domain helps an administrator ...
    assert "vervalst@" not in caplog.text and "iemand@" not in caplog.text  # ... no address
    assert "Aanmelding" not in caplog.text and BSN_A not in caplog.text
    assert poll_once(gateway).refused == 0, "a refused message is not taken again"


def test_an_upstream_verdict_is_required_when_configured(
    imap_gateway: Callable[..., Gateway],
    dovecot: Dovecot,  # noqa: F811
) -> None:
    gateway = imap_gateway(trusted_authserv_id="mx.regio.example")
    unsigned = message()
    signed = message(
        Authentication_Results="mx.regio.example; dkim=pass header.d=ggd-groningen.example"
    )
    dovecot.append(unsigned)
    dovecot.append(signed)

    report = poll_once(gateway)

    assert report.outcomes == {1: "refused", 2: "stored"}
    assert [raw for _, raw in dovecot.messages("Fout").values()] == [unsigned]


def test_upstream_results_count_only_when_the_imap_server_is_a_trusted_relay(
    imap_gateway: Callable[..., Gateway],
    dovecot: Dovecot,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The IMAP server stands for the SMTP peer: here it is Dovecot on 127.0.0.1, and the region
    # trusts only its MX at 192.0.2.25, so the header in the mailbox proves nothing.
    gateway = imap_gateway(trusted_authserv_id="mx.regio.example", trusted_relays="192.0.2.25")
    claimed = message(
        Authentication_Results="mx.regio.example; dkim=pass header.d=ggd-groningen.example"
    )
    dovecot.append(claimed)

    with caplog.at_level(logging.INFO, logger="mail_gateway.imap_poller"):
        report = poll_once(gateway)

    assert report.outcomes == {1: "refused"} and stored(gateway) == []
    assert [raw for _, raw in dovecot.messages("Fout").values()] == [claimed]
    assert "trusted relay" in caplog.text


def test_replies_need_the_same_proof_as_registrations(
    imap_gateway: Callable[..., Gateway],
    dovecot: Dovecot,  # noqa: F811
) -> None:
    key = SigningDomain("ggd-groningen.example")
    gateway = imap_gateway(verify_dkim=True)
    gateway.authenticator.dns_lookup = key.dns
    reply_to = f"antwoord+{'a' * 16}@{MAIL_DOMAIN}"
    unsigned_reply = message(to=reply_to)
    unsigned_registration = message()
    signed_reply = key.sign(message(to=reply_to))
    for raw in (unsigned_reply, unsigned_registration, signed_reply):
        dovecot.append(raw)

    report = poll_once(gateway)

    assert report.outcomes == {1: "refused", 2: "refused", 3: "stored"}
    assert [(r.mailbox, r.rcpt_to) for r in stored(gateway)] == [("antwoord", reply_to)]
    assert sorted(raw for _, raw in dovecot.messages("Fout").values()) == sorted(
        [unsigned_reply, unsigned_registration]
    )


def test_one_institution_cannot_squat_anothers_message_id_over_imap(
    imap_gateway: Callable[..., Gateway],
    dovecot: Dovecot,  # noqa: F811
) -> None:
    squatted = "<aanmelding-0042@ggd-groningen.example>"
    dovecot.append(message(sender="verwijsindex@wij-groningen.example", message_id=squatted))
    dovecot.append(message(message_id=squatted))
    dovecot.append(message(message_id=squatted))  # GGD's own copy again: a duplicate

    gateway = imap_gateway()
    report = poll_once(gateway)

    assert report.outcomes == {1: "stored", 2: "stored", 3: "duplicate"}
    assert [r.institution_id for r in stored(gateway)] == ["wij-groningen", "ggd-groningen"]


def test_oversized_mail_is_refused_without_reading_it(
    imap_gateway: Callable[..., Gateway],
    dovecot: Dovecot,  # noqa: F811
) -> None:
    gateway = imap_gateway(max_message_size=2_000)
    dovecot.append(message(Comments="x" * 3_000))
    dovecot.append(message())
    assert poll_once(gateway).outcomes == {1: "refused", 2: "stored"}


def test_the_delivered_to_address_or_the_urls_default_names_the_mailbox(
    imap_gateway: Callable[..., Gateway],
    dovecot: Dovecot,  # noqa: F811
) -> None:
    # A region's own address forwarded into the folder: the MDA's record names our mailbox.
    forwarded = message(to="Aanlevering <aanlevering@regio.example>", X_Original_To=REGISTRATIE)
    plain = message(to="aanlevering@regio.example")
    dovecot.append(forwarded)
    dovecot.append(plain)

    assert poll_once(imap_gateway()).outcomes == {1: "stored", 2: "refused"}

    dovecot.append(plain, folder="Registraties")
    gateway = imap_gateway("Registraties", {"mailbox": "registratie"})
    assert poll_once(gateway).outcomes == {1: "stored"}
    assert [(r.mailbox, r.rcpt_to) for r in stored(gateway)] == [("registratie", REGISTRATIE)] * 2


def test_a_new_uidvalidity_reads_the_folder_again_without_duplicates(
    imap_gateway: Callable[..., Gateway],
    dovecot: Dovecot,  # noqa: F811
) -> None:
    gateway = imap_gateway("Aanlevering")
    restored = message()
    dovecot.append(restored, folder="Aanlevering")
    dovecot.append(message(), folder="Aanlevering")
    old = poll_once(gateway)
    assert (old.stored, old.last_uid) == (2, 2)

    # The folder is recreated: UIDs start again at 1, so UID 2 is a *new* message now.
    dovecot.recreate_folder("Aanlevering")
    dovecot.append(restored, folder="Aanlevering")  # an administrator put one back
    dovecot.append(message(), folder="Aanlevering")

    new = poll_once(gateway)

    assert new.uidvalidity != old.uidvalidity
    assert new.outcomes == {1: "duplicate", 2: "stored"}
    assert len(stored(gateway)) == 3
    assert dovecot.messages("Aanlevering") == {}
    assert len(dovecot.messages("Verwerkt")) == 4  # the restored copy went there again
    saved = cursor(gateway)
    assert saved is not None and (saved.uidvalidity, saved.last_uid) == (new.uidvalidity, 2)


class DropsOnMove(IMAPClient):
    """The connection is lost just after the message was committed."""

    def move(self, messages: Any, folder: Any) -> Any:
        self.shutdown()
        raise IMAPClientAbortError("socket error: EOF")


class WithoutMove(IMAPClient):
    """A server of before RFC 6851."""

    def capabilities(self) -> tuple[bytes, ...]:
        return tuple(c for c in super().capabilities() if c != b"MOVE")


def factory(client_class: type[IMAPClient]) -> Callable[[ImapAccount], IMAPClient]:
    return lambda account: connect(account, client_class=client_class)


def test_a_message_stored_but_not_moved_is_taken_again_as_a_duplicate(
    imap_gateway: Callable[..., Gateway],
    dovecot: Dovecot,  # noqa: F811
) -> None:
    gateway = imap_gateway()
    dovecot.append(message())

    with pytest.raises(IMAPClientAbortError):
        poll_once(gateway, factory(DropsOnMove))
    assert len(stored(gateway)) == 1
    assert len(dovecot.messages("INBOX")) == 1
    saved = cursor(gateway)
    assert saved is not None and saved.last_uid == 0, "not handled until it is moved"

    report = poll_once(gateway)
    assert report.outcomes == {1: "duplicate"}
    assert len(stored(gateway)) == 1
    assert dovecot.messages("INBOX") == {} and len(dovecot.messages("Verwerkt")) == 1


def test_without_move_it_copies_flags_deleted_and_expunges(
    imap_gateway: Callable[..., Gateway],
    dovecot: Dovecot,  # noqa: F811
) -> None:
    gateway = imap_gateway()
    dovecot.append(message(), flags=[SEEN])
    dovecot.append(message(sender="vervalst@elders.example"))

    report = poll_once(gateway, factory(WithoutMove))

    assert report.outcomes == {1: "stored", 2: "refused"}
    assert dovecot.messages("INBOX") == {}
    assert flags_in(dovecot, "Verwerkt") == [{SEEN}]
    assert flags_in(dovecot, "Fout") == [set()]


def test_a_message_someone_deleted_is_not_taken(
    imap_gateway: Callable[..., Gateway],
    dovecot: Dovecot,  # noqa: F811
) -> None:
    gateway = imap_gateway()
    dovecot.append(message(), flags=[b"\\Deleted"])
    dovecot.append(message())
    assert poll_once(gateway).outcomes == {2: "stored"}
    assert len(stored(gateway)) == 1


def test_mail_that_arrives_during_a_poll_is_taken_in_the_same_poll(
    imap_gateway: Callable[..., Gateway],
    dovecot: Dovecot,  # noqa: F811
) -> None:
    # The server announces it in the answer to our MOVE; IDLE would not announce it again.
    gateway = imap_gateway()
    late = message()

    class MailArrivesDuringMove(IMAPClient):
        arrived = False

        def move(self, messages: Any, folder: Any) -> Any:
            if not MailArrivesDuringMove.arrived:
                MailArrivesDuringMove.arrived = True
                dovecot.append(late)
            return super().move(messages, folder)

    dovecot.append(message())
    report = poll_once(gateway, factory(MailArrivesDuringMove))
    assert report.outcomes == {1: "stored", 2: "stored"}
    assert dovecot.messages("INBOX") == {}
