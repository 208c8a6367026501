"""The municipality's regie after an escalation (issue 11.8, Jeugdwet 7.1.3.2): an escalated or
unassigned coordination and a stalled match reach the municipality's contact with REGIE,
AANWIJZEN <instelling> and AFGEROND <toelichting>; each action is a MunicipalityAction row and a
logboek entry, the parties are told, and only that contact may answer."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from markupsafe import escape
from sqlmodel import Session, col, select

from core.audit import Actor
from core.coordination import accept_coordination, decline_coordination, sweep_coordination
from core.errors import Conflict, InvalidInput, NotAllowed, NotFound
from core.follow_up import sweep_match_follow_up
from core.models import (
    Coordination,
    CoordinationStatus,
    Match,
    MunicipalityAction,
    OutboxMessage,
    Professional,
    ReplyPurpose,
    Team,
)
from core.regie import assign, close, take_up
from core.rendering import TemplateRenderer
from core.replies import ReplyAction, answer, regie_assign_options
from core.retention import purge_youth
from tests.core.conftest import BSN_A, MONDAY, CoreDriver, youth
from tests.core.test_coordination import (
    AGE_3,
    AGE_9,
    ANNA,
    GGD,
    GGD_MAILBOX,
    GRONINGEN_CONTACT,
    JEUGDHULP,
    LATER,
    SANNE,
    ST_WESTERKWARTIER,
    WIJ,
    WIJ_MAILBOX,
    act,
    assert_logbook_intact,
    audit_details,
    involve,
    place,
    the_coordination,
    token_row,
)

PIETER = "p.bakker@ggd-groningen.example"
WESTERKWARTIER_CONTACT = "verwijsindex@westerkwartier.example"


# --- helpers -------------------------------------------------------------------------------------


def unassigned(core: CoreDriver) -> Coordination:
    """GGD (age 3) and then WIJ declined: nobody coordinates, the municipality is asked."""
    involve(core, youth(BSN_A, AGE_3), "Groningen", GGD, WIJ)
    place(core, ANNA, youth(BSN_A, AGE_3))
    act(core, decline_coordination, core.institution(GGD), "geen capaciteit")
    act(core, decline_coordination, core.institution(WIJ), "niet onze wijk")
    coordination = the_coordination(core)
    assert coordination.status == CoordinationStatus.UNASSIGNED
    return coordination


def escalated(core: CoreDriver) -> Coordination:
    """WIJ (age 9) let its deadline pass: the coordination is escalated, still pending."""
    involve(core, youth(BSN_A, AGE_9), "Groningen", GGD, WIJ)
    place(core, ANNA, youth(BSN_A, AGE_9))
    coordination = the_coordination(core)
    assert coordination.due_at is not None
    sweep(core, coordination.due_at + timedelta(minutes=1))
    coordination = the_coordination(core)
    assert coordination.escalated_at is not None
    return coordination


def sweep(core: CoreDriver, now: datetime) -> dict[str, int]:
    """The deadline jobs of the scheduler that remind and escalate."""
    return core.run(
        lambda s: {
            **sweep_coordination(s, core.config, now),
            **sweep_match_follow_up(s, core.config, now),
        }
    )


def escalation_token(core: CoreDriver, kind: str = "coordinatie-escalatie") -> str:
    [row] = [r for r in core.outbox(kind) if r.channel == "email"]
    assert row.recipient == GRONINGEN_CONTACT and row.reply_token
    return row.reply_token


def reply(
    core: CoreDriver,
    token: str,
    keyword: str,
    argument: str = "",
    *,
    sender: str = GRONINGEN_CONTACT,
    now: datetime = LATER + timedelta(days=10),
) -> str:
    return core.run(
        lambda s: answer(
            token,
            ReplyAction(keyword, argument),
            sender=sender,
            channel="email",
            session=s,
            config=core.config,
            now=now,
        )
    )


def actions(core: CoreDriver) -> list[MunicipalityAction]:
    with Session(core.engine) as session:
        return list(
            session.exec(select(MunicipalityAction).order_by(col(MunicipalityAction.id))).all()
        )


def told(core: CoreDriver, action: str) -> list[OutboxMessage]:
    return [
        r
        for r in core.outbox("gemeente-regie")
        if r.channel == "email" and r.context["action"] == action
    ]


def municipality_actor(email: str = GRONINGEN_CONTACT) -> Actor:
    return Actor(kind="municipality", identifier=email, channel="cli")


def stalled_match(core: CoreDriver, *emails: str) -> Match:
    for email in emails:
        place(core, email, youth(BSN_A, AGE_9))
    with Session(core.engine) as session:
        [match] = session.exec(select(Match)).all()
    assert match.follow_up_due_at is not None
    sweep(core, match.follow_up_due_at + timedelta(minutes=1))
    return match


# --- the escalation asks -------------------------------------------------------------------------


def test_an_unassigned_coordination_asks_the_municipality_for_regie(core: CoreDriver) -> None:
    coordination = unassigned(core)
    token = escalation_token(core)
    row = token_row(core, token)
    assert (row.purpose, row.subject_id) == (ReplyPurpose.REGIE_COORDINATION, coordination.id)
    assert row.institution_id is None and row.professional_id is None
    [escalation] = core.outbox("coordinatie-escalatie")
    assert [o["id"] for o in escalation.context["assign_options"]] == [GGD, WIJ]
    email = TemplateRenderer().render_email("coordinatie-escalatie", dict(escalation.context))
    for keyword in ("REGIE", "TAKE OVER", "AANWIJZEN <instelling-id>", "AFGEROND <toelichting>"):
        assert keyword in email.text and escape(keyword) in email.html
    assert f"- {GGD}: GGD Groningen" in email.text


def test_regie_takes_an_escalated_coordination_up_and_stops_the_deadline(
    core: CoreDriver,
) -> None:
    coordination = escalated(core)
    wij_token = core.outbox("coordinatie-toegewezen")[0].reply_token
    confirmation = reply(core, escalation_token(core), "take-up")
    assert "de gemeente voert regie over C-" in confirmation
    now = the_coordination(core)
    assert now.status == CoordinationStatus.MUNICIPALITY
    assert now.institution_id is None and now.due_at is None and now.remind_at is None
    [action] = actions(core)
    assert (action.municipality, action.coordination_id, action.match_id, action.action) == (
        "Groningen",
        coordination.id,
        None,
        "regie",
    )
    assert sorted(r.recipient for r in told(core, "regie")) == sorted(
        [ANNA, GGD_MAILBOX, WIJ_MAILBOX, GRONINGEN_CONTACT]
    )
    [copy] = [r for r in told(core, "regie") if r.recipient_role == "municipality"]
    assert copy.reply_token and token_row(core, copy.reply_token).purpose == "regie-coordination"
    # Nobody waits for an answer: no reminder, no escalation, however long it stays.
    before = len(core.outbox())
    assert set(sweep(core, LATER + timedelta(days=60)).values()) == {0}
    assert len(core.outbox()) == before
    # WIJ's late AKKOORD meets the municipality's decision.
    with pytest.raises(Conflict, match="de gemeente voert regie"):
        core.run(
            lambda s: answer(
                wij_token or "",
                ReplyAction("accept"),
                sender=WIJ_MAILBOX,
                channel="email",
                session=s,
                config=core.config,
                now=LATER + timedelta(days=10),
            )
        )
    assert audit_details(core, "municipality-regie")[0]["waited_for"] == WIJ
    assert_logbook_intact(core)


def test_regie_twice_is_refused(core: CoreDriver) -> None:
    unassigned(core)
    reply(core, escalation_token(core), "take-up")
    [copy] = [r for r in told(core, "regie") if r.recipient_role == "municipality"]
    with pytest.raises(Conflict, match="voert al regie"):
        reply(core, copy.reply_token or "", "take-up")
    assert len(actions(core)) == 1


# --- AANWIJZEN ----------------------------------------------------------------------------------


def test_the_named_institution_must_accept_as_usual(core: CoreDriver) -> None:
    coordination = unassigned(core)
    at = LATER + timedelta(days=1)
    confirmation = reply(core, escalation_token(core), "assign", WIJ, now=at)
    assert "WIJ Groningen is aangewezen" in confirmation
    now = the_coordination(core)
    assert (now.status, now.institution_id, now.rule_name) == ("pending", WIJ, "gemeente")
    assert now.rule_reason == "aangewezen door de gemeente Groningen"
    assert now.due_at == core.config.calendar.deadline_after(at, now.response_working_days)
    assert now.round == coordination.round + 1
    assignment = core.outbox("coordinatie-toegewezen", recipient=WIJ_MAILBOX)[-1]
    assert assignment.reply_token and assignment.context["rule_name"] == "gemeente"
    [action] = actions(core)
    assert (action.action, action.institution_id, action.coordination_id) == (
        "assigned",
        WIJ,
        coordination.id,
    )
    # The parties hear it; WIJ hears it from its assignment mail, not twice.
    assert sorted(r.recipient for r in told(core, "assigned")) == [ANNA, GGD_MAILBOX]
    accepted = core.run(
        lambda s: accept_coordination(
            coordination.id or 0,
            session=s,
            config=core.config,
            actor=core.institution(WIJ),
            now=at + timedelta(hours=2),
        )
    )
    assert accepted.status == CoordinationStatus.ACCEPTED
    assert_logbook_intact(core)


def test_a_decline_after_the_municipalitys_choice_comes_back_to_it(core: CoreDriver) -> None:
    unassigned(core)
    reply(core, escalation_token(core), "assign", WIJ)
    act(
        core,
        decline_coordination,
        core.institution(WIJ),
        "nog steeds vol",
        now=LATER + timedelta(days=11),
    )
    now = the_coordination(core)
    assert now.status == CoordinationStatus.UNASSIGNED
    assert len(core.outbox("coordinatie-escalatie", channel="email")) == 2  # a new question
    assert_logbook_intact(core)


@pytest.mark.parametrize(
    ("institution", "problem"),
    [
        ("onbekend-team", "onbekende instelling 'onbekend-team'"),
        (JEUGDHULP, "mag volgens het convenant niet coördineren"),
        (ST_WESTERKWARTIER, "niet betrokken en werkt niet in de gemeente"),
    ],
)
def test_aanwijzen_names_an_institution_that_can_coordinate_here(
    core: CoreDriver, institution: str, problem: str
) -> None:
    unassigned(core)
    token = escalation_token(core)
    with pytest.raises(InvalidInput, match=problem) as refused:
        reply(core, token, "assign", institution)
    assert refused.value.field == "instelling"
    assert actions(core) == []
    assert token_row(core, token).used_at is None  # the answer can be given again, corrected
    assert the_coordination(core).status == CoordinationStatus.UNASSIGNED


def test_after_regie_the_municipality_names_the_coordinator(core: CoreDriver) -> None:
    unassigned(core)
    reply(core, escalation_token(core), "take-up")
    [copy] = [r for r in told(core, "regie") if r.recipient_role == "municipality"]
    assert [o["id"] for o in copy.context["assign_options"]] == [GGD, WIJ]
    reply(core, copy.reply_token or "", "assign", GGD)
    assert (the_coordination(core).status, the_coordination(core).institution_id) == (
        "pending",
        GGD,
    )
    assert [a.action for a in actions(core)] == ["regie", "assigned"]


# --- AFGEROND -----------------------------------------------------------------------------------


def test_afgerond_needs_a_toelichting(core: CoreDriver) -> None:
    unassigned(core)
    token = escalation_token(core)
    with pytest.raises(InvalidInput, match="geef een toelichting") as refused:
        reply(core, token, "close", "   ")
    assert refused.value.field == "toelichting"
    assert actions(core) == [] and token_row(core, token).used_at is None


def test_afgerond_ends_the_coordination_with_the_reason_for_the_parties(
    core: CoreDriver,
) -> None:
    coordination = unassigned(core)
    note = "Hulp loopt via het wijkteam;\nafgestemd met beide instellingen."
    reply(core, escalation_token(core), "close", note)
    now = the_coordination(core)
    assert now.status == CoordinationStatus.ENDED and now.ended_at is not None
    [action] = actions(core)
    assert (action.action, action.note, action.coordination_id) == ("closed", note, coordination.id)
    rows = told(core, "closed")
    assert sorted(r.recipient for r in rows) == sorted([ANNA, GGD_MAILBOX, WIJ_MAILBOX])
    text = TemplateRenderer().render_email("gemeente-regie", dict(rows[0].context)).text
    assert "afgestemd met beide instellingen." in text
    assert audit_details(core, "municipality-closed")[0]["subject"] == coordination.number
    assert "note" not in audit_details(core, "municipality-closed")[0]
    assert_logbook_intact(core)


# --- who may answer -----------------------------------------------------------------------------


@pytest.mark.parametrize("sender", [ANNA, WIJ_MAILBOX, WESTERKWARTIER_CONTACT])
def test_only_the_youths_municipality_contact_may_answer(core: CoreDriver, sender: str) -> None:
    unassigned(core)
    token = escalation_token(core)
    with pytest.raises(NotAllowed, match="contactpersoon van de gemeente"):
        reply(core, token, "take-up", sender=sender)
    assert actions(core) == [] and token_row(core, token).used_at is None


def test_the_commands_themselves_check_the_municipality(core: CoreDriver) -> None:
    coordination = unassigned(core)
    for actor in (core.professional(ANNA), municipality_actor(WESTERKWARTIER_CONTACT)):
        with pytest.raises(NotAllowed, match="alleen de contactpersoon van de gemeente Groningen"):
            core.run(
                lambda s, a=actor: take_up(
                    coordination.number, session=s, config=core.config, actor=a, now=LATER
                )
            )
    assert actions(core) == []


def test_the_assign_choices_are_for_the_contact_only(core: CoreDriver) -> None:
    unassigned(core)
    token = escalation_token(core)
    choices = core.run(
        lambda s: regie_assign_options(token, sender=GRONINGEN_CONTACT, session=s, now=LATER)
    )
    assert choices == [(GGD, "GGD Groningen"), (WIJ, "WIJ Groningen")]
    with pytest.raises(NotAllowed):
        core.run(lambda s: regie_assign_options(token, sender=ANNA, session=s, now=LATER))


def test_an_accepted_coordination_needs_no_decision(core: CoreDriver) -> None:
    escalated(core)
    act(core, accept_coordination, core.institution(WIJ), now=LATER + timedelta(days=9))
    with pytest.raises(Conflict, match="inmiddels geaccepteerd door WIJ Groningen"):
        reply(core, escalation_token(core), "take-up")
    assert actions(core) == []


# --- a stalled match ----------------------------------------------------------------------------


def test_a_stalled_match_asks_the_municipality_and_regie_is_recorded(core: CoreDriver) -> None:
    match = stalled_match(core, ANNA, PIETER)  # one institution: a match without coordination
    [escalation] = core.outbox("match-escalatie")
    assert escalation.context["assign_options"] == []
    assert token_row(core, escalation.reply_token or "").purpose == "regie-match"
    reply(core, escalation.reply_token or "", "take-up")
    [action] = actions(core)
    assert (action.match_id, action.coordination_id, action.action) == (match.id, None, "regie")
    assert sorted(r.recipient for r in told(core, "regie")) == sorted(
        [ANNA, PIETER, GRONINGEN_CONTACT]
    )
    [copy] = [r for r in told(core, "regie") if r.recipient_role == "municipality"]
    with pytest.raises(Conflict, match="geen procescoördinatie"):
        reply(core, copy.reply_token or "", "assign", GGD)
    reply(core, copy.reply_token or "", "close", "contact is er; bevestiging vergeten")
    assert [a.action for a in actions(core)] == ["regie", "closed"]
    assert sorted(r.recipient for r in told(core, "closed")) == [ANNA, PIETER]
    with pytest.raises(Conflict, match="al afgerond"):
        core.run(
            lambda s: take_up(
                match.number, session=s, config=core.config, actor=municipality_actor(), now=LATER
            )
        )
    assert_logbook_intact(core)


def test_aanwijzen_on_a_match_names_the_coordinator_of_its_youth(core: CoreDriver) -> None:
    match = stalled_match(core, ANNA, SANNE)  # GGD and WIJ: WIJ is asked to coordinate
    coordination = the_coordination(core)
    assert coordination.institution_id == WIJ
    token = escalation_token(core, "match-escalatie")
    reply(core, token, "assign", GGD)
    now = the_coordination(core)
    assert (now.institution_id, now.status, now.rule_name) == (GGD, "pending", "gemeente")
    [action] = actions(core)
    assert (action.match_id, action.coordination_id, action.institution_id) == (
        match.id,
        None,
        GGD,
    )
    assert audit_details(core, "municipality-assigned")[0]["coordination"] == coordination.number


# --- Slack reach --------------------------------------------------------------------------------


def test_a_contact_linked_in_slack_gets_the_escalation_there_too(core: CoreDriver) -> None:
    with Session(core.engine) as session:
        team = session.exec(select(Team).where(Team.institution_id == GGD)).first()
        assert team is not None
        session.add(
            Professional(
                email=GRONINGEN_CONTACT,
                name="Gerda Huizinga",
                institution_id=GGD,
                team_id=team.id or 0,
                roles=["professional"],
                slack_user_id="UGEMEENTE1",
            )
        )
        session.commit()
    unassigned(core)
    slack = core.outbox("coordinatie-escalatie", channel="slack")
    assert [(r.recipient, r.recipient_role) for r in slack] == [("UGEMEENTE1", "municipality")]
    assert slack[0].reply_token and slack[0].professional_id is None


def test_a_purged_youth_takes_the_municipalitys_actions_along(core: CoreDriver) -> None:
    coordination = unassigned(core)
    reply(core, escalation_token(core), "close", "dubbel gemeld")
    assert len(actions(core)) == 1
    core.run(
        lambda s: purge_youth(
            s, core.config, coordination.youth_id, reason="death", now=MONDAY + timedelta(days=30)
        )
    )
    assert actions(core) == []


def test_assign_and_close_by_reference(core: CoreDriver) -> None:
    """The commands serve any caller (CLI, tests) by reference, with the same rules."""
    coordination = unassigned(core)
    core.run(
        lambda s: assign(
            coordination.number, WIJ, session=s, config=core.config, actor=municipality_actor()
        )
    )
    with pytest.raises(NotFound):
        core.run(
            lambda s: close("C-999", "x", session=s, config=core.config, actor=municipality_actor())
        )
