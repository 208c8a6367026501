"""The municipality's regie in Slack (issue 11.8): when the municipality's contact is a linked
Slack user (the covenant lists the address as a professional), an escalation reaches them as a
DM with REGIE, AANWIJZEN (an institution select in a modal) and AFGEROND (a reason modal); the
presses, as signed requests into the real Bolt app, answer through the core as a reply mail
does, and only that contact may press them."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.actors import institution_actor
from core.clock import utcnow
from core.config import CoreConfig
from core.coordination import decline_coordination
from core.db import run_in_transaction
from core.models import Coordination, CoordinationStatus, MunicipalityAction, Professional, Team
from tests.bot.conftest import ANNA, EVA, RunningSlack, SlackSender
from tests.bot.fake_slack_api import FakeSlackApi
from tests.bot.forms import form_values, last_opened_view, signal_fields, submit_signal
from tests.bot.privacy import assert_no_identity, identity_needles
from tests.bot.test_answers import (
    BIRTH,
    BSN,
    _ephemeral_texts,
    _texts,
    _updates,
    posted,
    press,
)
from tests.bot.test_answers import wait_for_message as wait_for_buttons
from tests.mail_gateway.conftest import wait_until

CONTACT = "regie.verwijsindex@gemeente-groningen.example"
GERDA = "UGERDA001"  # the Groningen contact's Slack user


@pytest.fixture
def contact_in_slack(synced_engine: Engine, slack_api: FakeSlackApi) -> str:
    """The covenant lists the municipality's contact as a professional, linked to Slack."""
    with Session(synced_engine) as session:
        team = session.exec(select(Team).where(Team.institution_id == "ggd-groningen")).first()
        assert team is not None
        session.add(
            Professional(
                email=CONTACT,
                name="Gerda Huizinga",
                institution_id="ggd-groningen",
                team_id=team.id or 0,
                roles=["professional"],
                slack_user_id=GERDA,
            )
        )
        session.commit()
    slack_api.add_user(GERDA, CONTACT, name="gerda.huizinga")
    return GERDA


@pytest.fixture
def running(make_slack: Any, contact_in_slack: str) -> RunningSlack:
    return make_slack(with_delivery=True)


@pytest.fixture
def sender(running: RunningSlack, slack_api: FakeSlackApi) -> SlackSender:
    return SlackSender(running.url, slack_api)


@pytest.fixture
def unassigned(
    sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine, config: CoreConfig
) -> SlackSender:
    """Anna (GGD) and Eva (Jeugdhulp Noord) signal a ten-year-old from Slack; WIJ, the only
    candidate of the rules, declines: the coordination goes to the municipality."""
    for email in (ANNA, EVA):
        submit_signal(sender, slack_api, email, signal_fields(BSN, BIRTH))
    coordination = _coordination(synced_engine)
    assert coordination.institution_id == "wij-groningen"
    run_in_transaction(
        synced_engine,
        lambda s: decline_coordination(
            coordination.id or 0,
            "vol",
            session=s,
            config=config,
            actor=institution_actor("wij-groningen", "smtp"),
            now=utcnow(),
        ),
    )
    assert _coordination(synced_engine).status == CoordinationStatus.UNASSIGNED
    return sender


def _coordination(engine: Engine) -> Coordination:
    with Session(engine) as session:
        return session.exec(select(Coordination)).one()


