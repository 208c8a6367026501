"""``/signaal`` through the real endpoint: the modal is opened pre-filled from ``key=value``
text, its submission places the signal (or shows the core's refusal on the fields), a retried
submission places nothing twice, and the confirmation carries the signal number only."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.audit import AUDIT_LOCK_ID
from core.models import InboundMessage, Match, MatchStatus, OutboxMessage, Signal
from tests.bot.conftest import (
    ANNA,
    DEACTIVATED,
    EVA,
    JOOST,
    STRANGER,
    RunningSlack,
    SlackAnswer,
    SlackSender,
    slack_user_of,
    user,
)
from tests.bot.fake_slack_api import FakeSlackApi
from tests.bot.forms import (
    form_values,
    input_blocks,
    last_opened_view,
    open_signal_form,
    signal_fields,
    submit_signal,
    submit_view,
)
from tests.bot.privacy import assert_no_identity, identity_needles
from tests.bsns import valid_bsns

TODAY = date.today()
BIRTH = date(TODAY.year - 10, 5, 1)  # ten years old: inform the parents
BSN = valid_bsns(1, start_prefix=31_415_926)[0]
OTHER_BSN = valid_bsns(1, start_prefix=27_182_818)[0]
NAME = "Fenna Testkind"  # as signal_fields fills it in


def _signals(engine: Engine) -> list[Signal]:
    with Session(engine) as session:
        return list(session.exec(select(Signal).order_by(Signal.id)).all())  # type: ignore[arg-type]


def _fields(bsn: str | None = BSN, **changes: str | None) -> dict[str, str | None]:
    return signal_fields(bsn, BIRTH, **changes)


def submit(
    sender: SlackSender,
    api: FakeSlackApi,
    email: str,
    fields: dict[str, str | None],
    *,
    headers: dict[str, str] | None = None,
) -> tuple[dict[str, Any], SlackAnswer]:
    return submit_signal(sender, api, email, fields, headers=headers)


def confirmations(api: FakeSlackApi) -> list[str]:
    return [str(c.args.get("text", "")) for c in api.calls_to("response_url")]


def test_signaal_opens_the_form_pre_filled_from_key_value_text(
    sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    text = (
        "code=Urgent gemeente=groningen "
        'kenmerk="DOSSIER 12" geinformeerd=uitgesteld reden uitstel=veiligheid thuis'
    )
    view = open_signal_form(sender, slack_api, ANNA, text)
    blocks = input_blocks(view)
    assert blocks["kenmerk"]["element"]["initial_value"] == "DOSSIER 12"
    assert blocks["reden_uitstel"]["element"]["initial_value"] == "veiligheid thuis"
    assert blocks["code"]["element"]["initial_option"]["value"] == "urgent"
    assert blocks["gemeente"]["element"]["initial_option"]["value"] == "Groningen"
    assert blocks["geinformeerd"]["element"]["initial_option"]["value"] == "uitgesteld"
    guidance = " ".join(
        e["text"] for b in view["blocks"] if b["type"] == "context" for e in b["elements"]
    )
    assert "12 tot en met 15 jaar" in guidance
    options = [o["value"] for o in blocks["code"]["element"]["options"]]
    assert options == ["laag", "urgent"]  # the covenant's codes
    assert view["callback_id"] == "signaal"
    # Linked on first use, by the e-mail address Slack reports.
    assert slack_user_of(synced_engine, ANNA) == user(ANNA)
    assert slack_api.calls_to("users.info")[0].args["user"] == user(ANNA)
    sender.command("/verwijsindex", "help", ANNA)  # a later request: /signaal was handled
    assert slack_api.calls_to("response_url") == []  # nothing to warn about


def test_identity_after_signaal_is_not_taken_over_and_the_user_is_told(
    sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    text = f"bsn={BSN} geboortedatum={BIRTH:%d-%m-%Y} naam={NAME} code=laag kenmerk=K-9"
    view = open_signal_form(sender, slack_api, ANNA, text)
    blocks = input_blocks(view)
    for identity_field in ("bsn", "geboortedatum", "naam"):
        assert "initial_value" not in blocks[identity_field]["element"]
    assert blocks["code"]["element"]["initial_option"]["value"] == "laag"
    assert blocks["kenmerk"]["element"]["initial_value"] == "K-9"
    notes = " ".join(
        e["text"] for b in view["blocks"] if b["type"] == "context" for e in b["elements"]
    )
    assert "BSN, Geboortedatum, Naam: identiteitsgegevens nemen wij niet over" in notes
    [warning] = slack_api.wait_for("response_url")
    assert warning.args["response_type"] == "ephemeral"
    assert str(warning.args["text"]).startswith(
        ":warning: Zet geen BSN of andere identiteitsgegevens in de tekst achter `/signaal`"
    )
    # Typed into the form, the same identity places the signal as before.
    fields = {"bsn": BSN, "geboortedatum": f"{BIRTH:%d-%m-%Y}", "gemeente": "Groningen"}
    fields["geinformeerd"] = "ja"
    payload = sender.view_submission(view, form_values(view, fields), ANNA)
    assert submit_view(sender, slack_api, payload).body == ""
    [signal] = _signals(synced_engine)
    assert signal.reference == "K-9" and signal.code == "laag"
    assert "is geplaatst (uw kenmerk K-9)" in confirmations(slack_api)[-1]
    assert_no_identity(slack_api, identity_needles([BSN], [BIRTH], [NAME]))


def test_what_cannot_be_used_is_named_in_the_form(
    sender: SlackSender, slack_api: FakeSlackApi
) -> None:
    view = open_signal_form(sender, slack_api, ANNA, "hallo code=zeer-hoog geboortedatm=01-01-2015")
    notes = " ".join(
        e["text"] for b in view["blocks"] if b["type"] == "context" for e in b["elements"]
    )
    assert "de tekst vóór het eerste veld is geen veld" in notes and "hallo" not in notes
    assert "'geboortedatm' is geen veld dat wij kennen" in notes
    assert "Code: 'zeer-hoog' staat niet in de keuzelijst" in notes
    assert "initial_option" not in input_blocks(view)["code"]["element"]


def test_a_submission_places_the_signal_and_confirms_with_its_number(
    sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    _, answer = submit(sender, slack_api, ANNA, _fields())
    assert answer.status == 200
    assert answer.body == ""  # acknowledged: the modal closes
    [signal] = _signals(synced_engine)
    assert signal.channel == "slack"
    assert signal.code == "laag"
    assert signal.reference == "DOSSIER-77"
    assert signal.informed == "ja" and signal.informed_party == "ouders"
    assert signal.leaflet_given
    slack_api.wait_for("response_url")
    [text] = confirmations(slack_api)
    assert f"Signaal *{signal.number}* is geplaatst (uw kenmerk DOSSIER-77)" in text
    assert "Informeren: ouders" in text
    needles = identity_needles([BSN], [BIRTH], [NAME])
    assert_no_identity(slack_api, needles, extra=[r.getMessage() for r in caplog.records])


def test_a_retried_submission_places_no_second_signal(
    sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    payload, first = submit(sender, slack_api, ANNA, _fields())
    assert first.status == 200
    retry = sender.interact(
        payload, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    )
    assert retry.status == 200
    assert retry.body == ""  # closes the modal again, quietly
    assert len(_signals(synced_engine)) == 1
    slack_api.wait_for("response_url")
    assert len(confirmations(slack_api)) == 1
    with Session(synced_engine) as session:
        [seen] = session.exec(select(InboundMessage)).all()
    assert seen.transport == "slack" and seen.status == "processed"
    assert seen.raw == b""  # the sealed form is emptied once the signal is placed


def test_field_errors_from_the_core_appear_on_the_fields(
    sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    _, answer = submit(sender, slack_api, ANNA, _fields(bsn="123456789"))
    assert answer.status == 200
    assert answer.json() == {
        "response_action": "errors",
        "errors": {"bsn": "is geen geldig BSN (elfproef klopt niet)"},
    }
    _, answer = submit(sender, slack_api, ANNA, _fields(geinformeerd="uitgesteld"))
    errors = answer.json()["errors"]
    assert list(errors) == ["reden_uitstel"]
    assert "alleen worden uitgesteld met een reden" in errors["reden_uitstel"]
    _, answer = submit(sender, slack_api, ANNA, _fields(looptijd="30"))
    assert answer.json()["errors"] == {"looptijd": "moet tussen 1 en 24 maanden liggen"}
    _, answer = submit(
        sender, slack_api, ANNA, _fields(geboortedatum=f"{date(TODAY.year - 30, 1, 1):%d-%m-%Y}")
    )
    assert "23 jaar of ouder" in answer.json()["errors"]["geboortedatum"]
    assert _signals(synced_engine) == []
    # The user corrects the form and submits the same view again: now it is placed.
    view = last_opened_view(slack_api, 4)
    payload = sender.view_submission(view, form_values(view, _fields()), ANNA)
    assert submit_view(sender, slack_api, payload).body == ""
    assert len(_signals(synced_engine)) == 1


def test_a_cat_member_is_refused_with_the_cores_message(
    sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    payload, answer = submit(sender, slack_api, JOOST, _fields())
    assert answer.status == 200
    assert answer.body == ""  # the form was right; who may signal is the core's decision
    [refusal] = slack_api.wait_for("response_url")
    assert refusal.args["text"] == (
        "Het signaal is niet geplaatst. "
        "Dat mag niet: leden van team 'CAT' mogen geen signalen afgeven."
    )
    assert refusal.args["response_type"] == "ephemeral"
    assert _signals(synced_engine) == []
    # A retry of the refused submission is refused quietly: one message is enough.
    assert sender.interact(payload, headers={"X-Slack-Retry-Num": "1"}).body == ""
    sender.command("/verwijsindex", "help", ANNA)
    time.sleep(0.5)
    assert len(slack_api.calls_to("response_url")) == 1


def test_a_second_signal_of_the_same_professional_is_a_conflict(
    sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    submit(sender, slack_api, ANNA, _fields())
    _, answer = submit(sender, slack_api, ANNA, _fields(code="urgent"))
    assert answer.body == ""
    texts = [str(c.args["text"]) for c in slack_api.wait_for("response_url", 2)]
    assert any("Dat kan nu niet: u heeft al een actief signaal (S-1)" in t for t in texts)
    assert len(_signals(synced_engine)) == 1


def test_two_professionals_of_different_institutions_make_a_match(
    sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    submit(sender, slack_api, ANNA, _fields())
    submit(sender, slack_api, EVA, _fields(kenmerk="JHN-5", code="urgent"))
    anna, eva = _signals(synced_engine)
    assert (anna.institution_id, eva.institution_id) == ("ggd-groningen", "jeugdhulp-noord")
    with Session(synced_engine) as session:
        [match] = session.exec(select(Match).where(Match.status == MatchStatus.ACTIVE)).all()
        slack_rows = session.exec(
            select(OutboxMessage).where(
                OutboxMessage.kind == "match", OutboxMessage.channel == "slack"
            )
        ).all()
    # Both reporters are linked to Slack now: the match reaches them there too.
    assert {r.recipient for r in slack_rows} == {user(ANNA), user(EVA)}
    slack_api.wait_for("response_url", 2)
    assert f"Er is een *match* ({match.number})" in confirmations(slack_api)[-1]
    assert_no_identity(slack_api, identity_needles([BSN], [BIRTH], [NAME]))


@pytest.mark.parametrize("user_id", [STRANGER, DEACTIVATED, "UNOBODY01"])
def test_an_unknown_or_deactivated_slack_user_is_refused_politely(
    sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine, user_id: str
) -> None:
    answer = sender.command("/signaal", f"bsn={BSN}", user_id=user_id)
    assert answer.status == 200
    [refusal] = slack_api.wait_for("response_url")
    text = str(refusal.args["text"])
    assert text.startswith("Sorry, ")
    assert refusal.args["response_type"] == "ephemeral"
    assert slack_api.calls_to("views.open") == []
    assert slack_user_of(synced_engine, "p.bakker@ggd-groningen.example") is None


def test_a_submission_by_a_user_no_longer_linked_is_refused(
    sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    view = open_signal_form(sender, slack_api, ANNA, "")
    payload = sender.view_submission(view, form_values(view, _fields()), ANNA)
    payload["user"]["id"] = STRANGER
    body = sender.interact(payload).json()
    assert body["response_action"] == "update"
    assert body["view"]["blocks"][0]["text"]["text"].startswith("Sorry, ")
    assert _signals(synced_engine) == []


def test_another_youth_without_bsn_by_surname_and_sex(
    sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    fields = _fields(bsn=None, achternaam="Zonderbsn", geslacht="X", looptijd="6")
    _, answer = submit(sender, slack_api, ANNA, fields)
    assert answer.body == ""
    [signal] = _signals(synced_engine)
    months = (signal.ends_on.year - TODAY.year) * 12 + signal.ends_on.month - TODAY.month
    assert months == 6
    _, answer = submit(sender, slack_api, EVA, _fields(bsn=None))
    assert answer.json()["errors"] == {
        "bsn": "ontbreekt (of geef Achternaam en Geslacht als er geen BSN is)"
    }
    assert OTHER_BSN != BSN


def test_a_clean_stop_finishes_the_signals_already_acknowledged(
    make_slack: Callable[..., RunningSlack], slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    running = make_slack()
    sender = SlackSender(running.url, slack_api)
    view = open_signal_form(sender, slack_api, ANNA)  # Anna is linked: nothing left before ack
    payload = sender.view_submission(view, form_values(view, _fields()), ANNA)
    answers: list[SlackAnswer] = []
    # Hold the database's write lock (the audit chain's lock on PostgreSQL): the submission
    # waits in the listener (SQLite: to be stored; PostgreSQL: stored, placing waits).
    with synced_engine.connect() as blocker, blocker.begin():
        if synced_engine.dialect.name == "postgresql":
            blocker.execute(text(f"SELECT pg_advisory_xact_lock({AUDIT_LOCK_ID})"))
        else:  # the engine begins every SQLite transaction IMMEDIATE: the lock is held now
            blocker.exec_driver_sql("SELECT 1")
        submitting = threading.Thread(target=lambda: answers.append(sender.interact(payload)))
        submitting.start()
        time.sleep(0.3)
        stopping = threading.Thread(target=running.stop)
        stopping.start()
        time.sleep(0.5)
        assert stopping.is_alive()  # the stop waits for the submission in hand
    submitting.join(30)
    stopping.join(30)
    assert not stopping.is_alive()
    assert [answer.body for answer in answers] == [""]  # stored within Slack's deadline
    assert len(_signals(synced_engine)) == 1
    assert "is geplaatst" in str(slack_api.wait_for("response_url")[0].args["text"])
