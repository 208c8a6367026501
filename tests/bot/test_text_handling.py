"""Text between Slack and the bot (issue 12.7): what Slack escapes is un-escaped once at the
edge, every value the bot prints in mrkdwn is escaped exactly once, long answers come in parts
under Slack's advised 4,000 characters, and a message updated after a button press still fits
Slack's 50 blocks."""

from __future__ import annotations

import re
import time
from datetime import date
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.mrkdwn import MAX_PARTS, MESSAGE_TEXT_LIMIT, SHORTENED, split_message, unescape
from core.models import Signal
from core.overview import Contact, MatchItem, MatchPartner, MyWork, SignalItem
from core.rendering import TEMPLATES_DIR, slack_escape
from tests.bot.conftest import ANNA, EVA, SANNE, STRANGER, RunningSlack, SlackSender
from tests.bot.fake_slack_api import FakeSlackApi
from tests.bot.forms import input_blocks, open_signal_form, signal_fields, submit_signal
from tests.bot.test_answers import press, wait_for_message
from tests.bsns import valid_bsns

TODAY = date.today()
BIRTH = date(TODAY.year - 10, 3, 14)  # ten, in the city of Groningen: WIJ coordinates
BSN = valid_bsns(1, start_prefix=17_320_508)[0]


def ask(sender: SlackSender, api: FakeSlackApi, email: str, text: str) -> list[str]:
    """Run ``/verwijsindex text``; every ephemeral answer it gave (once none came for a while)."""
    before = len(api.calls_to("response_url"))
    assert sender.command("/verwijsindex", text, email).status == 200
    api.wait_for("response_url", before + 1)
    count = 0
    while count != (count := len(api.calls_to("response_url"))):
        time.sleep(0.3)
    return [str(call.args["text"]) for call in api.calls_to("response_url")[before:]]


# --- in: un-escaped once ----------------------------------------------------------------------


def test_unescape_undoes_exactly_slacks_three_entities() -> None:
    typed = "A&B <tag> &amp; x"
    assert unescape(slack_escape(typed)) == typed
    assert unescape("&amp;lt;") == "&lt;"  # the user typed "&lt;": it stays what they typed
    assert unescape("<@U123|anna> &quot;") == "<@U123|anna> &quot;"


def test_a_slash_commands_text_is_unescaped_before_it_prefills_the_form(
    sender: SlackSender, slack_api: FakeSlackApi
) -> None:
    # Slack sends "kenmerk=A&B-7" typed after /signaal as "kenmerk=A&amp;B-7".
    view = open_signal_form(sender, slack_api, ANNA, "kenmerk=A&amp;B-7 code=laag")
    assert input_blocks(view)["kenmerk"]["element"]["initial_value"] == "A&B-7"