def _actions(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return [a.action for a in session.exec(select(MunicipalityAction)).all()]


def test_the_escalation_dm_has_the_three_answers_and_aanwijzen_opens_a_select(
    unassigned: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    escalation = wait_for_buttons(slack_api, GERDA, "antwoord_regie")
    ids = [
        e["action_id"]
        for b in escalation.args["blocks"]
        if b.get("type") == "actions"
        for e in b["elements"]
    ]
    assert ids == ["antwoord_regie", "antwoord_aanwijzen", "antwoord_afronden"]
    # Someone else pressing (a professional of an involved institution) is refused.
    press(unassigned, escalation, ANNA, "antwoord_aanwijzen")
    wait_until(lambda: _ephemeral_texts(slack_api), what="the refusal")
    assert "contactpersoon van de gemeente" in _ephemeral_texts(slack_api)[-1]

    opened = len(slack_api.calls_to("views.open"))
    press(unassigned, escalation, CONTACT, "antwoord_aanwijzen", user_id=GERDA)
    wait_until(lambda: len(slack_api.calls_to("views.open")) > opened, what="the modal")
    modal = last_opened_view(slack_api, opened + 1)
    assert modal["callback_id"] == "antwoord_aanwijzen_keuze"
    options = modal["blocks"][1]["element"]["options"]
    assert [(o["value"], o["text"]["text"]) for o in options] == [
        ("ggd-groningen", "GGD Groningen"),
        ("wij-groningen", "WIJ Groningen"),
    ]
    submitted = unassigned.view_submission(
        modal, form_values(modal, {"instelling": "ggd-groningen"}), CONTACT, user_id=GERDA
    )
    assert unassigned.interact(submitted).body == ""
    coordination = _coordination(synced_engine)
    assert (coordination.status, coordination.institution_id, coordination.rule_name) == (
        "pending",
        "ggd-groningen",
        "gemeente",
    )
    assert _actions(synced_engine) == ["assigned"]
    [update] = wait_until(lambda: _updates(slack_api, escalation.response["ts"]), what="update")
    text = _texts(update.args["blocks"])
    assert "namens de gemeente een procescoördinator aangewezen: GGD Groningen" in text
    assert all(b.get("type") != "actions" for b in update.args["blocks"])
    assert_no_identity(slack_api, identity_needles([BSN], [BIRTH], ["Fenna Testkind"]))


def test_regie_by_button_then_afgerond_needs_a_toelichting(
    unassigned: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    escalation = wait_for_buttons(slack_api, GERDA, "antwoord_regie")
    press(unassigned, escalation, CONTACT, "antwoord_regie", user_id=GERDA)
    wait_until(
        lambda: _coordination(synced_engine).status == CoordinationStatus.MUNICIPALITY,
        what="regie taken up",
    )
    [update] = wait_until(lambda: _updates(slack_api, escalation.response["ts"]), what="update")
    assert "namens de gemeente regie genomen" in _texts(update.args["blocks"])
    # The municipality's own copy asks whom it names or why it closes; no REGIE again.
    # (The escalation itself carries AFRONDEN too: the follow-up is the other message.)
    [follow_up] = wait_until(
        lambda: [
            call
            for call in posted(slack_api, GERDA, "antwoord_afronden")
            if call.response["ts"] != escalation.response["ts"]
        ],
        what="the municipality's own copy",
    )
    assert "antwoord_regie" not in str(follow_up.args["blocks"])

    opened = len(slack_api.calls_to("views.open"))
    press(unassigned, follow_up, CONTACT, "antwoord_afronden", user_id=GERDA)
    wait_until(lambda: len(slack_api.calls_to("views.open")) > opened, what="the modal")
    modal = last_opened_view(slack_api, opened + 1)
    assert modal["callback_id"] == "antwoord_afronden_toelichting"
    blank = unassigned.view_submission(
        modal, form_values(modal, {"toelichting": "  "}), CONTACT, user_id=GERDA
    )
    refusal = unassigned.interact(blank).json()
    assert refusal["response_action"] == "errors"
    assert refusal["errors"]["toelichting"].startswith("geef een toelichting bij het afronden")
    note = "hulp loopt via het wijkteam"
    done = unassigned.view_submission(
        modal, form_values(modal, {"toelichting": note}), CONTACT, user_id=GERDA
    )
    assert unassigned.interact(done).body == ""
    assert _coordination(synced_engine).status == CoordinationStatus.ENDED
    assert _actions(synced_engine) == ["regie", "closed"]
    [closed] = wait_until(lambda: _updates(slack_api, follow_up.response["ts"]), what="update")
    assert f"dit namens de gemeente afgerond (toelichting: {note})" in _texts(closed.args["blocks"])
    # The reporters in Slack were told, with the reason.
    told = wait_until(
        lambda: [
            c
            for c in slack_api.calls_to("chat.postMessage", succeeded=True)
            if c.args.get("channel") != GERDA and note in str(c.args.get("blocks"))
        ],
        what="the parties told",
    )
    assert told


def test_aanwijzen_on_an_answered_escalation_says_why_and_opens_no_form(
    unassigned: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    escalation = wait_for_buttons(slack_api, GERDA, "antwoord_regie")
    press(unassigned, escalation, CONTACT, "antwoord_regie", user_id=GERDA)
    wait_until(
        lambda: _coordination(synced_engine).status == CoordinationStatus.MUNICIPALITY,
        what="regie taken up",
    )
    opened = len(slack_api.calls_to("views.open"))
    told = len(_ephemeral_texts(slack_api))
    # The same message's AANWIJZEN (its token is used): the core refuses the choices.
    press(unassigned, escalation, CONTACT, "antwoord_aanwijzen", user_id=GERDA)
    [refusal] = wait_until(lambda: _ephemeral_texts(slack_api)[told:], what="the refusal")
    assert "op dit bericht is al geantwoord" in refusal
    assert len(slack_api.calls_to("views.open")) == opened
    assert _actions(synced_engine) == ["regie"]
