"""``/verwijsindex`` subcommands through the real endpoint: help, mijn, afwezig/terug,
intrekken, verleng and overdracht (requested by the secretariat, executed by the institution's
coordinator with a button), with clear Dutch errors."""

from __future__ import annotations

import json
import time
from datetime import date, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.signals import OPEN_FORM_ACTION
from core.actors import find_professional
from core.models import Absence, Signal, SignalStatus, TransferRequest, TransferStatus
from tests.bot.conftest import (
    ANNA,
    EVA,
    KARIN,
    PIETER,
    RUUD,
    SANNE,
    STRANGER,
    THIJS,
    WENDY,
    SlackSender,
    user,
)
from tests.bot.fake_slack_api import FakeSlackApi
from tests.bot.forms import (
    form_values,
    input_blocks,
    last_opened_view,
    signal_fields,
    submit_signal,
)
from tests.bot.privacy import assert_no_identity, identity_needles
from tests.bsns import valid_bsns
from tests.mail_gateway.conftest import free_port

TODAY = date.today()
BIRTH = date(TODAY.year - 14, 8, 20)
BSN_ONE, BSN_TWO = valid_bsns(2, start_prefix=14_142_135)


def ask(sender: SlackSender, api: FakeSlackApi, email: str, text: str, **kw: str) -> str:
    """Run ``/verwijsindex text`` and return the ephemeral answer."""
    before = len(api.calls_to("response_url"))
    answer = sender.command("/verwijsindex", text, email, **kw)
    assert answer.status == 200
    calls = api.wait_for("response_url", before + 1)
    assert calls[-1].args["response_type"] == "ephemeral"
    return str(calls[-1].args["text"])


def place(sender: SlackSender, api: FakeSlackApi, engine: Engine, email: str, bsn: str) -> Signal:
    """A signal placed through the form; returns once its confirmation has arrived."""
    confirmed = len(api.calls_to("response_url"))
    _, answer = submit_signal(sender, api, email, signal_fields(bsn, BIRTH))
    assert answer.body == ""
    api.wait_for("response_url", confirmed + 1)
    return latest_signal(engine, email)


def latest_signal(engine: Engine, email: str) -> Signal:
    with Session(engine) as session:
        professional = find_professional(session, email)
        assert professional is not None
        signal = session.exec(
            select(Signal)
            .where(Signal.professional_id == professional.id)
            .order_by(col(Signal.id).desc())
        ).first()
        assert signal is not None
        return signal


def test_help_lists_every_subcommand(sender: SlackSender) -> None:
    for text in ("help", "", "HELP"):
        answer = sender.command("/verwijsindex", text, ANNA).json()
        for word in ("mijn", "afwezig", "terug", "overdracht", "intrekken", "verleng", "/signaal"):
            assert word in answer["text"]


def test_an_unknown_subcommand_gets_the_help(sender: SlackSender, slack_api: FakeSlackApi) -> None:
    text = ask(sender, slack_api, ANNA, "<!channel> doe-iets")
    assert text.startswith("'&lt;!channel&gt;' ken ik niet.")
    assert "/verwijsindex mijn" in text


