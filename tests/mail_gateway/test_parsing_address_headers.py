"""Address headers read without the e-mail package's parser must read as the parser reads them
(mail_gateway.parsing.mime._plain_addresses): the quick reading is taken only where the parser
would give the header back unchanged."""

from __future__ import annotations

from email.policy import default

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mail_gateway.parsing.mime import _plain_addresses, read_mail

pytestmark = pytest.mark.database_independent  # CI runs it once, on SQLite

QUICK = settings(max_examples=200)


def parsed(name: str, value: str) -> str:
    return str(default.header_fetch_parse(name, value))


def agrees(name: str, value: str) -> None:
    if _plain_addresses(name, value):
        assert parsed(name, value) == value


@pytest.mark.parametrize(
    "value",
    [
        "GGD Groningen koppeling <koppeling@ggd-groningen.example>",
        "meldpunt@ggd-groningen.example",
        "Anna <a@b.example>, c.d@e.example",
        "<a@b.example>",
        "A. de Vries <a@b.example>",
        '"de Vries, Anna" <a@b.example>',
        "Anna  de Vries <a@b.example>",
        "Anna (GGD) <a@b.example>",
        "=?utf-8?q?J=C3=A9?= <a@b.example>",
        "undisclosed-recipients:;",
        "a@[127.0.0.1]",
        "a@b.example,c@d.example",
    ],
)
def test_quick_reading_only_where_the_parser_gives_the_header_back(value: str) -> None:
    agrees("From", value)
    agrees("To", value)


def test_the_usual_from_and_to_are_read_quickly() -> None:
    assert _plain_addresses("From", "GGD Groningen koppeling <koppeling@ggd-groningen.example>")
    assert _plain_addresses("to", "registratie@verwijsindex.localhost")
    assert not _plain_addresses("Content-Type", "text/plain")
    assert not _plain_addresses("From", "A. de Vries <a@b.example>")  # the parser quotes it


_PIECES = st.sampled_from(
    ["Anna", "de", "Vries", "GGD", " ", "  ", "<", ">", "@", ".", ",", ", ", '"', "(", ")", ":",
     ";", "a", "b", "example", "-", "_", "+", "!", "'", "é", "=?utf-8?q?x?=", "\\", "[", "]"]
)  # fmt: skip


@QUICK
@given(st.lists(_PIECES, max_size=20).map("".join))
def test_quick_reading_agrees_with_the_parser_on_any_value(value: str) -> None:
    agrees("From", value)


@QUICK
@given(
    st.lists(
        st.tuples(
            st.from_regex(
                r"([A-Za-z0-9!#'+=?^_`{|}~-]{1,8}( [A-Za-z0-9'-]{1,8}){0,3})?", fullmatch=True
            ),
            st.from_regex(
                r"[a-z0-9+_-]{1,12}(\.[a-z0-9-]{1,6}){0,2}@[a-z0-9-]{1,10}(\.[a-z]{2,6}){0,2}",
                fullmatch=True,
            ),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_quick_reading_agrees_on_well_formed_address_lists(
    addresses: list[tuple[str, str]],
) -> None:
    value = ", ".join(f"{name} <{spec}>" if name else spec for name, spec in addresses)
    agrees("To", value)
    agrees("Reply-To", value)


def test_a_mail_reads_the_same_either_way() -> None:
    raw = (
        b"From: GGD Groningen koppeling <koppeling@ggd-groningen.example>\r\n"
        b"To: registratie@verwijsindex.localhost, Anna <a@b.example>\r\n"
        b"Subject: Aanmelding\r\nMessage-ID: <m1@ggd-groningen.example>\r\n\r\nKenmerk: 1\r\n"
    )
    mail = read_mail(raw)
    assert mail.from_address == "koppeling@ggd-groningen.example"
    assert mail.header("to") == "registratie@verwijsindex.localhost, Anna <a@b.example>"
