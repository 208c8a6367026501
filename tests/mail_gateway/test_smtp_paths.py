"""MAIL FROM and RCPT TO paths: the listener's quick reading of a plain ``<local@domain>`` must
give what aiosmtpd's full parser gives, for every argument (mail_gateway.smtp_server)."""

from __future__ import annotations

import pytest
from aiosmtpd.handlers import Sink
from aiosmtpd.smtp import SMTP
from hypothesis import given, settings
from hypothesis import strategies as st

from mail_gateway.smtp_limits import SessionSlots
from mail_gateway.smtp_server import GatewaySMTP

pytestmark = pytest.mark.database_independent  # CI runs it once, on SQLite

QUICK = settings(max_examples=200)


def gateway_session() -> GatewaySMTP:
    return GatewaySMTP(Sink(), slots=SessionSlots(total=1, per_peer=1), logins=None)


def both(arg: str) -> tuple[object, object]:
    """The two readings; an exception counts as its type (the full parser raises IndexError on
    some malformed paths, which aiosmtpd answers with a 500: the quick one must do the same)."""
    session = gateway_session()
    readings: list[object] = []
    for read in (session._getaddr, lambda a: SMTP._getaddr(session, a)):
        try:
            readings.append(read(arg))
        except Exception as exc:
            readings.append(type(exc))
    return readings[0], readings[1]


@pytest.mark.parametrize(
    "arg",
    [
        "<meldpunt@ggd-groningen.example>",
        "<meldpunt@ggd-groningen.example> SIZE=2048 BODY=8BITMIME",
        "<meldpunt@ggd-groningen.example>  SIZE=2048  ",
        "  <a.b+c@x.y>",
        "<A_B@C-D.E>\tSMTPUTF8",
        "<>",
        "<a..b@c.d>",
        "<a.@c.d>",
        "<.a@c.d>",
        '<"x y"@c.d>',
        "<a@[127.0.0.1]>",
        "<@relay.example:a@b.c>",
        "a@b.c SIZE=1",
        "<a@b.c>SIZE=1",
        "<a@b.c",
        "<a@.c>",
        "<a@b..c>",
        "<jé@b.c>",
        "",
        "<" + "x" * 65 + "@b.c>",
    ],
)
def test_quick_reading_agrees_with_aiosmtpd(arg: str) -> None:
    quick, full = both(arg)
    assert quick == full


_PIECES = st.sampled_from(
    ["<", ">", "@", ".", " ", "\t", "a", "Z", "9", "-", "+", "_", '"', "[", "]", ":", ",",
     "(", ")", "=", "é", "SIZE=10", "BODY=8BITMIME", "ggd", "example", "\\"]
)  # fmt: skip


@QUICK
@given(st.lists(_PIECES, max_size=24).map("".join))
def test_quick_reading_agrees_on_any_argument(arg: str) -> None:
    quick, full = both(arg)
    assert quick == full


@QUICK
@given(
    st.from_regex(r"[a-z0-9+_-]{1,70}(\.[a-z0-9-]{1,8}){0,2}", fullmatch=True),
    st.from_regex(r"[a-z0-9-]{1,12}(\.[a-z0-9-]{1,12}){0,3}", fullmatch=True),
    st.sampled_from(["", " SIZE=100", "  BODY=8BITMIME SMTPUTF8", "\tSIZE=1 "]),
)
def test_quick_reading_agrees_on_plain_paths(local: str, domain: str, rest: str) -> None:
    quick, full = both(f"<{local}@{domain}>{rest}")
    assert quick == full
