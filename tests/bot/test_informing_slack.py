"""Informing and consent in Slack (issue 11.6, 11.7), through the real Bolt app with signed
requests and the fake Web API: the form refuses ``nee`` without a reason on its field; the
reminder to inform arrives as a DM with a button that records it; ``/verwijsindex
geinformeerd``; consent buttons on the match DM (kept after "contact gelegd") and
``/verwijsindex toestemming``; the partner hears the fact; ``mijn`` shows it."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.clock import utcnow
from core.models import MatchConsent, Signal
from core.scheduler import sweep
from tests.bot.conftest import ANNA, EVA, RunningSlack, SlackSender, user
from tests.bot.fake_slack_api import Call, FakeSlackApi
from tests.bot.forms import signal_fields, submit_signal
from tests.bot.privacy import assert_no_identity, identity_needles
from tests.bot.test_answers import _texts, _updates, press, wait_for_message
from tests.bot.test_commands import ask
from tests.bsns import valid_bsns
from tests.mail_gateway.conftest import wait_until

TODAY = date.today()
BIRTH = date(TODAY.year - 13, 2, 11)  # thirteen: the youth and the parents are informed
BSN = valid_bsns(1, start_prefix=27_182_818)[0]
NAME = "Fenna Testkind"


@pytest.fixture
def running(make_slack: Any) -> RunningSlack:
    return make_slack(with_delivery=True)


@pytest.fixture
def sender(running: RunningSlack, slack_api: FakeSlackApi) -> SlackSender:
    return SlackSender(running.url, slack_api)


def _signal(engine: Engine) -> Signal:
    with Session(engine) as session:
        return session.exec(select(Signal)).one()


def _consents(engine: Engine) -> list[tuple[str, str]]:
    with Session(engine) as session:
        rows = session.exec(select(MatchConsent)).all()
        return sorted((r.institution_id, r.status) for r in rows)


def _dms(api: FakeSlackApi, channel: str, header: str) -> list[Call]:
    return [
        c
        for c in api.calls_to("chat.postMessage", succeeded=True)
        if c.args.get("channel") in (channel, f"D{channel}")  # in a thread: its DM
        and header in str(c.args.get("blocks"))
    ]


def test_the_form_refuses_not_informed_without_a_reason_on_its_field(
    sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    _, answer = submit_signal(
        sender, slack_api, ANNA, signal_fields(BSN, BIRTH, geinformeerd="nee")
    )
    errors = answer.json()["errors"]
    assert list(errors) == ["reden_uitstel"]
    assert "bij Geïnformeerd 'nee'" in errors["reden_uitstel"]
    with Session(synced_engine) as session:
        assert session.exec(select(Signal)).first() is None


def test_the_reminder_dm_records_informing_by_button_and_the_command_says_it_is_done(
    sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine, running: RunningSlack
) -> None:
    fields = signal_fields(BSN, BIRTH, geinformeerd="nee", reden_uitstel="nog geen contact")
    _, answer = submit_signal(sender, slack_api, ANNA, fields)
    assert answer.body == ""
    with Session(synced_engine) as session:
        session.execute(update(Signal).values(placed_at=utcnow() - timedelta(days=10)))
        session.commit()
    assert sweep(synced_engine, running.bot.config)["informing_reminders"] == 1
    running.bot.outbox_waiting.set()
    reminder = wait_for_message(slack_api, user(ANNA), "antwoord_geinformeerd")
    shown = _texts(reminder.args["blocks"])
    assert "Bij de leeftijd van de jongere nu: *de jongere én de ouders*" in shown
    press(sender, reminder, ANNA, "antwoord_geinformeerd")
    [done] = wait_until(lambda: _updates(slack_api, reminder.response["ts"]), what="update")
    assert "antwoord_geinformeerd" not in str(done.args["blocks"])
    assert "vastgelegd dat de jongere en/of de ouders zijn geïnformeerd" in _texts(
        done.args["blocks"]
    )
    signal = _signal(synced_engine)
    assert signal.informed == "ja" and signal.informed_at is not None
    again = ask(sender, slack_api, ANNA, f"geinformeerd {signal.number}")
    assert again.startswith(f"Signaal *{signal.number}* stond al als geïnformeerd vastgelegd")
    refused = ask(sender, slack_api, EVA, f"geinformeerd {signal.number}")
    assert refused.startswith("Dat mag niet:")
    usage = ask(sender, slack_api, ANNA, "geinformeerd")
    assert "gebruik: `/verwijsindex geinformeerd &lt;S-nummer&gt;`" in usage
    assert_no_identity(slack_api, identity_needles([BSN], [BIRTH], [NAME]))


def test_geinformeerd_by_command(
    sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    fields = signal_fields(BSN, BIRTH, geinformeerd="uitgesteld", reden_uitstel="veiligheid")
    submit_signal(sender, slack_api, ANNA, fields)
    number = _signal(synced_engine).number
    text = ask(sender, slack_api, ANNA, f"geïnformeerd {number.lower()}")
    assert text.startswith(f":white_check_mark: Vastgelegd: bij signaal *{number}* zijn de jongere")
    assert _signal(synced_engine).informed == "ja"


def test_consent_buttons_on_the_match_dm_and_the_command_tell_the_partner(
    sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    for email in (ANNA, EVA):
        _, answer = submit_signal(sender, slack_api, email, signal_fields(BSN, BIRTH))
        assert answer.body == ""
    to_anna = wait_for_message(slack_api, user(ANNA), "toestemming_gegeven")
    before = len(slack_api.calls_to("response_url"))
    press(sender, to_anna, ANNA, "toestemming_gevraagd")
    [said] = slack_api.wait_for("response_url", before + 1)[before:]
    assert said.args["text"].startswith("Vastgelegd: toestemming gevraagd voor GGD Groningen")
    assert _consents(synced_engine) == [("ggd-groningen", "asked")]
    assert _updates(slack_api, to_anna.response["ts"]) == []  # the buttons stay

    # "Contact gelegd" answers the message; the consent buttons stay on it.
    press(sender, to_anna, ANNA, "antwoord_contact")
    [update_] = wait_until(lambda: _updates(slack_api, to_anna.response["ts"]), what="update")
    kept = str(update_.args["blocks"])
    assert "antwoord_contact" not in kept and "toestemming_gegeven" in kept
    press(sender, to_anna, ANNA, "toestemming_gegeven")
    wait_until(
        lambda: _consents(synced_engine) == [("ggd-groningen", "given")], what="consent given"
    )

    # Eva (Jeugdhulp Noord) hears each fact, and records her own by command.
    told = wait_until(lambda: len(_dms(slack_api, user(EVA), "Toestemming bij")) >= 2 and
                      _dms(slack_api, user(EVA), "Toestemming bij"), what="told")  # fmt: skip
    assert "toestemming *gekregen*" in _texts(told[-1].args["blocks"])
    text = ask(sender, slack_api, EVA, "toestemming M-1 geweigerd")
    assert text.startswith(":white_check_mark: Vastgelegd: toestemming *geweigerd* voor Jeugdhulp")
    assert _consents(synced_engine) == [("ggd-groningen", "given"), ("jeugdhulp-noord", "refused")]
    wait_until(lambda: _dms(slack_api, user(ANNA), "Toestemming bij"), what="Anna told")
    wrong = ask(sender, slack_api, EVA, "toestemming M-1 misschien")
    assert wrong.endswith("toestemming: geef aan of toestemming is gevraagd, gegeven of geweigerd "
                          "(bijvoorbeeld 'TOESTEMMING GEGEVEN').")  # fmt: skip

    mine = ask(sender, slack_api, ANNA, "mijn")
    assert "Toestemming: GGD Groningen gegeven" in mine
    assert "Jeugdhulp Noord geweigerd" in mine
    assert_no_identity(slack_api, identity_needles([BSN], [BIRTH], [NAME]))
