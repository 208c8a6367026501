"""Answers to notifications (CONTRACT §4 Replies) through core.replies.answer: the reply token
of an outbox row names the subject and the party it was issued to; only that party's senders
may use it, once, before it expires, with a keyword that fits its purpose."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, col, select

from core.audit import verify_chain
from core.clock import as_utc
from core.coordination import accept_coordination, sweep_coordination
from core.db import transaction
from core.errors import Conflict, InvalidInput, NotAllowed, NotFound
from core.involvement import takeover_candidates
from core.models import (
    Coordination,
    CoordinationStatus,
    Institution,
    MatchMember,
    OutboxMessage,
    ReplyToken,
    Signal,
)
from core.registration import RegisterYouth, register_youth
from core.replies import ReplyAction, answer, hand_over_options
from core.reply_tokens import TOKEN_LIFETIME, issue_token
from core.retention import warn_expiring_signals
from core.signals import PlaceSignal, SignalOutcome, place_signal
from tests.core.conftest import BSN_A, MONDAY, CoreDriver, youth

ANNA = "a.devries@ggd-groningen.example"
PIETER = "p.bakker@ggd-groningen.example"
SANNE = "s.jansen@wij-groningen.example"
MOHAMED = "m.elamrani@wij-groningen.example"
WIJ_MAILBOX = "verwijsindex@wij-groningen.example"
GGD_MAILBOX = "verwijsindex@ggd-groningen.example"

LATER = MONDAY + timedelta(hours=1)


# --- helpers -------------------------------------------------------------------------------------


def place(
    core: CoreDriver, email: str, *, code: str = "laag", now: datetime = MONDAY
) -> SignalOutcome:
    actor = core.professional(email)
    request = PlaceSignal(youth(BSN_A), "Groningen", code, "ja")
    return core.run(
        lambda s: place_signal(request, session=s, config=core.config, actor=actor, now=now)
    )


def register(core: CoreDriver, institution: str) -> None:
    actor = core.institution(institution)
    request = RegisterYouth(youth(BSN_A), "Groningen", f"{institution}-1")
    core.run(
        lambda s: register_youth(request, session=s, config=core.config, actor=actor, now=MONDAY)
    )


def assigned_to_wij(core: CoreDriver) -> str:
    """Age 9 in Groningen with GGD and WIJ involved: WIJ is asked to coordinate. Returns the
    reply token of the assignment."""
    for institution in ("ggd-groningen", "wij-groningen"):
        register(core, institution)
    place(core, ANNA)
    [row] = core.outbox("coordinatie-toegewezen")
    assert row.recipient == WIJ_MAILBOX and row.reply_token
    return row.reply_token


def reply(
    core: CoreDriver,
    token: str,
    keyword: str,
    argument: str = "",
    *,
    sender: str,
    channel: str = "smtp",
    now: datetime = LATER,
) -> str:
    return core.run(
        lambda s: answer(
            token,
            ReplyAction(keyword, argument),
            sender=sender,
            channel=channel,
            session=s,
            config=core.config,
            now=now,
        )
    )


def the_coordination(core: CoreDriver) -> Coordination:
    with Session(core.engine) as session:
        return session.exec(select(Coordination)).one()


def token_row(core: CoreDriver, token: str) -> ReplyToken:
    with Session(core.engine) as session:
        return session.exec(select(ReplyToken).where(ReplyToken.token == token)).one()


def match_token(core: CoreDriver, recipient: str) -> str:
    row = next(r for r in core.outbox("match") if r.recipient == recipient)
    assert row.reply_token
    return row.reply_token


def assert_logbook_intact(core: CoreDriver) -> None:
    with Session(core.engine) as session:
        checked, broken = verify_chain(session)
    assert broken is None, broken
    assert checked > 0


# --- coordination: accept, decline, hand over ----------------------------------------------------


def test_accept_by_reply_from_a_professional_of_the_institution(core: CoreDriver) -> None:
    token = assigned_to_wij(core)
    confirmation = reply(core, token, "accept", sender=SANNE)
    coordination = the_coordination(core)
    assert coordination.number in confirmation
    assert coordination.status == CoordinationStatus.ACCEPTED
    assert coordination.accepted_by == SANNE  # the person, not only the institution
    used = token_row(core, token)
    assert used.used_at == LATER and used.used_action == "accept"
    assert_logbook_intact(core)


def test_accept_by_reply_from_the_institutions_mailbox(core: CoreDriver) -> None:
    token = assigned_to_wij(core)
    reply(core, token, "accept", sender=WIJ_MAILBOX)
    coordination = the_coordination(core)
    assert coordination.status == CoordinationStatus.ACCEPTED
    assert coordination.accepted_by == "wij-groningen"
    assert_logbook_intact(core)


def test_the_sender_address_is_compared_without_regard_to_case(core: CoreDriver) -> None:
    token = assigned_to_wij(core)
    reply(core, token, "accept", sender="  S.Jansen@WIJ-Groningen.example ")
    assert the_coordination(core).accepted_by == SANNE
    assert_logbook_intact(core)


def test_decline_by_reply_passes_coordination_on(core: CoreDriver) -> None:
    token = assigned_to_wij(core)
    reply(core, token, "decline", "caseload vol", sender=MOHAMED)
    coordination = the_coordination(core)
    assert coordination.declined[0]["institution_id"] == "wij-groningen"
    assert coordination.declined[0]["reason"] == "caseload vol"
    assert coordination.institution_id != "wij-groningen"
    assert token_row(core, token).used_action == "decline"
    assert_logbook_intact(core)


def test_decline_by_reply_without_a_reason_is_refused_and_the_token_stays_usable(
    core: CoreDriver,
) -> None:
    token = assigned_to_wij(core)
    with pytest.raises(InvalidInput):
        reply(core, token, "decline", "", sender=SANNE)
    assert token_row(core, token).used_at is None
    reply(core, token, "accept", sender=SANNE)
    assert the_coordination(core).status == CoordinationStatus.ACCEPTED
    assert_logbook_intact(core)


def test_hand_over_by_reply_to_another_involved_institution(core: CoreDriver) -> None:
    token = assigned_to_wij(core)
    reply(core, token, "hand-over", "GGD-Groningen", sender=SANNE)
    coordination = the_coordination(core)
    assert coordination.institution_id == "ggd-groningen"
    [row] = core.outbox("coordinatie-overgedragen")
    assert row.recipient == GGD_MAILBOX and row.reply_token
    # The new institution answers with its own token.
    reply(core, row.reply_token, "accept", sender=ANNA, now=LATER + timedelta(hours=1))
    assert the_coordination(core).status == CoordinationStatus.ACCEPTED
    assert_logbook_intact(core)


def test_the_old_institutions_token_cannot_accept_after_a_hand_over(core: CoreDriver) -> None:
    token = assigned_to_wij(core)
    reply(core, token, "hand-over", "ggd-groningen", sender=SANNE)
    coordination = the_coordination(core)
    # WIJ's later reminder token (or a Slack button) is of no use any more.
    with Session(core.engine) as session:
        stale = issue_token(
            session,
            purpose="coordination",
            subject_id=coordination.id or 0,
            institution_id="wij-groningen",
            now=LATER,
        )
        session.commit()
    with pytest.raises(NotAllowed):
        reply(core, stale, "accept", sender=SANNE)
    assert the_coordination(core).status == CoordinationStatus.PENDING
    assert_logbook_intact(core)


# --- who may answer ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sender",
    [
        ANNA,  # a covenant professional, but of another institution
        "s.jansen@wij-groningen.example.attacker.example",
        "s.jansen@notwij-groningen.example",
        "wij-groningen.example@attacker.example",
        "",
    ],
    ids=["other-institution", "suffix-domain", "lookalike-domain", "domain-in-local-part", "empty"],
)
def test_a_sender_outside_the_institution_is_not_allowed(core: CoreDriver, sender: str) -> None:
    token = assigned_to_wij(core)
    with pytest.raises(NotAllowed):
        reply(core, token, "accept", sender=sender)
    assert the_coordination(core).status == CoordinationStatus.PENDING
    assert token_row(core, token).used_at is None
    assert_logbook_intact(core)


def test_a_stranger_learns_nothing_about_the_tokens_purpose(core: CoreDriver) -> None:
    token = assigned_to_wij(core)
    with pytest.raises(NotAllowed):
        reply(core, token, "contacted", sender="someone@attacker.example")
    assert_logbook_intact(core)


def test_a_professionals_personal_token_answered_from_another_address_is_not_allowed(
    core: CoreDriver,
) -> None:
    place(core, ANNA)
    place(core, SANNE, now=LATER)
    token = match_token(core, ANNA)
    for other in (PIETER, GGD_MAILBOX, SANNE):  # colleague, own institution's mailbox, partner
        with pytest.raises(NotAllowed):
            reply(core, token, "contacted", sender=other)
    assert token_row(core, token).used_at is None
    assert_logbook_intact(core)


# --- token state ---------------------------------------------------------------------------------


def test_an_unknown_token_is_not_found(core: CoreDriver) -> None:
    assigned_to_wij(core)
    with pytest.raises(NotFound):
        reply(core, "no-such-token", "accept", sender=SANNE)
    assert_logbook_intact(core)


def test_a_used_token_is_a_conflict(core: CoreDriver) -> None:
    token = assigned_to_wij(core)
    reply(core, token, "accept", sender=SANNE)
    with pytest.raises(Conflict):
        reply(core, token, "decline", "toch niet", sender=SANNE, now=LATER + timedelta(hours=1))
    assert the_coordination(core).status == CoordinationStatus.ACCEPTED
    assert_logbook_intact(core)


def test_an_expired_token_is_a_conflict(core: CoreDriver) -> None:
    token = assigned_to_wij(core)
    expired = MONDAY + TOKEN_LIFETIME + timedelta(minutes=1)
    with pytest.raises(Conflict):
        reply(core, token, "accept", sender=SANNE, now=expired)
    assert the_coordination(core).status == CoordinationStatus.PENDING
    assert_logbook_intact(core)


def test_a_token_is_valid_until_its_expiry(core: CoreDriver) -> None:
    token = assigned_to_wij(core)
    reply(core, token, "accept", sender=SANNE, now=MONDAY + TOKEN_LIFETIME)
    assert the_coordination(core).status == CoordinationStatus.ACCEPTED
    assert_logbook_intact(core)


@pytest.mark.parametrize("keyword", ["contacted", "extend"])
def test_a_keyword_that_does_not_fit_the_purpose_lists_the_allowed_ones(
    core: CoreDriver, keyword: str
) -> None:
    token = assigned_to_wij(core)
    with pytest.raises(InvalidInput) as refused:
        reply(core, token, keyword, sender=SANNE)
    assert "AKKOORD" in refused.value.message
    assert "WEIGER" in refused.value.message
    assert "OVERDRAGEN" in refused.value.message
    assert token_row(core, token).used_at is None
    assert_logbook_intact(core)


def test_a_match_token_only_takes_contact_gelegd(core: CoreDriver) -> None:
    place(core, ANNA)
    place(core, SANNE, now=LATER)
    with pytest.raises(InvalidInput) as refused:
        reply(core, match_token(core, ANNA), "accept", sender=ANNA)
    assert "CONTACT GELEGD" in refused.value.message
    assert_logbook_intact(core)


# --- match follow-up -----------------------------------------------------------------------------


def test_contact_gelegd_by_reply_confirms_the_members_contact(core: CoreDriver) -> None:
    place(core, ANNA)
    place(core, SANNE, now=LATER)
    confirmation = reply(core, match_token(core, ANNA), "contacted", sender=ANNA, channel="slack")
    assert "contact" in confirmation
    with Session(core.engine) as session:
        rows = session.exec(
            select(Signal.professional_id, MatchMember.contact_confirmed_at).join(
                MatchMember, col(MatchMember.signal_id) == Signal.id
            )
        ).all()
    assert sorted(confirmed is not None for _, confirmed in rows) == [False, True]
    assert_logbook_intact(core)


# --- signal expiry: VERLENG ----------------------------------------------------------------------


def expiry_token(core: CoreDriver) -> tuple[str, SignalOutcome]:
    outcome = place(core, ANNA)  # ends 2 March 2027 (the region's default of 12 months)
    warned_at = datetime(2027, 2, 24, 9, 0, tzinfo=UTC)
    core.run(lambda s: warn_expiring_signals(s, core.config, warned_at))
    [row] = core.outbox("signaal-verloopt")
    assert row.recipient == ANNA and row.reply_token
    return row.reply_token, outcome


def test_extend_by_reply_on_a_signal_expiry_notice(core: CoreDriver) -> None:
    token, outcome = expiry_token(core)
    confirmation = reply(
        core, token, "extend", "6", sender=ANNA, now=datetime(2027, 2, 25, 9, tzinfo=UTC)
    )
    assert "02-09-2027" in confirmation
    with Session(core.engine) as session:
        signal = session.exec(select(Signal)).one()
    assert signal.number == outcome.number
    assert signal.ends_on == date(2027, 9, 2)
    assert token_row(core, token).used_action == "extend"
    assert_logbook_intact(core)


def test_extend_without_months_uses_the_regions_default_up_to_two_years(
    core: CoreDriver,
) -> None:
    token, _ = expiry_token(core)
    reply(core, token, "extend", sender=ANNA, now=datetime(2027, 2, 25, 9, tzinfo=UTC))
    with Session(core.engine) as session:
        signal = session.exec(select(Signal)).one()
    assert signal.ends_on == date(2028, 3, 2)  # 12 months more: exactly 2 years after placing
    assert_logbook_intact(core)


def test_extend_with_a_month_count_that_is_not_a_number_is_refused(core: CoreDriver) -> None:
    token, _ = expiry_token(core)
    with pytest.raises(InvalidInput):
        reply(core, token, "extend", "zes", sender=ANNA, now=datetime(2027, 2, 25, tzinfo=UTC))
    assert token_row(core, token).used_at is None
    assert_logbook_intact(core)


def test_one_token_answered_twice_at_the_same_time_is_carried_out_once(core: CoreDriver) -> None:
    token, _ = expiry_token(core)
    now = datetime(2027, 2, 25, 9, tzinfo=UTC)
    outcomes: list[str] = []

    def second_answer() -> None:
        try:
            reply(core, token, "extend", "3", sender=ANNA, now=now)
            outcomes.append("extended")
        except Conflict:
            outcomes.append("conflict")

    with transaction(core.engine) as session:
        answer(
            token,
            ReplyAction("extend", "6"),
            sender=ANNA,
            channel="smtp",
            session=session,
            config=core.config,
            now=now,
        )
        racer = threading.Thread(target=second_answer)
        racer.start()
        time.sleep(0.5)  # the second answer now waits for the first transaction
    racer.join(timeout=30)
    assert outcomes == ["conflict"]
    with Session(core.engine) as session:
        assert session.exec(select(Signal)).one().ends_on == date(2027, 9, 2)
    assert_logbook_intact(core)


def test_an_expiry_token_answered_by_a_colleague_is_not_allowed(core: CoreDriver) -> None:
    token, _ = expiry_token(core)
    with pytest.raises(NotAllowed):
        reply(core, token, "extend", sender=PIETER, now=datetime(2027, 2, 25, tzinfo=UTC))
    assert_logbook_intact(core)


def test_outbox_rows_without_a_question_carry_no_token(core: CoreDriver) -> None:
    assigned_to_wij(core)
    core.run(
        lambda s: accept_coordination(
            the_coordination(core).id or 0,
            session=s,
            config=core.config,
            actor=core.institution("wij-groningen"),
            now=LATER,
        )
    )
    with Session(core.engine) as session:
        rows = session.exec(
            select(OutboxMessage).where(
                col(OutboxMessage.kind).in_(["signaal", "coordinatie-geaccepteerd"])
            )
        ).all()
    assert rows and all(row.reply_token is None for row in rows)
    assert_logbook_intact(core)


# --- who may take over: one rule for the command, the mail's choices and the Slack form ----------


def options(core: CoreDriver, token: str, *, sender: str, now: datetime = LATER) -> Any:
    return core.run(lambda s: hand_over_options(token, sender=sender, session=s, now=now))


def test_hand_over_options_are_checked_like_the_answer_itself(core: CoreDriver) -> None:
    token = assigned_to_wij(core)
    assert options(core, token, sender=SANNE) == [("ggd-groningen", "GGD Groningen")]
    # The same refusals as for the answer: anyone but the addressee, and an expired token
    # (the Slack button once skipped the expiry), learn nothing about who is involved.
    with pytest.raises(NotAllowed):
        options(core, token, sender=ANNA)
    with pytest.raises(Conflict, match="verlopen"):
        options(core, token, sender=SANNE, now=LATER + TOKEN_LIFETIME + timedelta(days=1))
    with pytest.raises(NotFound):
        options(core, "a" * 32, sender=SANNE)


def test_an_institution_that_left_is_no_candidate_anywhere(core: CoreDriver) -> None:
    token = assigned_to_wij(core)
    [assignment] = core.outbox("coordinatie-toegewezen")
    assert [o["id"] for o in assignment.context["hand_over_options"]] == ["ggd-groningen"]
    with transaction(core.engine) as session:
        ggd = session.get(Institution, "ggd-groningen")
        assert ggd is not None
        ggd.active = False  # left the covenant (its registration is still active here)
        session.add(ggd)
    with Session(core.engine) as session:
        coordination = session.exec(select(Coordination)).one()
        assert takeover_candidates(session, coordination.youth_id, "wij-groningen") == []
    assert options(core, token, sender=SANNE) == []
    # The reminder mail offers no hand-over to it either (its choices once skipped 'active').
    assert coordination.remind_at is not None
    core.run(lambda s: sweep_coordination(s, core.config, as_utc(coordination.remind_at)))
    [reminder] = core.outbox("coordinatie-herinnering")
    assert reminder.context["hand_over_options"] == []
    with pytest.raises(InvalidInput, match="onbekende instelling"):
        reply(core, token, "hand-over", "ggd-groningen", sender=SANNE)
