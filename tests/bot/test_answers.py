"""Full flows through the running Slack role (endpoint and delivery worker): two signals from
Slack make a match, the match reaches both professionals as direct messages with a "contact
gelegd" button, the coordination assignment reaches the coordinating institution's channel with
its buttons, and pressing them answers through the core; the message then says who did what."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot import submission as submission_module
from core.models import (
    Coordination,
    CoordinationStatus,
    MatchMember,
    OutboxMessage,
    OutboxStatus,
    ReplyToken,
    Signal,
)
from tests.bot.conftest import (
    ANNA,
    EVA,
    PIETER,
    SANNE,
    STRANGER,
    WIJ_CHANNEL,
    RunningSlack,
    SlackSender,
    user,
)
from tests.bot.fake_slack_api import Call, FakeSlackApi
from tests.bot.forms import form_values, last_opened_view, signal_fields, submit_signal
from tests.bot.privacy import assert_no_identity, identity_needles
from tests.bsns import valid_bsns
from tests.mail_gateway.conftest import wait_until

TODAY = date.today()
BIRTH = date(TODAY.year - 10, 3, 14)  # ten, in the city of Groningen: WIJ coordinates
BSN = valid_bsns(1, start_prefix=16_180_339)[0]


def _buttons(call: Call) -> dict[str, str]:
    return {
        element["action_id"]: element["value"]
        for block in call.args.get("blocks") or []
        if block.get("type") == "actions"
        for element in block["elements"]
    }


def posted(api: FakeSlackApi, channel: str, action_id: str) -> list[Call]:
    return [
        call
        for call in api.calls_to("chat.postMessage", succeeded=True)
        if call.args.get("channel") in (channel, f"D{channel}")  # in a thread: its DM
        and action_id in _buttons(call)
    ]


def wait_for_message(api: FakeSlackApi, channel: str, action_id: str) -> Call:
    calls = wait_until(lambda: posted(api, channel, action_id), what=f"{action_id} to {channel}")
    return calls[-1]


def press(
    sender: SlackSender,
    message: Call,
    email: str,
    action_id: str,
    *,
    user_id: str | None = None,
    headers: dict[str, str] | None = None,
    payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Press a button of a posted message (as the fake answered it: channel and ts)."""
    payload = payload or sender.block_action(
        email,
        action_id,
        _buttons(message)[action_id],
        channel=message.response["channel"],
        ts=message.response["ts"],
        blocks=message.args["blocks"],
        user_id=user_id,
    )
    assert sender.interact(payload, headers=headers).status == 200
    return payload


def _coordination(engine: Engine) -> Coordination:
    with Session(engine) as session:
        return session.exec(select(Coordination)).one()


def _updates(api: FakeSlackApi, ts: str) -> list[Call]:
    return [c for c in api.calls_to("chat.update", succeeded=True) if c.args.get("ts") == ts]


def _texts(blocks: list[dict[str, Any]]) -> str:
    found = []
    for block in blocks:
        text = block.get("text")
        if isinstance(text, dict):
            found.append(str(text.get("text", "")))
        for element in block.get("elements") or []:
            if isinstance(element, dict) and isinstance(element.get("text"), str):
                found.append(element["text"])
    return "\n".join(found)


def _ephemeral_texts(api: FakeSlackApi) -> list[str]:
    """What the bot told users ephemerally, besides the confirmations of the signals."""
    texts = [str(c.args.get("text", "")) for c in api.calls_to("response_url")]
    return [t for t in texts if not t.startswith(":white_check_mark: Signaal")]


@pytest.fixture
def running(make_slack: Any, wij_channel: str) -> RunningSlack:
    return make_slack(with_delivery=True)


@pytest.fixture
def sender(running: RunningSlack, slack_api: FakeSlackApi) -> SlackSender:
    return SlackSender(running.url, slack_api)


@pytest.fixture
def matched(sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine) -> SlackSender:
    """Anna (GGD) and Eva (Jeugdhulp Noord) signal the same youth from Slack."""
    for email, code in ((ANNA, "laag"), (EVA, "urgent")):
        _, answer = submit_signal(sender, slack_api, email, signal_fields(BSN, BIRTH, code=code))
        assert answer.body == ""
    return sender


