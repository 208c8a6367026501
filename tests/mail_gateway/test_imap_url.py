"""``VERWIJSINDEX_IMAP_URL`` (CONTRACT §2) and how an IMAP message finds its mailbox."""

from __future__ import annotations

from email.parser import BytesHeaderParser

import pytest

from mail_gateway.imap_poller import find_destination
from mail_gateway.imap_url import ImapAccount, parse_imap_url
from mail_gateway.mailboxes import Destination, Mailbox

DOMAIN = "verwijsindex.localhost"


def test_a_full_url_is_read_with_percent_decoding() -> None:
    account = parse_imap_url("imaps://aanlevering%40regio.example:p%3Ass@mail.example:1993/Intake")
    assert account == ImapAccount(
        host="mail.example",
        port=1993,
        username="aanlevering@regio.example",
        password="p:ss",
        folder="Intake",
        tls=True,
    )
    assert "p:ss" not in repr(account)
    assert account.cursor_key == "aanlevering@regio.example@mail.example:1993/Intake"
    assert "aanlevering" not in account.where


def test_defaults_starttls_and_a_default_mailbox() -> None:
    plain = parse_imap_url("imap://user:pw@mail.example")
    assert (plain.port, plain.folder, plain.tls, plain.starttls) == (143, "INBOX", False, False)
    assert parse_imap_url("imaps://user:pw@mail.example/").port == 993
    upgraded = parse_imap_url("imap://user:pw@mail.example/INBOX?starttls=true&mailbox=Signaal")
    assert upgraded.starttls and upgraded.default_mailbox is Mailbox.SIGNAL


@pytest.mark.parametrize(
    "url",
    [
        "http://user:pw@mail.example/INBOX",
        "imap:///INBOX",
        "imap://mail.example/INBOX",
        "imaps://user:pw@mail.example/INBOX?starttls=true",
        "imap://user:pw@mail.example/INBOX?mailbox=antwoord",
    ],
)
def test_a_bad_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="VERWIJSINDEX_IMAP_URL"):
        parse_imap_url(url)


def headers(text: str) -> object:
    return BytesHeaderParser().parsebytes(text.encode(), headersonly=True)


def test_the_delivering_servers_record_comes_before_what_the_sender_wrote() -> None:
    found = find_destination(
        headers(
            "Delivered-To: aanlevering@regio.example\n"
            f"X-Original-To: registratie@{DOMAIN}\n"
            f"To: Regio <signaal@{DOMAIN}>\n\n"
        ),
        DOMAIN,
    )
    assert found == (Destination(Mailbox.REGISTRATION), f"registratie@{DOMAIN}")


def test_to_and_cc_are_searched_and_a_reply_keeps_its_token() -> None:
    token = "abcdefghijklmnop"
    found = find_destination(
        headers(f"To: a@elders.example, b@elders.example\nCc: Wij <antwoord+{token}@{DOMAIN}>\n\n"),
        DOMAIN,
    )
    assert found == (Destination(Mailbox.REPLY, token), f"antwoord+{token}@{DOMAIN}")


def test_without_an_address_of_ours_only_the_urls_default_applies() -> None:
    foreign = headers("To: aanlevering@regio.example\n\n")
    assert find_destination(foreign, DOMAIN) is None
    assert find_destination(foreign, DOMAIN, Mailbox.REGISTRATION) == (
        Destination(Mailbox.REGISTRATION),
        f"registratie@{DOMAIN}",
    )
