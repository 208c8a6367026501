"""Match follow-up (DOMAIN step 4, Jeugdwet 7.1.3.2): matched professionals confirm that they made
contact (CONTACT GELEGD); unconfirmed members are reminded halfway, and a match that stalls past
its deadline goes to the municipality contact."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, col, select

from core.absence import declare_absence
from core.audit import Actor, verify_chain
from core.errors import Conflict, NotAllowed, NotFound
from core.follow_up import confirm_match_contact, sweep_match_follow_up
from core.identity import YouthIdentity
from core.models import AuditEvent, Match, MatchMember, Professional, Signal
from core.signals import PlaceSignal, SignalOutcome, place_signal, withdraw_signal
from tests.core.conftest import BSN_A, BSN_B, BSN_PARENT, MONDAY, CoreDriver, youth

AMSTERDAM = ZoneInfo("Europe/Amsterdam")

ANNA = "a.devries@ggd-groningen.example"
PIETER = "p.bakker@ggd-groningen.example"
SANNE = "s.jansen@wij-groningen.example"
EVA = "e.meijer@jeugdhulp-noord.example"
LOTTE = "l.hoekstra@sociaalteam-westerkwartier.example"
GRONINGEN_CONTACT = "regie.verwijsindex@gemeente-groningen.example"
WESTERKWARTIER_CONTACT = "verwijsindex@westerkwartier.example"

LATER = MONDAY + timedelta(hours=1)


def end_of_local_day(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=AMSTERDAM).astimezone(UTC)


# --- helpers -------------------------------------------------------------------------------------


def place(
    core: CoreDriver,
    email: str,
    identity: YouthIdentity | None = None,
    *,
    code: str = "laag",
    municipality: str = "Groningen",
    parent_bsns: tuple[str, ...] = (),
    now: datetime = MONDAY,
) -> SignalOutcome:
    actor = core.professional(email)
    request = PlaceSignal(identity or youth(), municipality, code, "ja", parent_bsns=parent_bsns)
    return core.run(
        lambda s: place_signal(request, session=s, config=core.config, actor=actor, now=now)
    )


def the_match(core: CoreDriver) -> Match:
    with Session(core.engine) as session:
        [match] = session.exec(select(Match)).all()
        return match


def matched(core: CoreDriver, *emails: str, code: str = "laag") -> Match:
    """A client match of these professionals' signals, placed on MONDAY."""
    for email in emails:
        place(core, email, code=code)
    return the_match(core)


def confirm(core: CoreDriver, actor: Actor, match_id: int, now: datetime = LATER) -> Match:
    return core.run(
        lambda s: confirm_match_contact(
            match_id, session=s, config=core.config, actor=actor, now=now
        )
    )


def confirmed_by(core: CoreDriver, match_id: int) -> dict[str, bool]:
    """Each member signal's professional e-mail → whether contact is confirmed."""
    with Session(core.engine) as session:
        rows = session.exec(
            select(MatchMember, Professional)
            .join(Signal, col(Signal.id) == MatchMember.signal_id)
            .join(Professional, col(Professional.id) == Signal.professional_id)
            .where(MatchMember.match_id == match_id, col(MatchMember.left_at).is_(None))
        ).all()
        return {p.email: m.contact_confirmed_at is not None for m, p in rows}


def sweep(core: CoreDriver, now: datetime) -> dict[str, int]:
    return core.run(lambda s: sweep_match_follow_up(s, core.config, now))


def recipients(kind: str, core: CoreDriver) -> list[str]:
    return sorted(row.recipient for row in core.outbox(kind))


def assert_logbook_intact(core: CoreDriver) -> None:
    with Session(core.engine) as session:
        checked, broken = verify_chain(session)
    assert broken is None, broken
    assert checked > 0


# --- the deadline --------------------------------------------------------------------------------


def test_a_new_match_must_be_followed_up_within_the_codes_working_days(core: CoreDriver) -> None:
    match = matched(core, ANNA, SANNE)
    assert match.follow_up_due_at == end_of_local_day(date(2026, 3, 9))
    assert match.follow_up_remind_at is not None
    assert MONDAY < match.follow_up_remind_at < match.follow_up_due_at
    assert_logbook_intact(core)


def test_the_most_urgent_code_in_the_match_sets_the_follow_up_deadline(core: CoreDriver) -> None:
    place(core, ANNA, code="laag")
    place(core, SANNE, code="urgent")
    assert the_match(core).follow_up_due_at == end_of_local_day(date(2026, 3, 3))
    assert_logbook_intact(core)