def test_mijn_shows_own_signals_and_matches_without_identity(
    sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    mine = place(sender, slack_api, synced_engine, ANNA, BSN_ONE)
    partner = place(sender, slack_api, synced_engine, EVA, BSN_ONE)
    text = ask(sender, slack_api, ANNA, "mijn")
    assert f"*{mine.number}* · code Laag" in text
    assert "kenmerk DOSSIER-77" in text
    contact = "Eva Meijer (Jeugdhulp Noord), e.meijer@jeugdhulp-noord.example"
    assert f"{partner.number}: {contact}" in text
    assert "*Matches (1)*" in text
    assert_no_identity(slack_api, identity_needles([BSN_ONE], [BIRTH], ["Fenna Testkind"]))


def test_a_stranger_is_refused_politely(sender: SlackSender, slack_api: FakeSlackApi) -> None:
    text = ask(sender, slack_api, "", "mijn", user_id=STRANGER)
    assert text.startswith("Sorry, u kunt de verwijsindex van regio Groningen niet")
    assert "iemand@elders.example" in text


def _absences(engine: Engine) -> list[Absence]:
    with Session(engine) as session:
        return list(session.exec(select(Absence)).all())


def test_afwezig_with_a_stand_in_and_terug(
    sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    until = TODAY + timedelta(days=10)
    text = ask(
        sender, slack_api, ANNA, f"afwezig {TODAY:%d-%m-%Y} {until:%d-%m-%Y} <@{user(PIETER)}|pb>"
    )
    assert f"van {TODAY:%d-%m-%Y} tot en met {until:%d-%m-%Y}" in text
    assert "*Pieter Bakker* (p.bakker@ggd-groningen.example) is uw vervanger" in text
    [absence] = _absences(synced_engine)
    assert (absence.starts_on, absence.ends_on) == (TODAY, until)
    assert absence.stand_in_id is not None and absence.ended_at is None
    text = ask(sender, slack_api, ANNA, "terug")
    assert text.startswith(":wave: Welkom terug.")
    assert "Pieter Bakker ontvangt uw berichten niet meer" in text
    [absence] = _absences(synced_engine)
    assert absence.ended_at is not None


def test_afwezig_errors_are_clear_and_in_dutch(
    sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    assert ask(sender, slack_api, ANNA, "afwezig morgen") == (
        "Dat klopt niet helemaal: gebruik: `/verwijsindex afwezig &lt;van&gt; &lt;tot&gt; "
        "[@vervanger]`."
    )
    assert ask(sender, slack_api, ANNA, "afwezig 31-02-2026 01-03-2026") == (
        "Dat klopt niet helemaal: van: '31-02-2026' is geen bestaande datum."
    )
    text = ask(sender, slack_api, ANNA, f"afwezig vandaag morgen <@{user(SANNE)}>")
    assert text == (
        "Dat klopt niet helemaal: vervanger: de vervanger moet van dezelfde instelling zijn."
    )
    text = ask(sender, slack_api, ANNA, f"afwezig vandaag morgen <@{STRANGER}>")
    assert "is niet gekoppeld aan een hulpverlener in het convenant" in text
    assert ask(sender, slack_api, ANNA, "terug") == (
        "Niet gevonden: er is geen lopende of geplande afwezigheid om te beëindigen."
    )
    assert _absences(synced_engine) == []


def test_a_retried_command_is_carried_out_once(
    sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    text = f"afwezig vandaag morgen {PIETER}"
    sender.command("/verwijsindex", text, ANNA, trigger_id="trigger.same")
    slack_api.wait_for("response_url")
    retry = sender.command(
        "/verwijsindex", text, ANNA, trigger_id="trigger.same", headers={"X-Slack-Retry-Num": "1"}
    )
    assert retry.status == 200
    assert len(_absences(synced_engine)) == 1
    # The answer, too, is given once: the retry is quiet (its work would be done well within
    # half a second; the first answer took less).
    time.sleep(0.5)
    assert len(slack_api.calls_to("response_url")) == 1


def test_intrekken_onterecht_deletes_and_risico_weg_archives(
    sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    first = place(sender, slack_api, synced_engine, ANNA, BSN_ONE)
    second = place(sender, slack_api, synced_engine, ANNA, BSN_TWO)
    text = ask(sender, slack_api, ANNA, f"intrekken {first.number} onterecht")
    assert f"Signaal *{first.number}* is ingetrokken als onterecht en verwijderd" in text
    text = ask(sender, slack_api, ANNA, f"intrekken {second.id} risico-weg")
    assert f"Signaal *{second.number}* is beëindigd (risico weg)" in text
    with Session(synced_engine) as session:
        assert session.get(Signal, first.id) is None
        archived = session.get(Signal, second.id)
        assert archived is not None and archived.status == SignalStatus.ARCHIVED
    assert ask(sender, slack_api, ANNA, f"intrekken {second.number} risico-weg") == (
        f"Dat kan nu niet: {second.number} is niet meer actief."
    )
    assert ask(sender, slack_api, ANNA, "intrekken S-1 vergissing") == (
        "Dat klopt niet helemaal: reden: reden moet 'onterecht' of 'risico-weg' zijn."
    )


def test_only_the_reporter_may_withdraw(
    sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    signal = place(sender, slack_api, synced_engine, ANNA, BSN_ONE)
    text = ask(sender, slack_api, EVA, f"intrekken {signal.number} onterecht")
    assert text.startswith("Dat mag niet: alleen de melder van")


def test_verleng_extends_the_end_date(
    sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    signal = place(sender, slack_api, synced_engine, ANNA, BSN_ONE)
    text = ask(sender, slack_api, ANNA, f"verleng {signal.number.lower()} 6")
    wanted = signal.ends_on + relativedelta(months=6)
    assert text == f"Signaal *{signal.number}* is verlengd tot {wanted:%d-%m-%Y}."
    with Session(synced_engine) as session:
        stored = session.get(Signal, signal.id)
        assert stored is not None and stored.ends_on == wanted
    assert ask(sender, slack_api, ANNA, f"verleng {signal.number} zes") == (
        "Dat klopt niet helemaal: maanden: geef het aantal maanden als getal, bijvoorbeeld 6."
    )
    assert ask(sender, slack_api, ANNA, "verleng X-3") == (
        "Dat klopt niet helemaal: S-nummer: 'X-3' is geen S-nummer (bijvoorbeeld S-12)."
    )


def _transfers(engine: Engine) -> list[TransferRequest]:
    with Session(engine) as session:
        return list(session.exec(select(TransferRequest)).all())


def test_overdracht_requested_by_the_secretariat_and_executed_by_button(
    sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    moving = place(sender, slack_api, synced_engine, THIJS, BSN_ONE)
    command = f"overdracht <@{user(THIJS)}|thijs> <@{user(EVA)}|eva> <@{user(KARIN)}|karin>"
    text = ask(sender, slack_api, WENDY, command)
    [transfer] = _transfers(synced_engine)
    assert text.startswith(f"Overdracht *{transfer.number}* is aangevraagd")
    assert "van Thijs Boer naar Eva Meijer, in opdracht van Karin de Boer" in text
    assert transfer.status == TransferStatus.REQUESTED
    # A professional without the secretariat role cannot ask.
    assert ask(sender, slack_api, THIJS, command).startswith(
        "Dat mag niet: alleen het secretariaat"
    )
    # The institution's coordinator presses "uitvoeren" on the notification.
    payload = sender.block_action(
        RUUD, "overdracht_uitvoeren", transfer.number, channel="DURUUD0001", ts="1700000001.000001"
    )
    assert sender.interact(payload).status == 200
    [update] = slack_api.wait_for("chat.update")
    assert update.args["channel"] == "DURUUD0001"
    assert "is uitgevoerd door *Ruud Bos*" in update.args["text"]
    assert "1 signaal overgedragen" in update.args["text"]
    [transfer] = _transfers(synced_engine)
    assert transfer.status == TransferStatus.EXECUTED
    with Session(synced_engine) as session:
        moved = session.get(Signal, moving.id)
        assert moved is not None and moved.ends_on == moving.ends_on
    assert moved.professional_id != moving.professional_id
    # Someone else pressing it (here Eva, who is no coordinator) is refused by the core.
    payload = sender.block_action(
        EVA, "overdracht_uitvoeren", transfer.number, channel="DUEVA00001", ts="1700000001.000002"
    )
    answered = len(slack_api.calls_to("response_url"))
    sender.interact(payload)
    refusal = slack_api.wait_for("response_url", answered + 1)[-1]
    assert str(refusal.args["text"]).startswith("Dat mag niet: alleen een instellingscoördinator")


def test_overdracht_without_a_senior_asks_who_instructed_it(
    sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    sender.command("/verwijsindex", f"overdracht {THIJS} <@{user(EVA)}>", WENDY)
    modal = last_opened_view(slack_api)
    assert modal["callback_id"] == "overdracht_senior"
    options = modal["blocks"][1]["element"]["options"]
    assert [o["value"] for o in options] == [KARIN]  # the institution's seniors
    submitted = sender.view_submission(modal, form_values(modal, {"senior": KARIN}), WENDY)
    assert sender.interact(submitted).body == ""
    [transfer] = _transfers(synced_engine)
    assert transfer.status == TransferStatus.REQUESTED
    [answer] = slack_api.wait_for("response_url")
    assert f"Overdracht *{transfer.number}* is aangevraagd" in str(answer.args["text"])


def _button(message: dict[str, Any], action_id: str) -> dict[str, Any]:
    return next(
        element
        for block in message.get("blocks") or []
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"] == action_id
    )


def test_a_direct_message_that_looks_like_a_signal_places_nothing_and_offers_the_form(
    sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    text = (
        f"signaal bsn={BSN_ONE} geboortedatum={BIRTH:%d-%m-%Y} naam=Fenna Testkind "
        "gemeente=Groningen code=laag geinformeerd=ja kenmerk=DM-1"
    )
    event = {
        "type": "message",
        "channel_type": "im",
        "channel": "DANNA0001",
        "user": user(ANNA),
        "text": text,
        "ts": "1700000002.000001",
    }
    assert sender.event(event, event_id="Ev0DM1").status == 200
    [warning] = slack_api.wait_for("chat.postMessage")
    assert warning.args["channel"] == "DANNA0001"
    assert str(warning.args["text"]).startswith(
        ":warning: Zet geen BSN of andere identiteitsgegevens in een chatbericht: Slack bewaart "
        "dat bericht. Verwijder uw bericht zelf en gebruik het formulier."
    )
    button = _button(warning.args, OPEN_FORM_ACTION)
    assert button["text"]["text"] == "Signaal-formulier openen"
    with Session(synced_engine) as session:
        assert session.exec(select(Signal)).all() == []
    # Slack resends the event: no second answer. A bare BSN without a label is warned about too.
    retry = sender.event(event, event_id="Ev0DM1", headers={"X-Slack-Retry-Num": "1"})
    assert retry.status == 200
    bare = {**event, "text": f"kun je {BSN_TWO} even nakijken?", "ts": "1700000002.000002"}
    sender.event(bare, event_id="Ev0DM2")
    second = slack_api.wait_for("chat.postMessage", 2)[-1]
    assert _button(second.args, OPEN_FORM_ACTION)
    assert len(slack_api.calls_to("chat.postMessage")) == 2

    # The button opens the form with the fields that identify no one; the user types the rest.
    click = sender.block_action(
        ANNA,
        OPEN_FORM_ACTION,
        button["value"],
        channel=str(warning.response["channel"]),
        ts=str(warning.response["ts"]),
        blocks=warning.args["blocks"],
    )
    assert sender.interact(click).status == 200
    view = last_opened_view(slack_api)
    assert view["callback_id"] == "signaal"
    blocks = input_blocks(view)
    for identity_field in ("bsn", "geboortedatum", "naam", "achternaam", "bsn_ouder"):
        assert "initial_value" not in blocks[identity_field]["element"]
    assert blocks["kenmerk"]["element"]["initial_value"] == "DM-1"
    assert blocks["code"]["element"]["initial_option"]["value"] == "laag"
    assert blocks["gemeente"]["element"]["initial_option"]["value"] == "Groningen"
    assert blocks["geinformeerd"]["element"]["initial_option"]["value"] == "ja"
    notes = json.dumps(view["blocks"], ensure_ascii=False)
    assert "BSN, Geboortedatum, Naam: identiteitsgegevens nemen wij niet over" in notes
    typed = {"bsn": BSN_ONE, "geboortedatum": f"{BIRTH:%d-%m-%Y}"}
    submitted = sender.view_submission(view, form_values(view, typed), ANNA)
    assert sender.interact(submitted).body == ""  # the modal closes
    [confirmation] = slack_api.wait_for("response_url")
    signal = latest_signal(synced_engine, ANNA)
    assert f"Signaal *{signal.number}* is geplaatst (uw kenmerk DM-1)" in confirmation.args["text"]
    assert signal.channel == "slack" and signal.reference == "DM-1"
    assert_no_identity(
        slack_api, identity_needles([BSN_ONE, BSN_TWO], [BIRTH], ["Fenna Testkind", "Fenna"])
    )


def test_other_direct_messages_get_the_help_and_bots_are_ignored(
    sender: SlackSender, slack_api: FakeSlackApi
) -> None:
    base = {"type": "message", "channel_type": "im", "channel": "DANNA0001", "ts": "1.1"}
    sender.event({**base, "user": user(ANNA), "text": "hallo, wat kan ik hier?"})
    [reply] = slack_api.wait_for("chat.postMessage")
    assert "/verwijsindex mijn" in reply.args["text"]
    sender.event({**base, "user": user(ANNA), "subtype": "message_changed", "text": "x"})
    sender.event({**base, "bot_id": "B0BOT", "user": "U0BOT", "text": "signaal code=laag"})
    sender.event({**base, "channel_type": "channel", "user": user(ANNA), "text": "signaal"})
    sender.command("/verwijsindex", "help", ANNA)  # a later request: the events were handled
    assert len(slack_api.calls_to("chat.postMessage")) == 1


def test_app_home_shows_the_overview_or_a_refusal(
    sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    signal = place(sender, slack_api, synced_engine, ANNA, BSN_ONE)
    sender.event({"type": "app_home_opened", "user": user(ANNA), "tab": "home"})
    [home] = slack_api.wait_for("views.publish")
    assert home.args["user_id"] == user(ANNA)
    assert home.args["view"]["type"] == "home"
    assert signal.number in str(home.args["view"])
    sender.event({"type": "app_home_opened", "user": STRANGER, "tab": "home"})
    refusal = slack_api.wait_for("views.publish", 2)[-1]
    assert refusal.args["user_id"] == STRANGER
    assert "Sorry, u kunt de verwijsindex" in str(refusal.args["view"])
    sender.event({"type": "app_home_opened", "user": user(ANNA), "tab": "messages"})
    sender.command("/verwijsindex", "help", ANNA)
    assert len(slack_api.calls_to("views.publish")) == 2
    assert_no_identity(slack_api, identity_needles([BSN_ONE], [BIRTH], ["Fenna Testkind"]))


def test_when_the_response_url_fails_the_answer_comes_by_direct_message(
    sender: SlackSender, slack_api: FakeSlackApi
) -> None:
    gone = f"http://127.0.0.1:{free_port()}/verlopen"  # nothing listens there
    assert sender.command("/verwijsindex", "mijn", ANNA, response_url=gone).status == 200
    [direct] = slack_api.wait_for("chat.postMessage")
    assert direct.args["channel"] == user(ANNA)
    assert str(direct.args["text"]).startswith("*Uw werk in de verwijsindex*")
