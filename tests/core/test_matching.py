"""Matching (DOMAIN step 2, Lifetime): two or more active signals of different professionals on
one youth make a match, signals on siblings make a family match (gezinsmatch), and a match
lives as long as two of its signals are active."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, col, select

from core.absence import declare_absence
from core.audit import verify_chain
from core.errors import Conflict
from core.identity import YouthIdentity
from core.models import (
    Match,
    MatchKind,
    MatchMember,
    MatchStatus,
    OutboxMessage,
    ReplyPurpose,
    ReplyToken,
    Signal,
)
from core.registration import RegisterYouth, register_youth
from core.signals import PlaceSignal, SignalOutcome, place_signal, withdraw_signal
from tests.core.conftest import BSN_A, BSN_B, BSN_C, BSN_PARENT, MONDAY, CoreDriver, youth

ANNA = "a.devries@ggd-groningen.example"  # GGD Groningen
PIETER = "p.bakker@ggd-groningen.example"  # GGD Groningen, Anna's colleague
SANNE = "s.jansen@wij-groningen.example"  # WIJ Groningen
EVA = "e.meijer@jeugdhulp-noord.example"  # Jeugdhulp Noord, Plusteam
JEROEN = "j.veenstra@scholengroep-noordkust.example"  # Scholengroep Noordkust

BSN_OTHER_PARENT = "200000007"
BSN_UNRELATED_PARENT = "212345679"

LATER = MONDAY + timedelta(hours=2)


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


def register(
    core: CoreDriver,
    institution: str,
    identity: YouthIdentity,
    *,
    parent_bsns: tuple[str, ...] = (),
    now: datetime = MONDAY,
) -> None:
    actor = core.institution(institution)
    request = RegisterYouth(identity, "Groningen", f"{institution}-1", parent_bsns=parent_bsns)
    core.run(lambda s: register_youth(request, session=s, config=core.config, actor=actor, now=now))


def withdraw(core: CoreDriver, email: str, number: str, reason: str, now: datetime) -> None:
    actor = core.professional(email)
    core.run(
        lambda s: withdraw_signal(
            number, reason, session=s, config=core.config, actor=actor, now=now
        )
    )


def matches(core: CoreDriver, kind: str | None = None) -> list[Match]:
    with Session(core.engine) as session:
        query = select(Match).order_by(col(Match.id))
        if kind is not None:
            query = query.where(Match.kind == kind)
        return list(session.exec(query).all())


def member_signal_numbers(core: CoreDriver, match_id: int, *, current: bool = True) -> set[str]:
    with Session(core.engine) as session:
        query = (
            select(Signal)
            .join(MatchMember, col(MatchMember.signal_id) == Signal.id)
            .where(MatchMember.match_id == match_id)
        )
        if current:
            query = query.where(col(MatchMember.left_at).is_(None))
        return {signal.number for signal in session.exec(query).all()}


def recipients(rows: list[OutboxMessage]) -> list[str]:
    return sorted(row.recipient for row in rows)


def partner_cards(row: OutboxMessage) -> list[dict[str, Any]]:
    return [partner["professional"] for partner in row.context["partners"]]


def token_row(core: CoreDriver, token: str) -> ReplyToken:
    with Session(core.engine) as session:
        return session.exec(select(ReplyToken).where(ReplyToken.token == token)).one()


def assert_logbook_intact(core: CoreDriver) -> None:
    with Session(core.engine) as session:
        checked, broken = verify_chain(session)
    assert broken is None, broken
    assert checked > 0


# --- client match --------------------------------------------------------------------------------


def test_one_signal_makes_no_match(core: CoreDriver) -> None:
    outcome = place(core, ANNA)
    assert outcome.match_number is None
    assert matches(core) == []
    assert core.outbox("match") == []
    assert_logbook_intact(core)


def test_two_signals_of_different_professionals_on_one_youth_make_one_match(
    core: CoreDriver,
) -> None:
    first = place(core, ANNA)
    second = place(core, SANNE, code="urgent", now=LATER)
    [match] = matches(core)
    assert second.match_number == match.number
    assert match.kind == MatchKind.CLIENT and match.status == MatchStatus.ACTIVE
    assert member_signal_numbers(core, match.id or 0) == {first.number, second.number}
    assert_logbook_intact(core)


def test_each_matched_professional_gets_the_others_contact_card(core: CoreDriver) -> None:
    place(core, ANNA)
    place(core, SANNE, now=LATER)
    rows = core.outbox("match")
    assert recipients(rows) == [ANNA, SANNE]
    to_anna = next(r for r in rows if r.recipient == ANNA)
    to_sanne = next(r for r in rows if r.recipient == SANNE)
    assert partner_cards(to_anna) == [
        {
            "name": "Sanne Jansen",
            "email": SANNE,
            "phone": "050 367 1201",
            "institution": "WIJ Groningen",
            "stand_in": None,
        }
    ]
    assert partner_cards(to_sanne) == [
        {
            "name": "Anna de Vries",
            "email": ANNA,
            "phone": "050 123 4501",
            "institution": "GGD Groningen",
            "stand_in": None,
        }
    ]
    assert all(row.reference == rows[0].reference for row in rows)
    assert_logbook_intact(core)


def test_each_match_notification_carries_a_personal_reply_token(core: CoreDriver) -> None:
    place(core, ANNA)
    place(core, SANNE, now=LATER)
    [match] = matches(core)
    rows = core.outbox("match")
    assert len({row.reply_token for row in rows}) == 2
    for row in rows:
        assert row.reply_token
        token = token_row(core, row.reply_token)
        assert token.purpose == ReplyPurpose.MATCH
        assert token.subject_id == match.id
        assert token.professional_id == row.professional_id
        assert token.institution_id is None  # personal, not the institution's mailbox
    assert_logbook_intact(core)


def test_match_notifications_carry_no_identity_of_the_youth(core: CoreDriver) -> None:
    place(core, ANNA)
    place(core, SANNE, now=LATER)
    for row in core.outbox():
        text = repr(row.context)
        assert BSN_A not in text
        assert "Geheimnaam" not in text
        assert "2016-05-01" not in text and "01-05-2016" not in text
    assert_logbook_intact(core)


def test_two_professionals_of_one_institution_also_match(core: CoreDriver) -> None:
    place(core, ANNA)
    outcome = place(core, PIETER, now=LATER)
    assert outcome.match_number is not None
    assert recipients(core.outbox("match")) == [ANNA, PIETER]
    assert_logbook_intact(core)


def test_the_same_professional_cannot_signal_one_youth_twice_so_there_is_no_match(
    core: CoreDriver,
) -> None:
    place(core, ANNA)
    with pytest.raises(Conflict):
        place(core, ANNA, code="urgent", now=LATER)
    assert matches(core) == []
    assert core.outbox("match") == []
    assert_logbook_intact(core)


def test_signals_on_different_youths_without_family_link_make_no_match(core: CoreDriver) -> None:
    place(core, ANNA, youth(BSN_A))
    place(core, SANNE, youth(BSN_B), now=LATER)
    assert matches(core) == []
    assert_logbook_intact(core)


def test_a_third_professional_joins_the_existing_match(core: CoreDriver) -> None:
    first = place(core, ANNA)
    second = place(core, SANNE, now=LATER)
    third = place(core, EVA, now=LATER + timedelta(hours=1))
    [match] = matches(core)
    assert third.match_number == match.number
    assert member_signal_numbers(core, match.id or 0) == {
        first.number,
        second.number,
        third.number,
    }
    rows = core.outbox("match")
    # First round: Anna and Sanne. Second round: both hear of Eva, Eva hears of both.
    assert recipients(rows) == [ANNA, ANNA, EVA, SANNE, SANNE]
    to_eva = next(r for r in rows if r.recipient == EVA)
    assert sorted(card["email"] for card in partner_cards(to_eva)) == [ANNA, SANNE]
    newest_to_anna = [r for r in rows if r.recipient == ANNA][-1]
    assert sorted(card["email"] for card in partner_cards(newest_to_anna)) == [EVA, SANNE]
    assert_logbook_intact(core)


@pytest.mark.parametrize("reason", ["risico-weg", "onterecht"])
def test_ending_one_of_two_signals_ends_the_match(core: CoreDriver, reason: str) -> None:
    place(core, ANNA)
    second = place(core, SANNE, now=LATER)
    withdraw(core, SANNE, second.number, reason, LATER + timedelta(hours=1))
    [match] = matches(core)
    assert match.status == MatchStatus.ENDED
    assert match.ended_at is not None
    assert member_signal_numbers(core, match.id or 0) == set()
    assert_logbook_intact(core)


def test_a_match_lives_on_while_two_of_its_signals_are_active(core: CoreDriver) -> None:
    first = place(core, ANNA)
    second = place(core, SANNE, now=LATER)
    third = place(core, EVA, now=LATER)
    withdraw(core, SANNE, second.number, "risico-weg", LATER + timedelta(hours=1))
    [match] = matches(core)
    assert match.status == MatchStatus.ACTIVE
    assert member_signal_numbers(core, match.id or 0) == {first.number, third.number}
    assert second.number in member_signal_numbers(core, match.id or 0, current=False)
    assert_logbook_intact(core)


def test_a_new_signal_after_a_match_ended_makes_a_new_match(core: CoreDriver) -> None:
    place(core, ANNA)
    second = place(core, SANNE, now=LATER)
    withdraw(core, SANNE, second.number, "risico-weg", LATER + timedelta(hours=1))
    outcome = place(core, EVA, now=LATER + timedelta(hours=2))
    old, new = matches(core)
    assert old.status == MatchStatus.ENDED and new.status == MatchStatus.ACTIVE
    assert outcome.match_number == new.number
    assert_logbook_intact(core)


# --- family match (gezinsmatch) ------------------------------------------------------------------


def test_siblings_sharing_a_parent_signalled_by_different_professionals_make_one_family_match(
    core: CoreDriver,
) -> None:
    older = place(core, ANNA, youth(BSN_A), parent_bsns=(BSN_PARENT,))
    younger = place(
        core, SANNE, youth(BSN_B, date(2019, 2, 1)), parent_bsns=(BSN_PARENT,), now=LATER
    )
    assert younger.match_number is None  # no client match: one signal per child
    [family] = matches(core)
    assert family.kind == MatchKind.FAMILY and family.status == MatchStatus.ACTIVE
    assert family.youth_id is None
    assert member_signal_numbers(core, family.id or 0) == {older.number, younger.number}
    rows = core.outbox("gezinsmatch")
    assert recipients(rows) == [ANNA, SANNE]
    assert all(row.context["family"] for row in rows)
    assert core.outbox("match") == []
    assert_logbook_intact(core)


def test_the_parent_link_may_come_from_a_registration(core: CoreDriver) -> None:
    register(core, "ggd-groningen", youth(BSN_B), parent_bsns=(BSN_PARENT,))
    place(core, ANNA, youth(BSN_A), parent_bsns=(BSN_PARENT,))
    place(core, SANNE, youth(BSN_B), now=LATER)  # this signal names no parent
    assert [m.kind for m in matches(core)] == [MatchKind.FAMILY]
    assert_logbook_intact(core)


def test_siblings_sharing_both_parents_make_one_family_match_not_two(core: CoreDriver) -> None:
    parents = (BSN_PARENT, BSN_OTHER_PARENT)
    place(core, ANNA, youth(BSN_A), parent_bsns=parents)
    place(core, SANNE, youth(BSN_B, date(2019, 2, 1)), parent_bsns=parents, now=LATER)
    assert len(matches(core, MatchKind.FAMILY)) == 1
    assert recipients(core.outbox("gezinsmatch")) == [ANNA, SANNE]
    assert_logbook_intact(core)


def test_a_second_shared_parent_named_later_adds_no_second_family_match(core: CoreDriver) -> None:
    place(core, ANNA, youth(BSN_A), parent_bsns=(BSN_OTHER_PARENT,))
    place(core, SANNE, youth(BSN_B), parent_bsns=(BSN_OTHER_PARENT,), now=LATER)
    [family] = matches(core)
    # A registration later names both parents for both children.
    both = (BSN_PARENT, BSN_OTHER_PARENT)
    register(core, "ggd-groningen", youth(BSN_A), parent_bsns=both, now=LATER)
    register(core, "wij-groningen", youth(BSN_B), parent_bsns=both, now=LATER)
    assert [(m.id, m.status) for m in matches(core)] == [(family.id, MatchStatus.ACTIVE)]
    assert len(core.outbox("gezinsmatch")) == 2
    assert_logbook_intact(core)


@pytest.mark.parametrize("shared", [BSN_PARENT, BSN_OTHER_PARENT])
def test_a_half_sibling_joins_the_existing_family_match(core: CoreDriver, shared: str) -> None:
    parents = (BSN_PARENT, BSN_OTHER_PARENT)
    first = place(core, ANNA, youth(BSN_A), parent_bsns=parents)
    second = place(core, SANNE, youth(BSN_B), parent_bsns=parents, now=LATER)
    [family] = matches(core)
    # A half-sibling shares one of the two parents: the family grew, it is still one match.
    third = place(core, EVA, youth(BSN_C), parent_bsns=(shared,), now=LATER + timedelta(hours=1))
    [still] = matches(core)
    assert still.id == family.id and still.status == MatchStatus.ACTIVE
    assert member_signal_numbers(core, family.id or 0) == {
        first.number,
        second.number,
        third.number,
    }
    assert recipients(core.outbox("gezinsmatch")) == [ANNA, ANNA, EVA, SANNE, SANNE]
    assert_logbook_intact(core)


def test_half_siblings_each_make_a_family_match_with_the_shared_child(core: CoreDriver) -> None:
    # B shares a parent with A and another parent with C; A and C are not related.
    place(core, ANNA, youth(BSN_A), parent_bsns=(BSN_PARENT,))
    place(
        core,
        SANNE,
        youth(BSN_B, date(2019, 2, 1)),
        parent_bsns=(BSN_PARENT, BSN_OTHER_PARENT),
        now=LATER,
    )
    place(core, EVA, youth(BSN_C, date(2012, 9, 9)), parent_bsns=(BSN_OTHER_PARENT,), now=LATER)
    families = matches(core, MatchKind.FAMILY)
    assert len(families) == 2
    members = sorted(len(member_signal_numbers(core, m.id or 0)) for m in families)
    assert members == [2, 2]
    assert_logbook_intact(core)


def test_a_professional_who_signalled_two_siblings_is_told_of_the_family_match_once(
    core: CoreDriver,
) -> None:
    place(core, ANNA, youth(BSN_A), parent_bsns=(BSN_PARENT,))
    place(core, ANNA, youth(BSN_B), parent_bsns=(BSN_PARENT,), now=LATER)
    place(core, SANNE, youth(BSN_B), parent_bsns=(BSN_PARENT,), now=LATER + timedelta(hours=1))
    assert recipients(core.outbox("gezinsmatch")) == [ANNA, SANNE]
    assert_logbook_intact(core)


def test_signals_on_one_child_make_no_family_match(core: CoreDriver) -> None:
    place(core, ANNA, youth(BSN_A), parent_bsns=(BSN_PARENT,))
    place(core, SANNE, youth(BSN_A), parent_bsns=(BSN_PARENT,), now=LATER)
    assert [m.kind for m in matches(core)] == [MatchKind.CLIENT]
    assert core.outbox("gezinsmatch") == []
    assert_logbook_intact(core)


def test_siblings_signalled_by_the_same_professional_make_no_family_match(
    core: CoreDriver,
) -> None:
    place(core, ANNA, youth(BSN_A), parent_bsns=(BSN_PARENT,))
    place(core, ANNA, youth(BSN_B), parent_bsns=(BSN_PARENT,), now=LATER)
    assert matches(core) == []
    assert_logbook_intact(core)


def test_youths_with_different_parents_make_no_family_match(core: CoreDriver) -> None:
    place(core, ANNA, youth(BSN_A), parent_bsns=(BSN_PARENT,))
    place(core, SANNE, youth(BSN_B), parent_bsns=(BSN_UNRELATED_PARENT,), now=LATER)
    assert matches(core) == []
    assert_logbook_intact(core)


def test_a_family_match_ends_when_a_siblings_signal_ends(core: CoreDriver) -> None:
    place(core, ANNA, youth(BSN_A), parent_bsns=(BSN_PARENT,))
    younger = place(core, SANNE, youth(BSN_B), parent_bsns=(BSN_PARENT,), now=LATER)
    withdraw(core, SANNE, younger.number, "risico-weg", LATER + timedelta(hours=1))
    [family] = matches(core)
    assert family.status == MatchStatus.ENDED
    assert_logbook_intact(core)


# --- absence: the stand-in -----------------------------------------------------------------------


def declare_anna_absent_with_pieter(core: CoreDriver) -> None:
    actor = core.professional(ANNA)
    core.run(
        lambda s: declare_absence(
            ANNA,
            date(2026, 3, 1),
            date(2026, 3, 13),
            PIETER,
            session=s,
            config=core.config,
            actor=actor,
            now=MONDAY,
        )
    )


def test_an_absent_professionals_match_notification_goes_to_the_stand_in_too(
    core: CoreDriver,
) -> None:
    place(core, ANNA)
    declare_anna_absent_with_pieter(core)
    place(core, SANNE, now=LATER)
    rows = core.outbox("match")
    assert recipients(rows) == [ANNA, PIETER, SANNE]
    to_pieter = next(r for r in rows if r.recipient == PIETER)
    assert to_pieter.recipient_role == "stand-in"
    assert to_pieter.context["on_behalf_of"] == "Anna de Vries"
    assert to_pieter.reply_token
    assert token_row(core, to_pieter.reply_token).professional_id == to_pieter.professional_id
    assert_logbook_intact(core)


def test_partners_see_the_stand_in_on_the_absent_professionals_contact_card(
    core: CoreDriver,
) -> None:
    place(core, ANNA)
    declare_anna_absent_with_pieter(core)
    place(core, SANNE, now=LATER)
    to_sanne = next(r for r in core.outbox("match") if r.recipient == SANNE)
    [anna_card] = partner_cards(to_sanne)
    assert anna_card["email"] == ANNA
    assert anna_card["stand_in"] == {
        "name": "Pieter Bakker",
        "email": PIETER,
        "phone": "050 123 4502",
        "until": "2026-03-13",
    }
    assert_logbook_intact(core)