# --- CONTACT GELEGD ------------------------------------------------------------------------------


def test_a_member_confirms_contact_for_their_own_signal(core: CoreDriver) -> None:
    match = matched(core, ANNA, SANNE)
    confirm(core, core.professional(ANNA), match.id or 0)
    assert confirmed_by(core, match.id or 0) == {ANNA: True, SANNE: False}
    with Session(core.engine) as session:
        actions = session.exec(select(AuditEvent.action)).all()
    assert "match-contact-confirmed" in actions
    assert_logbook_intact(core)


def test_confirming_twice_changes_nothing(core: CoreDriver) -> None:
    match = matched(core, ANNA, SANNE)
    confirm(core, core.professional(ANNA), match.id or 0)
    confirm(core, core.professional(ANNA), match.id or 0, now=LATER + timedelta(hours=1))
    assert confirmed_by(core, match.id or 0) == {ANNA: True, SANNE: False}
    assert_logbook_intact(core)


def test_a_stand_in_confirms_for_the_absent_member(core: CoreDriver) -> None:
    match = matched(core, ANNA, SANNE)
    anna = core.professional(ANNA)
    core.run(
        lambda s: declare_absence(
            ANNA,
            date(2026, 3, 2),
            date(2026, 3, 6),
            PIETER,
            session=s,
            config=core.config,
            actor=anna,
            now=MONDAY,
        )
    )
    confirm(core, core.professional(PIETER), match.id or 0)
    assert confirmed_by(core, match.id or 0) == {ANNA: True, SANNE: False}
    assert_logbook_intact(core)


def test_a_professional_outside_the_match_may_not_confirm(core: CoreDriver) -> None:
    match = matched(core, ANNA, SANNE)
    with pytest.raises(NotAllowed):
        confirm(core, core.professional(EVA), match.id or 0)
    with pytest.raises(NotAllowed):
        confirm(core, core.professional(PIETER), match.id or 0)  # Anna's colleague, no stand-in
    with pytest.raises(NotAllowed):
        confirm(core, core.institution("ggd-groningen"), match.id or 0)
    assert confirmed_by(core, match.id or 0) == {ANNA: False, SANNE: False}
    assert_logbook_intact(core)


def test_a_member_whose_signal_left_the_match_may_not_confirm(core: CoreDriver) -> None:
    place(core, ANNA)
    place(core, SANNE)
    eva = place(core, EVA)
    match = the_match(core)
    core.run(
        lambda s: withdraw_signal(
            eva.number,
            "risico-weg",
            session=s,
            config=core.config,
            actor=core.professional(EVA),
            now=LATER,
        )
    )
    with pytest.raises(NotAllowed):
        confirm(core, core.professional(EVA), match.id or 0)
    assert_logbook_intact(core)


def test_confirming_an_unknown_match_is_not_found(core: CoreDriver) -> None:
    matched(core, ANNA, SANNE)
    with pytest.raises(NotFound):
        confirm(core, core.professional(ANNA), 999)
    assert_logbook_intact(core)


def test_confirming_an_ended_match_is_a_conflict(core: CoreDriver) -> None:
    place(core, ANNA)
    second = place(core, SANNE)
    match = the_match(core)
    core.run(
        lambda s: withdraw_signal(
            second.number,
            "risico-weg",
            session=s,
            config=core.config,
            actor=core.professional(SANNE),
            now=LATER,
        )
    )
    with pytest.raises(Conflict):
        confirm(core, core.professional(ANNA), match.id or 0)
    assert_logbook_intact(core)


# --- reminders and escalation --------------------------------------------------------------------


def test_nothing_happens_before_halfway(core: CoreDriver) -> None:
    match = matched(core, ANNA, SANNE)
    assert match.follow_up_remind_at is not None
    assert sweep(core, match.follow_up_remind_at - timedelta(minutes=1)) == {
        "match_reminders": 0,
        "match_escalations": 0,
    }
    assert core.outbox("match-opvolging") == []
    assert_logbook_intact(core)


def test_halfway_only_unconfirmed_members_are_reminded_once(core: CoreDriver) -> None:
    match = matched(core, ANNA, SANNE, EVA)
    confirm(core, core.professional(ANNA), match.id or 0)
    assert match.follow_up_remind_at is not None
    assert sweep(core, match.follow_up_remind_at)["match_reminders"] == 1
    assert sweep(core, match.follow_up_remind_at + timedelta(hours=1))["match_reminders"] == 0
    assert recipients("match-opvolging", core) == [EVA, SANNE]
    assert all(row.reply_token for row in core.outbox("match-opvolging"))
    assert_logbook_intact(core)


