"""``format=flowed`` (RFC 3676) undone before anything reads the text."""

from __future__ import annotations

import pytest

from mail_gateway.parsing.flowed import unflow
from mail_gateway.parsing.mime import read_mail


@pytest.mark.parametrize(
    ("flowed", "delsp", "lines"),
    [
        ("een lange regel die \r\nverder gaat\r\n", False, "een lange regel die verder gaat\n"),
        ("samengesteld: wacht \r\nlijst\r\n", True, "samengesteld: wachtlijst\n"),
        ("vast\r\nook vast\r\n", False, "vast\nook vast\n"),
        # §4.3: the signature separator is never flowed
        ("tekst\r\n-- \r\nJan\r\n", False, "tekst\n-- \nJan\n"),
        # §4.4: space-stuffing removed
        ("  ingesprongen\r\n From hier\r\n", False, " ingesprongen\nFrom hier\n"),
        # §4.5: quoted lines join only at the same depth, and are written back as '> '
        ("> Op 23 nov schreef \r\n> X:\r\n>> diep \r\n> ondiep\r\n", False,
         "> Op 23 nov schreef X:\n>> diep \n> ondiep\n"),
        (">\r\n", False, ">\n"),
    ],
)  # fmt: skip
def test_unflow(flowed: str, delsp: bool, lines: str) -> None:
    assert unflow(flowed, delsp=delsp) == lines


def test_the_mime_reader_unflows_only_flowed_parts() -> None:
    head = b"From: a@b.example\r\nContent-Type: text/plain; charset=utf-8"
    body = b"\r\n\r\nWEIGER geen plek, de wacht \r\nlijst is lang.\r\n"
    assert read_mail(head + b"; format=flowed; delsp=yes" + body).text == (
        "WEIGER geen plek, de wachtlijst is lang.\n"
    )
    assert read_mail(head + b'; format="flowed"' + body).text == (
        "WEIGER geen plek, de wacht lijst is lang.\n"
    )
    assert read_mail(head + body).text == "WEIGER geen plek, de wacht \nlijst is lang.\n"


def test_a_never_ending_paragraph_is_ended() -> None:
    text = "woord \r\n" * 30_000  # 180,000 characters, all flowed
    lines = unflow(text).split("\n")
    assert len(lines) == 2 and len(lines[0]) == 100_002  # cut at the line that passes 100,000
