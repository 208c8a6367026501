"""No Slack answer repeats a youth's identity (issue 9, item 8): text after ``/signaal`` that is
no field, an unknown label, an unknown subcommand or colleague, each answered without the BSN or
birth date typed; the answers travel through the real Bolt app to the fake Slack Web API, whose
calls the suite's privacy guard scans as well (tests/privacy_guard.py)."""

from __future__ import annotations

from datetime import date

import pytest

from bot.arguments import reference
from bot.inline_fields import split_fields
from core.errors import InvalidInput
from tests.bot.conftest import ANNA, SlackSender
from tests.bot.fake_slack_api import FakeSlackApi
from tests.bot.forms import signal_fields, submit_signal
from tests.bot.test_commands import ask
from tests.core.conftest import BSN_A, BSN_B

BIRTH = "01-05-2016"
NAME = "Testkind Geheimnaam"


@pytest.mark.parametrize(
    "text",
    [
        f"{BSN_A} code=laag",
        f"bsn {BSN_A} code=laag",
        f"{NAME} code=laag",
        f"geboortedatum {BIRTH} code=laag",
        f"bsnn={BSN_A} code=laag",
        f"x{BSN_A}=ja code=laag",
        f"geboortedatun={BIRTH}",
        f"voornaam=Testkind achternaam={NAME}",
    ],
)
def test_inline_text_that_is_no_field_is_named_not_repeated(text: str) -> None:
    problems = " ".join(split_fields(text).problems)
    assert problems, f"{text!r} raised no problem"
    for value in (BSN_A, BIRTH, "Geheimnaam", "Testkind "):
        assert value not in problems


def test_a_number_that_is_no_signal_number_is_not_repeated() -> None:
    with pytest.raises(InvalidInput) as refused:
        reference(f"{BSN_A}x", "S", field="signaal")
    assert BSN_A not in refused.value.message


@pytest.mark.parametrize(
    "text", [BSN_A, f"{BSN_A[:3]} {BSN_A[3:6]} {BSN_A[6:]}", BIRTH, f"afwezig {BIRTH} {BSN_A}"]
)
def test_a_subcommand_answer_does_not_repeat_a_bsn_or_date(
    sender: SlackSender, slack_api: FakeSlackApi, text: str
) -> None:
    answer = ask(sender, slack_api, ANNA, text)
    assert BSN_A not in answer.replace(" ", "") and BIRTH not in answer


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("kenmerk", "DOSSIER-\u202e77", "bevat onzichtbare of stuurtekens (U+202E)"),
        ("kenmerk", f"DOSSIER-{BSN_B}", "bevat een BSN"),
        ("naam", "Fenna\u2066 Testkind", "bevat onzichtbare of stuurtekens (U+2066)"),
    ],
)
def test_the_form_refuses_invisible_characters_and_a_bsn_in_the_kenmerk_on_the_field(
    sender: SlackSender, slack_api: FakeSlackApi, field: str, value: str, error: str
) -> None:
    fields = signal_fields(BSN_B, date(2016, 5, 1), **{field: value})
    _, answer = submit_signal(sender, slack_api, ANNA, fields)
    errors = answer.json()["errors"]
    assert list(errors) == [field] and error in errors[field]
    assert BSN_B not in errors[field] and "Testkind" not in errors[field]