def test_the_reminder_goes_to_the_stand_in_too(core: CoreDriver) -> None:
    match = matched(core, ANNA, SANNE)
    confirm(core, core.professional(SANNE), match.id or 0)
    anna = core.professional(ANNA)
    core.run(
        lambda s: declare_absence(
            ANNA,
            date(2026, 3, 2),
            date(2026, 3, 13),
            PIETER,
            session=s,
            config=core.config,
            actor=anna,
            now=MONDAY,
        )
    )
    assert match.follow_up_remind_at is not None
    sweep(core, match.follow_up_remind_at)
    assert recipients("match-opvolging", core) == [ANNA, PIETER]
    assert_logbook_intact(core)


def test_at_the_deadline_an_unconfirmed_match_is_escalated_to_the_municipality_once(
    core: CoreDriver,
) -> None:
    match = matched(core, ANNA, SANNE)
    confirm(core, core.professional(ANNA), match.id or 0)
    assert match.follow_up_due_at is not None
    assert sweep(core, match.follow_up_due_at) == {"match_reminders": 0, "match_escalations": 1}
    assert sweep(core, match.follow_up_due_at + timedelta(days=1)) == {
        "match_reminders": 0,
        "match_escalations": 0,
    }
    [row] = core.outbox("match-escalatie")
    assert row.recipient == GRONINGEN_CONTACT
    assert row.recipient_role == "municipality"
    assert row.reference == match.number
    assert {m["professional"]["email"]: m["contact_confirmed"] for m in row.context["members"]} == {
        ANNA: True,
        SANNE: False,
    }
    assert_logbook_intact(core)


def test_a_family_match_escalates_to_the_childrens_municipality(core: CoreDriver) -> None:
    place(core, LOTTE, youth(BSN_A), municipality="Westerkwartier", parent_bsns=(BSN_PARENT,))
    place(core, ANNA, youth(BSN_B), municipality="Westerkwartier", parent_bsns=(BSN_PARENT,))
    match = the_match(core)
    assert match.follow_up_due_at is not None
    sweep(core, match.follow_up_due_at)
    assert recipients("match-escalatie", core) == [WESTERKWARTIER_CONTACT]
    assert_logbook_intact(core)


def test_a_match_where_everyone_confirmed_is_neither_reminded_nor_escalated(
    core: CoreDriver,
) -> None:
    match = matched(core, ANNA, SANNE)
    confirm(core, core.professional(ANNA), match.id or 0)
    confirm(core, core.professional(SANNE), match.id or 0)
    assert match.follow_up_remind_at is not None and match.follow_up_due_at is not None
    assert sweep(core, match.follow_up_remind_at) == {"match_reminders": 0, "match_escalations": 0}
    assert sweep(core, match.follow_up_due_at) == {"match_reminders": 0, "match_escalations": 0}
    assert core.outbox("match-opvolging") == []
    assert core.outbox("match-escalatie") == []
    assert_logbook_intact(core)


def test_an_ended_match_is_not_followed_up(core: CoreDriver) -> None:
    place(core, ANNA)
    second = place(core, SANNE)
    match = the_match(core)
    core.run(
        lambda s: withdraw_signal(
            second.number,
            "risico-weg",
            session=s,
            config=core.config,
            actor=core.professional(SANNE),
            now=LATER,
        )
    )
    assert match.follow_up_due_at is not None
    assert sweep(core, match.follow_up_due_at) == {"match_reminders": 0, "match_escalations": 0}
    assert_logbook_intact(core)


def test_a_newcomer_restarts_the_follow_up_and_must_confirm_too(core: CoreDriver) -> None:
    match = matched(core, ANNA, SANNE)
    confirm(core, core.professional(ANNA), match.id or 0)
    confirm(core, core.professional(SANNE), match.id or 0)
    wednesday = MONDAY + timedelta(days=2)
    place(core, EVA, now=wednesday)
    joined = the_match(core)
    assert joined.follow_up_due_at == end_of_local_day(date(2026, 3, 11))
    assert joined.follow_up_remind_at is not None
    sweep(core, joined.follow_up_remind_at)
    assert recipients("match-opvolging", core) == [EVA]
    assert_logbook_intact(core)