def test_match_dms_reach_both_professionals_and_contact_is_confirmed_by_button(
    matched: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    to_anna = wait_for_message(slack_api, user(ANNA), "antwoord_contact")
    wait_for_message(slack_api, user(EVA), "antwoord_contact")
    press(matched, to_anna, ANNA, "antwoord_contact")
    [update] = wait_until(lambda: _updates(slack_api, to_anna.response["ts"]), what="update")
    assert update.args["channel"] == to_anna.response["channel"]
    assert "antwoord_contact" not in str(update.args["blocks"])  # the button is gone
    text = _texts(update.args["blocks"])
    assert "*Anna de Vries* heeft laten weten dat er contact is gelegd" in text
    with Session(synced_engine) as session:
        anna_signal = session.exec(select(Signal).where(Signal.reference == "DOSSIER-77")).first()
        members = session.exec(select(MatchMember)).all()
    confirmed = {m.signal_id for m in members if m.contact_confirmed_at is not None}
    assert anna_signal is not None and anna_signal.id in confirmed and len(confirmed) == 1


def test_the_coordinator_accepts_by_button_and_everyone_involved_is_told(
    matched: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    assignment = wait_for_message(slack_api, WIJ_CHANNEL, "antwoord_akkoord")
    assert _coordination(synced_engine).status == CoordinationStatus.PENDING
    payload = press(matched, assignment, SANNE, "antwoord_akkoord")
    coordination = wait_until(
        lambda: (c := _coordination(synced_engine)).status == CoordinationStatus.ACCEPTED and c,
        what="coordination accepted",
    )
    assert coordination.institution_id == "wij-groningen"
    assert coordination.accepted_by == SANNE
    [update] = wait_until(lambda: _updates(slack_api, assignment.response["ts"]), what="update")
    assert update.args["channel"] == WIJ_CHANNEL
    assert "*Sanne Jansen* heeft de procescoördinatie geaccepteerd" in _texts(update.args["blocks"])
    assert all(b.get("type") != "actions" for b in update.args["blocks"])
    # The reporters are told, in Slack too.
    told = wait_until(
        lambda: (
            {
                r.recipient
                for r in _rows(synced_engine, "coordinatie-geaccepteerd", "slack")
                if r.status == OutboxStatus.SENT
            }
            >= {user(ANNA), user(EVA)}
        ),
        what="acceptance delivered",
    )
    assert told
    # Slack resends the press: nothing happens a second time, and no error is shown.
    press(matched, assignment, SANNE, "antwoord_akkoord", payload=payload,
          headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})  # fmt: skip
    # A second press (a double click) is told the answer was given already.
    press(matched, assignment, SANNE, "antwoord_akkoord")
    wait_until(lambda: _ephemeral_texts(slack_api), what="the second press answered")
    assert _ephemeral_texts(slack_api) == [
        "Dat kan nu niet: op dit bericht is al geantwoord; het antwoord is eerder verwerkt."
    ]
    assert len(_updates(slack_api, assignment.response["ts"])) == 1
    assert_no_identity(slack_api, identity_needles([BSN], [BIRTH], ["Fenna Testkind"]))


def _rows(engine: Engine, kind: str, channel: str) -> list[OutboxMessage]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(OutboxMessage).where(
                    OutboxMessage.kind == kind, OutboxMessage.channel == channel
                )
            ).all()
        )


