"""No Slack answer repeats a youth's identity (issue 9, item 8): text after ``/signaal`` that is
no field, an unknown label, an unknown subcommand or colleague, each answered without the BSN or
birth date typed; the answers travel through the real Bolt app to the fake Slack Web API, whose
calls the suite's privacy guard scans as well (tests/privacy_guard.py)."""

from __future__ import annotations

import pytest

from bot.arguments import reference
from bot.inline_fields import split_fields
from core.errors import InvalidInput
from tests.bot.conftest import ANNA, SlackSender
from tests.bot.fake_slack_api import FakeSlackApi
from tests.bot.test_commands import ask
from tests.core.conftest import BSN_A

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