def test_a_direct_messages_text_is_unescaped_before_it_is_read(
    sender: SlackSender, slack_api: FakeSlackApi
) -> None:
    text = "signaal kenmerk=A&amp;B-7"  # Slack's escaping of "signaal kenmerk=A&B-7"
    event = {"type": "message", "channel_type": "im", "channel": "DANNA0001",
             "user": "UANNA0001", "text": text, "ts": "1.000100"}  # fmt: skip
    assert sender.event(event).status == 200
    [warning] = slack_api.wait_for("chat.postMessage")
    [button] = [
        element
        for block in warning.args["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]
    assert "A&B-7" in button["value"] and "&amp;" not in button["value"]


# --- out: escaped once ------------------------------------------------------------------------


def test_mijn_escapes_every_value_exactly_once(
    sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    # A modal's input arrives as typed: the kenmerk is stored as "A&B-7".
    _, answer = submit_signal(sender, slack_api, ANNA, signal_fields(BSN, BIRTH, kenmerk="A&B-7"))
    assert answer.body == ""
    with Session(synced_engine) as session:
        assert session.exec(select(Signal.reference)).all() == ["A&B-7"]
    [text] = ask(sender, slack_api, ANNA, "mijn")
    assert "kenmerk A&amp;B-7" in text
    assert "&amp;amp;" not in text


def _hostile_work(count: int) -> MyWork:
    hostile = Contact("Jan & <!channel>", "x@example.org", "", "Instelling & Co")
    signals = [
        SignalItem(f"S-{n}", "laag", "Laag", date(2026, 3, 2), date(2027, 3, 2), f"K&{n}")
        for n in range(count)
    ]
    partner = MatchPartner("S-999", hostile, hostile, date(2026, 4, 1), False)
    matches = [MatchItem(f"M-{n}", False, f"S-{n}", [partner], None, False) for n in range(count)]
    return MyWork(hostile, TODAY, signals, matches, [], [])


def test_values_in_mijn_are_escaped_once_even_inside_macros(
    sender: SlackSender, slack_api: FakeSlackApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.commands.my_work", lambda *args, **kwargs: _hostile_work(2))
    [text] = ask(sender, slack_api, ANNA, "mijn")
    # The partner's contact goes through two macros (match_lines, contact): still once.
    assert "S-999: Jan &amp; &lt;!channel&gt; (Instelling &amp; Co)" in text
    assert "vervanger Jan &amp; &lt;!channel&gt;" in text
    assert "kenmerk K&amp;1" in text
    assert "&amp;amp;" not in text and "&amp;lt;" not in text and "<!channel>" not in text


def test_a_refusal_escapes_the_usage_and_a_quoted_word_once(
    sender: SlackSender, slack_api: FakeSlackApi
) -> None:
    [usage] = ask(sender, slack_api, ANNA, "verleng")
    assert usage == (
        "Dat klopt niet helemaal: gebruik: `/verwijsindex verleng &lt;S-nummer&gt; [maanden]`."
    )
    # Typed "S&12" arrives as "S&amp;12": un-escaped, quoted, escaped once.
    [refused] = ask(sender, slack_api, ANNA, "verleng S&amp;12")
    assert refused == (
        "Dat klopt niet helemaal: S-nummer: 'S&amp;12' is geen S-nummer (bijvoorbeeld S-12)."
    )
    [stranger] = ask(sender, slack_api, ANNA, f"afwezig vandaag morgen <@{STRANGER}|iemand>")
    assert stranger == (
        "Dat klopt niet helemaal: vervanger: @iemand is niet gekoppeld aan een hulpverlener in "
        "het convenant."
    )


# --- long answers -----------------------------------------------------------------------------


def test_a_long_mijn_comes_in_parts_each_under_4000_characters(
    sender: SlackSender, slack_api: FakeSlackApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.commands.my_work", lambda *args, **kwargs: _hostile_work(40))
    parts = ask(sender, slack_api, ANNA, "mijn")
    assert 1 < len(parts) <= MAX_PARTS
    assert all(len(part) <= MESSAGE_TEXT_LIMIT < 4000 for part in parts)
    joined = "\n".join(parts)
    assert "*S-0*" in joined and "*Matches (40)*" in joined
    # Each part is a whole number of lines: no entity or contact card is cut in two.
    assert all(not part.endswith(("&amp", "&", "<")) for part in parts)


def test_split_message_keeps_short_text_whole_and_cuts_only_between_sequences() -> None:
    assert split_message("kort\nbericht") == ["kort\nbericht"]
    line = "woord &amp; <mailto:a@b.example|a@b.example> " * 200
    parts = split_message(line, limit=100)
    assert all(len(part) <= 100 for part in parts)
    assert all(part.count("<") == part.count(">") for part in parts[:-1])
    assert all(not part.rstrip().endswith(("&amp", "&")) for part in parts)
    many = split_message("\n".join(f"regel {n}" for n in range(5000)), limit=200)
    assert len(many) == MAX_PARTS and many[-1].endswith(SHORTENED)


# --- a message updated after a button press -------------------------------------------------


@pytest.fixture
def running(make_slack: Any, wij_channel: str) -> RunningSlack:
    return make_slack(with_delivery=True)


@pytest.fixture
def delivered(running: RunningSlack, slack_api: FakeSlackApi) -> SlackSender:
    sender = SlackSender(running.url, slack_api)
    for email, code in ((ANNA, "laag"), (EVA, "urgent")):
        _, answer = submit_signal(sender, slack_api, email, signal_fields(BSN, BIRTH, code=code))
        assert answer.body == ""
    return sender


def test_an_answered_message_of_50_blocks_still_fits_with_its_answer_line(
    delivered: SlackSender, slack_api: FakeSlackApi, wij_channel: str
) -> None:
    assignment = wait_for_message(slack_api, wij_channel, "antwoord_akkoord")
    blocks = list(assignment.args["blocks"])
    filler = {"type": "section", "text": {"type": "mrkdwn", "text": "nog een instelling"}}
    actions = [b for b in blocks if b["type"] == "actions"]
    full = [b for b in blocks if b["type"] != "actions"]
    full += [filler] * (50 - len(full) - len(actions)) + actions
    assert len(full) == 50
    payload = delivered.block_action(
        SANNE, "antwoord_akkoord", actions[0]["elements"][0]["value"],
        channel=wij_channel, ts=assignment.response["ts"], blocks=full,
    )  # fmt: skip
    press(delivered, assignment, SANNE, "antwoord_akkoord", payload=payload)
    [update] = slack_api.wait_for("chat.update")  # the fake refuses more than 50 blocks
    assert len(update.args["blocks"]) <= 50
    assert "heeft de procescoördinatie geaccepteerd" in update.args["blocks"][-1]["text"]["text"]
    assert update.args["blocks"][0] == blocks[0]  # the header stays


def test_no_template_writes_a_bare_angle_bracket_that_slack_would_read_as_a_link() -> None:
    """Literal text in the Slack templates is mrkdwn already: ``<code>`` must be written
    ``&lt;code&gt;``; only Slack's own sequences (mentions, links) may use ``<``."""
    jinja = re.compile(r"\{#.*?#\}|\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
    allowed = re.compile(r"<(?:@|#|!|mailto:|https?://)")
    for template in sorted(TEMPLATES_DIR.glob("slack/**/*.j2")):
        literal = jinja.sub("", template.read_text(encoding="utf-8"))
        bare = [
            m.start() for m in re.finditer("<", literal) if not allowed.match(literal, m.start())
        ]
        assert not bare, f"{template.name}: {[literal[at : at + 20] for at in bare]}"


def test_what_the_form_could_not_take_over_is_shown_escaped_once(
    sender: SlackSender, slack_api: FakeSlackApi
) -> None:
    # Typed "/signaal code=laag&hoog": Slack sends "code=laag&amp;hoog".
    view = open_signal_form(sender, slack_api, ANNA, "code=laag&amp;hoog")
    notes = [
        element["text"]
        for block in view["blocks"]
        if block["type"] == "context"
        for element in block["elements"]
        if "Niet overgenomen" in element["text"]
    ]
    assert len(notes) == 1 and "laag&amp;hoog" in notes[0], notes
    assert "&amp;amp;" not in notes[0]