def test_only_the_assigned_institution_and_known_users_may_answer(
    matched: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    assignment = wait_for_message(slack_api, WIJ_CHANNEL, "antwoord_akkoord")
    press(matched, assignment, EVA, "antwoord_akkoord")  # Jeugdhulp Noord, not WIJ
    press(matched, assignment, SANNE, "antwoord_akkoord", user_id=STRANGER)
    wait_until(lambda: len(_ephemeral_texts(slack_api)) == 2, what="two refusals")
    eva_refusal, stranger_refusal = sorted(_ephemeral_texts(slack_api))
    assert eva_refusal.startswith("Dat mag niet: dit antwoord moet komen van een afzender")
    assert stranger_refusal.startswith("Sorry, u kunt de verwijsindex van regio Groningen niet")
    assert _coordination(synced_engine).status == CoordinationStatus.PENDING
    assert _updates(slack_api, assignment.response["ts"]) == []


def test_the_coordinator_declines_with_a_reason_from_a_modal(
    matched: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    assignment = wait_for_message(slack_api, WIJ_CHANNEL, "antwoord_weiger")
    press(matched, assignment, SANNE, "antwoord_weiger")
    modal = last_opened_view(slack_api, 3)  # after the two /signaal forms
    assert modal["callback_id"] == "antwoord_weiger_reden"
    blank = matched.view_submission(modal, form_values(modal, {"reden": "   "}), SANNE)
    assert matched.interact(blank).json() == {
        "response_action": "errors",
        "errors": {"reden": "geef een reden bij het weigeren (WEIGER <reden>)"},
    }
    reason = "geen capaciteit in dit team"
    submitted = matched.view_submission(modal, form_values(modal, {"reden": reason}), SANNE)
    assert matched.interact(submitted).body == ""
    coordination = _coordination(synced_engine)
    assert [d["institution_id"] for d in coordination.declined] == ["wij-groningen"]
    assert coordination.institution_id != "wij-groningen"
    [update] = wait_until(lambda: _updates(slack_api, assignment.response["ts"]), what="update")
    assert f"de procescoördinatie geweigerd (reden: {reason})" in _texts(update.args["blocks"])
    # The modal carried the message: its facts stay, only the buttons went.
    kept = [b for b in assignment.args["blocks"] if b.get("type") == "header"]
    assert kept and kept[0] in update.args["blocks"]


def test_a_slow_decline_keeps_the_modal_open_until_it_is_committed(
    matched: SlackSender,
    slack_api: FakeSlackApi,
    synced_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Slack hears "ok" (the modal closes) only for work that is committed: a decline that
    takes longer than Slack waits gets a "busy" note on its field instead, is committed all
    the same, and pressing again never declines twice."""
    monkeypatch.setattr(submission_module, "ANSWER_WITHIN", 0.0)  # every command is "late"
    assignment = wait_for_message(slack_api, WIJ_CHANNEL, "antwoord_weiger")
    press(matched, assignment, SANNE, "antwoord_weiger")
    modal = last_opened_view(slack_api, 3)
    values = form_values(modal, {"reden": "geen capaciteit in dit team"})
    first = matched.interact(matched.view_submission(modal, values, SANNE)).json()
    assert first == {"response_action": "errors", "errors": {"reden": submission_module.BUSY_TEXT}}
    wait_until(lambda: _coordination(synced_engine).declined, what="the decline to be committed")
    monkeypatch.setattr(submission_module, "ANSWER_WITHIN", 2.0)  # a quiet database again
    again = matched.interact(matched.view_submission(modal, values, SANNE)).body
    assert again == "" or "eerder verwerkt" in again  # closed, or told it was done before
    assert [d["institution_id"] for d in _coordination(synced_engine).declined] == ["wij-groningen"]


def test_the_coordinator_hands_over_to_an_involved_institution(
    matched: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    assignment = wait_for_message(slack_api, WIJ_CHANNEL, "antwoord_overdragen")
    press(matched, assignment, SANNE, "antwoord_overdragen")
    modal = last_opened_view(slack_api, 3)
    assert modal["callback_id"] == "antwoord_overdragen_keuze"
    options = modal["blocks"][1]["element"]["options"]
    # Involved and allowed to coordinate: GGD (Anna's signal); Jeugdhulp Noord may not.
    assert [(o["value"], o["text"]["text"]) for o in options] == [
        ("ggd-groningen", "GGD Groningen")
    ]
    submitted = matched.view_submission(
        modal, form_values(modal, {"instelling": "ggd-groningen"}), SANNE
    )
    assert matched.interact(submitted).body == ""
    coordination = _coordination(synced_engine)
    assert coordination.institution_id == "ggd-groningen"
    assert coordination.status == CoordinationStatus.PENDING
    [update] = wait_until(lambda: _updates(slack_api, assignment.response["ts"]), what="update")
    assert "overgedragen aan GGD Groningen" in _texts(update.args["blocks"])
    # Eva's institution is not the coordinator: it is shown nothing to choose from.
    press(matched, assignment, EVA, "antwoord_overdragen")
    wait_until(lambda: _ephemeral_texts(slack_api), what="refusal")
    assert _ephemeral_texts(slack_api)[-1].startswith("Dat kan nu niet: op dit bericht is al")


def test_an_expired_assignment_opens_no_hand_over_form(
    matched: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    """The hand-over button resolves its token through the core as a reply mail does: past its
    expiry it shows nothing about the youth's involvements (once it skipped that check)."""
    assignment = wait_for_message(slack_api, WIJ_CHANNEL, "antwoord_overdragen")
    with Session(synced_engine) as session:
        for token in session.exec(select(ReplyToken)).all():
            token.expires_at = token.issued_at - timedelta(seconds=1)
            session.add(token)
        session.commit()
    opened = len(slack_api.calls_to("views.open"))
    press(matched, assignment, SANNE, "antwoord_overdragen")
    wait_until(lambda: _ephemeral_texts(slack_api), what="refusal")
    assert "verlopen" in _ephemeral_texts(slack_api)[-1]
    assert len(slack_api.calls_to("views.open")) == opened


def test_a_stand_in_receives_the_dms_of_an_absent_professional(
    sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    until = TODAY + timedelta(days=14)
    answer = sender.command(
        "/verwijsindex", f"afwezig vandaag {until:%d-%m-%Y} <@{user(PIETER)}|pieter>", ANNA
    )
    assert answer.status == 200
    wait_until(lambda: _ephemeral_texts(slack_api), what="absence confirmed")
    for email, code in ((ANNA, "laag"), (EVA, "urgent")):
        submit_signal(sender, slack_api, email, signal_fields(BSN, BIRTH, code=code))
    to_pieter = wait_for_message(slack_api, user(PIETER), "antwoord_contact")
    assert "Anna de Vries" in _texts(to_pieter.args["blocks"])  # on behalf of Anna
    wait_for_message(slack_api, user(ANNA), "antwoord_contact")
    wait_for_message(slack_api, user(EVA), "antwoord_contact")


def test_an_expiring_signal_is_extended_by_button(
    matched: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    """The "verlengen" button of a signaal-verloopt message (its token as the sweep issues it)."""
    from core.reply_tokens import issue_token

    with Session(synced_engine, expire_on_commit=False) as session:
        signal = session.exec(select(Signal).order_by(Signal.id)).first()  # type: ignore[arg-type]
        assert signal is not None
        token = issue_token(
            session,
            purpose="signal-expiry",
            subject_id=signal.id or 0,
            professional_id=signal.professional_id,
        )
        session.commit()
    payload = matched.block_action(
        ANNA, "antwoord_verlengen", token, channel="DUANNA0001", ts="1700000003.000001"
    )
    assert matched.interact(payload).status == 200
    [update] = wait_until(lambda: _updates(slack_api, "1700000003.000001"), what="update")
    with Session(synced_engine) as session:
        extended = session.get(Signal, signal.id)
    assert extended is not None and extended.ends_on > signal.ends_on
    text = _texts(update.args["blocks"])
    assert "*Anna de Vries* heeft het signaal verlengd" in text
    assert f"Signaal {signal.number} is verlengd tot {extended.ends_on:%d-%m-%Y}." in text
    # Eva may not answer Anna's message: the token is personal.
    payload = matched.block_action(
        EVA, "antwoord_verlengen", token, channel="DUANNA0001", ts="1700000003.000001"
    )
    matched.interact(payload)
    wait_until(lambda: _ephemeral_texts(slack_api), what="refusal")
    assert _ephemeral_texts(slack_api)[-1].startswith("Dat ")
