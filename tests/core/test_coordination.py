"""Process coordination (DOMAIN step 3): when two or more institutions are involved and a signal
is active, the covenant's rules assign one institution, which accepts, declines (next candidate,
then the municipality) or hands over; reminders and escalations follow the deadline in working
days; "1 gezin, 1 plan, 1 procescoördinator" for siblings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, col, select

from core.audit import Actor, verify_chain
from core.config import CoreConfig
from core.coordination import (
    accept_coordination,
    candidates,
    decline_coordination,
    explanation,
    hand_over_coordination,
    open_coordination,
    sweep_coordination,
)
from core.coordination_rules import CoordinationFacts, matching_rules, rule_matches
from core.covenant.schema import CoordinationRule
from core.errors import Conflict, InvalidInput, NotAllowed
from core.identity import YouthIdentity
from core.models import (
    AuditEvent,
    Coordination,
    CoordinationStatus,
    OutboxMessage,
    ReplyPurpose,
    ReplyToken,
)
from core.registration import DeregisterYouth, RegisterYouth, deregister_youth, register_youth
from core.signals import PlaceSignal, SignalOutcome, place_signal, withdraw_signal
from core.youths import find_youth
from tests.core.conftest import BSN_A, BSN_B, BSN_PARENT, MONDAY, CoreDriver, youth

AMSTERDAM = ZoneInfo("Europe/Amsterdam")

GGD = "ggd-groningen"
WIJ = "wij-groningen"
ST_WESTERKWARTIER = "sociaal-team-westerkwartier"
ST_MIDDEN_GRONINGEN = "sociaal-team-midden-groningen"
JEUGDHULP = "jeugdhulp-noord"
SCHOOL = "scholengroep-noordkust"
POLICE = "politie-noord-nederland"

ANNA = "a.devries@ggd-groningen.example"
SANNE = "s.jansen@wij-groningen.example"
EVA = "e.meijer@jeugdhulp-noord.example"
JEROEN = "j.veenstra@scholengroep-noordkust.example"
ILSE = "i.wiersma@politie-nn.example"

GGD_MAILBOX = "verwijsindex@ggd-groningen.example"
WIJ_MAILBOX = "verwijsindex@wij-groningen.example"
GRONINGEN_CONTACT = "regie.verwijsindex@gemeente-groningen.example"

AGE_3 = date(2022, 6, 1)  # on MONDAY (2 March 2026)
AGE_9 = date(2016, 5, 1)

LATER = MONDAY + timedelta(hours=1)


def end_of_local_day(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=AMSTERDAM).astimezone(UTC)


# --- helpers -------------------------------------------------------------------------------------


def register(
    core: CoreDriver,
    institution: str,
    identity: YouthIdentity,
    municipality: str = "Groningen",
    *,
    parent_bsns: tuple[str, ...] = (),
    now: datetime = MONDAY,
) -> None:
    actor = core.institution(institution)
    request = RegisterYouth(identity, municipality, f"{institution}-1", parent_bsns=parent_bsns)
    core.run(lambda s: register_youth(request, session=s, config=core.config, actor=actor, now=now))


def place(
    core: CoreDriver,
    email: str,
    identity: YouthIdentity,
    municipality: str = "Groningen",
    *,
    code: str = "laag",
    now: datetime = MONDAY,
) -> SignalOutcome:
    actor = core.professional(email)
    request = PlaceSignal(identity, municipality, code, "ja")
    return core.run(
        lambda s: place_signal(request, session=s, config=core.config, actor=actor, now=now)
    )


def involve(
    core: CoreDriver,
    identity: YouthIdentity,
    municipality: str,
    *institutions: str,
    parent_bsns: tuple[str, ...] = (),
    now: datetime = MONDAY,
) -> None:
    for institution in institutions:
        register(core, institution, identity, municipality, parent_bsns=parent_bsns, now=now)


def coordinations(core: CoreDriver) -> list[Coordination]:
    with Session(core.engine) as session:
        return list(session.exec(select(Coordination).order_by(col(Coordination.id))).all())


def the_coordination(core: CoreDriver) -> Coordination:
    [coordination] = coordinations(core)
    return coordination


Command = Callable[..., Coordination]


def act(
    core: CoreDriver,
    command: Command,
    actor: Actor,
    *args: str,
    now: datetime = LATER,
    config: CoreConfig | None = None,
) -> Coordination:
    coordination_id = the_coordination(core).id or 0
    return core.run(
        lambda s: command(
            coordination_id, *args, session=s, config=config or core.config, actor=actor, now=now
        )
    )


def sweep(core: CoreDriver, now: datetime) -> dict[str, int]:
    return core.run(lambda s: sweep_coordination(s, core.config, now))


def audit_details(core: CoreDriver, action: str) -> list[dict[str, object]]:
    with Session(core.engine) as session:
        rows = session.exec(
            select(AuditEvent).where(AuditEvent.action == action).order_by(col(AuditEvent.id))
        ).all()
        return [row.details for row in rows]


def token_row(core: CoreDriver, token: str) -> ReplyToken:
    with Session(core.engine) as session:
        return session.exec(select(ReplyToken).where(ReplyToken.token == token)).one()


def recipients(rows: list[OutboxMessage]) -> list[str]:
    return sorted(row.recipient for row in rows)


def assert_logbook_intact(core: CoreDriver) -> None:
    with Session(core.engine) as session:
        checked, broken = verify_chain(session)
    assert broken is None, broken
    assert checked > 0


def assigned_to_wij(core: CoreDriver) -> None:
    """Age 9 in the city of Groningen, GGD and WIJ involved: WIJ coordinates."""
    involve(core, youth(BSN_A, AGE_9), "Groningen", GGD, WIJ)
    place(core, ANNA, youth(BSN_A, AGE_9))


def assigned_to_ggd(core: CoreDriver) -> None:
    """Age 3 in the city of Groningen, GGD and WIJ involved: GGD coordinates."""
    involve(core, youth(BSN_A, AGE_3), "Groningen", GGD, WIJ)
    place(core, ANNA, youth(BSN_A, AGE_3))


# --- when a coordinator is needed ----------------------------------------------------------------


def test_one_involved_institution_with_a_signal_gets_no_coordinator(core: CoreDriver) -> None:
    register(core, GGD, youth())
    outcome = place(core, ANNA, youth())
    assert outcome.coordination_number is None
    assert coordinations(core) == []
    assert_logbook_intact(core)


def test_two_involved_institutions_without_a_signal_get_no_coordinator(core: CoreDriver) -> None:
    involve(core, youth(), "Groningen", GGD, WIJ)
    assert coordinations(core) == []
    assert core.outbox("coordinatie-toegewezen") == []
    assert_logbook_intact(core)


def test_a_signal_of_a_second_institution_makes_it_involved(core: CoreDriver) -> None:
    register(core, GGD, youth())
    outcome = place(core, SANNE, youth())  # WIJ signals without registering: now two involved
    assert outcome.coordination_number == the_coordination(core).number
    assert_logbook_intact(core)


def test_two_involved_and_an_active_signal_give_exactly_one_coordination(
    core: CoreDriver,
) -> None:
    involve(core, youth(), "Groningen", GGD, WIJ)
    first = place(core, ANNA, youth())
    second = place(core, SANNE, youth(), now=LATER)
    third = place(core, EVA, youth(), now=LATER)
    coordination = the_coordination(core)
    assert coordination.status == CoordinationStatus.PENDING
    assert first.coordination_number == second.coordination_number == third.coordination_number
    assert first.coordination_number == coordination.number
    assert len(core.outbox("coordinatie-toegewezen")) == 1
    assert_logbook_intact(core)


@pytest.mark.parametrize(
    ("birth", "municipality", "involved", "signaller", "institution", "rule", "why"),
    [
        (AGE_3, "Groningen", (GGD, WIJ), ANNA, GGD, "jonge-kinderen-ggd", "leeftijd 3"),
        (AGE_9, "Groningen", (GGD, WIJ), ANNA, WIJ, "stad-groningen-wij", "gemeente Groningen"),
        (
            AGE_9,
            "Westerkwartier",
            (GGD, JEUGDHULP),
            EVA,
            ST_WESTERKWARTIER,
            "elders-sociaal-team",
            "algemene regel",
        ),
        (
            AGE_9,
            "Het Hogeland",
            (GGD, SCHOOL),
            JEROEN,
            ST_MIDDEN_GRONINGEN,
            "elders-sociaal-team",
            "algemene regel",
        ),
    ],
    ids=["age-3-groningen", "age-9-groningen", "age-9-westerkwartier", "age-9-het-hogeland"],
)
def test_the_first_matching_rule_picks_the_coordinator_and_the_reason_is_recorded(
    core: CoreDriver,
    birth: date,
    municipality: str,
    involved: tuple[str, ...],
    signaller: str,
    institution: str,
    rule: str,
    why: str,
) -> None:
    identity = youth(BSN_A, birth)
    involve(core, identity, municipality, *involved)
    place(core, signaller, identity, municipality)
    coordination = the_coordination(core)
    assert coordination.institution_id == institution
    assert coordination.rule_name == rule
    assert why in coordination.rule_reason
    [assigned] = audit_details(core, "coordination-assigned")
    assert assigned["institution"] == institution
    assert assigned["rule"] == rule
    assert assigned["reason"] == coordination.rule_reason
    assert_logbook_intact(core)


def test_the_assignment_goes_to_the_institution_with_a_reply_token(core: CoreDriver) -> None:
    assigned_to_wij(core)
    coordination = the_coordination(core)
    [row] = core.outbox("coordinatie-toegewezen")
    assert row.recipient == WIJ_MAILBOX
    assert row.reference == coordination.number
    assert row.context["rule_name"] == "stad-groningen-wij"
    assert row.context["rule_reason"] == coordination.rule_reason
    assert row.reply_token
    token = token_row(core, row.reply_token)
    assert token.purpose == ReplyPurpose.COORDINATION
    assert token.subject_id == coordination.id
    assert token.institution_id == WIJ and token.professional_id is None
    assert_logbook_intact(core)


def test_only_institutions_that_may_coordinate_are_assigned(core: CoreDriver) -> None:
    identity = youth(BSN_A, AGE_9)
    involve(core, identity, "Groningen", JEUGDHULP, SCHOOL, POLICE)
    place(core, EVA, identity)
    place(core, JEROEN, identity, now=LATER)
    place(core, ILSE, identity, now=LATER)
    coordination = the_coordination(core)
    assert coordination.institution_id == WIJ  # serves Groningen, though not yet involved
    with Session(core.engine) as session:
        options = candidates(session, core.config, coordination, LATER)
    assert [c.institution_id for c in options] == [WIJ]
    assert_logbook_intact(core)


def test_a_rule_naming_a_kind_that_may_not_coordinate_is_passed_over(
    core: CoreDriver, config: CoreConfig
) -> None:
    # The covenant check refuses such a rule; the core must not rely on that alone.
    rules = (
        CoordinationRule(name="jeugdhulp-eerst", assign_kind="jeugdhulp"),
        *config.covenant.coordination_rules,
    )
    odd = CoreConfig(
        covenant=config.covenant.model_copy(update={"coordination_rules": rules}),
        keys=config.keys,
    )
    odd_core = CoreDriver(core.engine, odd)
    identity = youth(BSN_A, AGE_9)
    involve(odd_core, identity, "Groningen", JEUGDHULP, GGD)
    place(odd_core, EVA, identity)
    coordination = the_coordination(core)
    assert coordination.institution_id == WIJ
    assert coordination.rule_name == "stad-groningen-wij"
    assert_logbook_intact(core)


def test_involved_institutions_of_the_rules_kind_come_first(core: CoreDriver) -> None:
    # Het Hogeland: the fallback rule wants a sociaal team; Midden-Groningen's serves it.
    identity = youth(BSN_A, AGE_9)
    involve(core, identity, "Het Hogeland", ST_MIDDEN_GRONINGEN, GGD)
    place(core, ANNA, identity, "Het Hogeland")
    coordination = the_coordination(core)
    assert coordination.institution_id == ST_MIDDEN_GRONINGEN
    assert "betrokken" in coordination.rule_reason
    assert_logbook_intact(core)


# --- the rules themselves (beslisregels) ---------------------------------------------------------


def facts(age: int, municipality: str = "Groningen", *kinds: str) -> CoordinationFacts:
    return CoordinationFacts(municipality=municipality, age=age, involved_kinds=frozenset(kinds))


def test_every_matching_rule_is_returned_in_covenant_order(config: CoreConfig) -> None:
    decisions = matching_rules(config.covenant.coordination_rules, facts(3))
    assert [(d.rule_name, d.assign_kind) for d in decisions] == [
        ("jonge-kinderen-ggd", "ggd"),
        ("stad-groningen-wij", "wij-team"),
        ("elders-sociaal-team", "sociaal-team"),
    ]
    assert decisions[0].reason == "leeftijd 3 (0–4 jaar)"
    assert decisions[1].reason == "gemeente Groningen"
    assert decisions[2].reason == "algemene regel (geen voorwaarden)"


@pytest.mark.parametrize(
    ("age", "first"), [(0, "ggd"), (4, "ggd"), (5, "wij-team"), (22, "wij-team")]
)
def test_age_limits_of_a_rule_are_inclusive(config: CoreConfig, age: int, first: str) -> None:
    decisions = matching_rules(config.covenant.coordination_rules, facts(age))
    assert decisions[0].assign_kind == first


def test_the_municipality_of_a_rule_is_compared_without_regard_to_case(config: CoreConfig) -> None:
    rules = config.covenant.coordination_rules
    assert [d.rule_name for d in matching_rules(rules, facts(9, "GRONINGEN"))] == [
        "stad-groningen-wij",
        "elders-sociaal-team",
    ]
    assert [d.rule_name for d in matching_rules(rules, facts(9, "Westerkwartier"))] == [
        "elders-sociaal-team"
    ]


def test_a_rule_requiring_kinds_applies_only_when_all_of_them_are_involved() -> None:
    rule = CoordinationRule(
        name="politie-en-school", requires_kinds=("politie", "onderwijs"), assign_kind="ggd"
    )
    assert rule_matches(rule, facts(9, "Groningen", "politie")) is None
    reason = rule_matches(rule, facts(9, "Groningen", "politie", "onderwijs", "ggd"))
    assert reason == "betrokken: onderwijs, politie"


# --- the deadline --------------------------------------------------------------------------------


def test_a_laag_signal_gives_five_working_days(core: CoreDriver) -> None:
    assigned_to_wij(core)
    coordination = the_coordination(core)
    assert coordination.response_working_days == 5
    assert coordination.due_at == end_of_local_day(date(2026, 3, 9))  # next Monday
    assert_logbook_intact(core)


def test_the_most_urgent_active_code_sets_the_deadline(core: CoreDriver) -> None:
    involve(core, youth(), "Groningen", GGD, WIJ)
    place(core, SANNE, youth(), code="laag")
    coordination = the_coordination(core)
    assert coordination.due_at == end_of_local_day(date(2026, 3, 9))
    place(core, ANNA, youth(), code="urgent")  # same moment, more urgent
    coordination = the_coordination(core)
    assert coordination.response_working_days == 1
    assert coordination.due_at == end_of_local_day(date(2026, 3, 3))
    assert_logbook_intact(core)


def test_an_urgent_deadline_skips_kings_day(core: CoreDriver) -> None:
    friday = datetime(2026, 4, 24, 13, 0, tzinfo=UTC)
    involve(core, youth(), "Groningen", GGD, WIJ, now=friday)
    place(core, ANNA, youth(), code="urgent", now=friday)
    coordination = the_coordination(core)
    assert coordination.due_at == end_of_local_day(date(2026, 4, 28))  # Monday 27 April is off
    assert_logbook_intact(core)


def test_a_later_urgent_signal_tightens_a_pending_deadline(core: CoreDriver) -> None:
    assigned_to_wij(core)
    tuesday = MONDAY + timedelta(days=1)
    place(core, SANNE, youth(BSN_A, AGE_9), code="urgent", now=tuesday)
    coordination = the_coordination(core)
    assert coordination.status == CoordinationStatus.PENDING
    assert coordination.response_working_days == 1
    assert coordination.due_at == end_of_local_day(date(2026, 3, 4))  # Wednesday
    assert coordination.remind_at is not None
    assert tuesday < coordination.remind_at < coordination.due_at
    assert_logbook_intact(core)


def test_a_later_laag_signal_does_not_loosen_a_deadline(core: CoreDriver) -> None:
    involve(core, youth(BSN_A, AGE_9), "Groningen", GGD, WIJ)
    place(core, ANNA, youth(BSN_A, AGE_9), code="urgent")
    place(core, SANNE, youth(BSN_A, AGE_9), code="laag", now=MONDAY + timedelta(days=1))
    assert the_coordination(core).due_at == end_of_local_day(date(2026, 3, 3))
    assert_logbook_intact(core)


# --- declining -----------------------------------------------------------------------------------


def test_declining_requires_a_reason(core: CoreDriver) -> None:
    assigned_to_ggd(core)
    with pytest.raises(InvalidInput):
        act(core, decline_coordination, core.institution(GGD), "   ")
    assert the_coordination(core).institution_id == GGD
    assert_logbook_intact(core)


def test_a_decline_passes_coordination_to_the_next_rules_candidate(core: CoreDriver) -> None:
    assigned_to_ggd(core)
    act(core, decline_coordination, core.institution(GGD), "geen capaciteit")
    coordination = the_coordination(core)
    assert coordination.status == CoordinationStatus.PENDING
    assert coordination.institution_id == WIJ
    assert coordination.rule_name == "stad-groningen-wij"
    assert [d["institution_id"] for d in coordination.declined] == [GGD]
    assert coordination.declined[0]["reason"] == "geen capaciteit"
    assert coordination.due_at == end_of_local_day(date(2026, 3, 9))  # counted anew
    assert recipients(core.outbox("coordinatie-toegewezen")) == [GGD_MAILBOX, WIJ_MAILBOX]
    to_wij = core.outbox("coordinatie-toegewezen", recipient=WIJ_MAILBOX)[0]
    assert to_wij.context["declined"] == [
        {"institution": "GGD Groningen", "reason": "geen capaciteit"}
    ]
    assert_logbook_intact(core)


def test_when_every_candidate_declined_the_municipality_is_asked(core: CoreDriver) -> None:
    assigned_to_ggd(core)
    act(core, decline_coordination, core.institution(GGD), "geen capaciteit")
    act(core, decline_coordination, core.institution(WIJ), "niet onze wijk")
    coordination = the_coordination(core)
    assert coordination.status == CoordinationStatus.UNASSIGNED
    assert coordination.institution_id is None
    assert coordination.due_at is None
    [escalation] = core.outbox("coordinatie-escalatie")
    assert escalation.recipient == GRONINGEN_CONTACT
    assert escalation.recipient_role == "municipality"
    assert escalation.context["reason"] == "all-declined"
    assert len(escalation.context["declined"]) == 2
    assert_logbook_intact(core)


def test_only_the_assigned_institution_may_decline(core: CoreDriver) -> None:
    assigned_to_ggd(core)
    with pytest.raises(NotAllowed):
        act(core, decline_coordination, core.institution(WIJ), "niet de onze")
    assert the_coordination(core).institution_id == GGD
    assert_logbook_intact(core)


# --- accepting -----------------------------------------------------------------------------------


def test_the_assigned_institution_accepts(core: CoreDriver) -> None:
    assigned_to_wij(core)
    act(core, accept_coordination, core.institution(WIJ, channel="smtp"))
    coordination = the_coordination(core)
    assert coordination.status == CoordinationStatus.ACCEPTED
    assert coordination.accepted_at == LATER
    assert coordination.accepted_by == WIJ
    assert_logbook_intact(core)


def test_a_professional_of_the_assigned_institution_accepts_in_person(core: CoreDriver) -> None:
    assigned_to_wij(core)
    act(core, accept_coordination, core.professional(SANNE, channel="slack"))
    coordination = the_coordination(core)
    assert coordination.status == CoordinationStatus.ACCEPTED
    assert coordination.accepted_by == SANNE
    [row] = core.outbox("coordinatie-geaccepteerd", recipient=GGD_MAILBOX)
    assert row.context["coordinator_contact"]["email"] == SANNE
    assert_logbook_intact(core)


@pytest.mark.parametrize("who", ["institution", "professional"])
def test_another_institution_cannot_accept(core: CoreDriver, who: str) -> None:
    assigned_to_wij(core)
    actor = core.institution(GGD) if who == "institution" else core.professional(ANNA)
    with pytest.raises(NotAllowed):
        act(core, accept_coordination, actor)
    assert the_coordination(core).status == CoordinationStatus.PENDING
    assert core.outbox("coordinatie-geaccepteerd") == []
    assert_logbook_intact(core)


def test_accepting_twice_is_a_conflict(core: CoreDriver) -> None:
    assigned_to_wij(core)
    act(core, accept_coordination, core.institution(WIJ))
    with pytest.raises(Conflict):
        act(core, accept_coordination, core.institution(WIJ))
    assert_logbook_intact(core)


def test_acceptance_is_told_to_involved_institutions_and_signalling_professionals(
    core: CoreDriver,
) -> None:
    assigned_to_wij(core)
    place(core, EVA, youth(BSN_A, AGE_9), now=LATER)  # Jeugdhulp becomes involved by signalling
    act(core, accept_coordination, core.institution(WIJ), now=LATER + timedelta(hours=1))
    rows = core.outbox("coordinatie-geaccepteerd")
    assert recipients(rows) == sorted(
        [ANNA, EVA, GGD_MAILBOX, "verwijsindex@jeugdhulp-noord.example", WIJ_MAILBOX]
    )
    assert all(row.reply_token is None for row in rows)
    assert_logbook_intact(core)


# --- handing over --------------------------------------------------------------------------------


def test_handing_over_to_another_involved_coordinating_institution(core: CoreDriver) -> None:
    assigned_to_wij(core)
    act(core, hand_over_coordination, core.institution(WIJ), GGD)
    coordination = the_coordination(core)
    assert coordination.institution_id == GGD
    assert coordination.status == CoordinationStatus.PENDING
    assert coordination.rule_name == "overdracht"
    [row] = core.outbox("coordinatie-overgedragen")
    assert row.recipient == GGD_MAILBOX
    assert row.context["handed_over_from"]["id"] == WIJ
    assert row.reply_token and token_row(core, row.reply_token).institution_id == GGD
    assert_logbook_intact(core)


@pytest.mark.parametrize(
    "target",
    [ST_WESTERKWARTIER, JEUGDHULP, WIJ, "bestaat-niet"],
    ids=["not-involved", "may-not-coordinate", "itself", "unknown"],
)
def test_hand_over_is_refused_to_an_unsuitable_institution(core: CoreDriver, target: str) -> None:
    assigned_to_wij(core)
    place(core, EVA, youth(BSN_A, AGE_9), now=LATER)  # Jeugdhulp is involved, may not coordinate
    with pytest.raises(InvalidInput):
        act(core, hand_over_coordination, core.institution(WIJ), target)
    assert the_coordination(core).institution_id == WIJ
    assert core.outbox("coordinatie-overgedragen") == []
    assert_logbook_intact(core)


def test_only_the_coordinating_institution_may_hand_over(core: CoreDriver) -> None:
    assigned_to_wij(core)
    with pytest.raises(NotAllowed):
        act(core, hand_over_coordination, core.institution(GGD), GGD)
    assert_logbook_intact(core)


def test_an_accepted_coordination_handed_over_waits_for_the_new_institution(
    core: CoreDriver,
) -> None:
    assigned_to_wij(core)
    act(core, accept_coordination, core.professional(SANNE))
    act(core, hand_over_coordination, core.professional(SANNE), GGD, now=LATER + timedelta(days=1))
    coordination = the_coordination(core)
    assert coordination.status == CoordinationStatus.PENDING
    assert coordination.institution_id == GGD
    assert coordination.accepted_at is None and coordination.accepted_by is None
    [row] = core.outbox("coordinatie-overgedragen")
    assert row.context["accepted_by"] == ""
    assert_logbook_intact(core)


# --- siblings: one family, one coordinator -------------------------------------------------------


def younger_explanation(core: CoreDriver, identity: YouthIdentity) -> tuple[str, str]:
    with Session(core.engine) as session:
        found = find_youth(session, core.config, identity)
        assert found is not None
        coordination = open_coordination(session, found.id or 0)
        assert coordination is not None
        return explanation(session, coordination, found.id or 0)


def test_a_sibling_joins_the_familys_accepted_coordination(core: CoreDriver) -> None:
    older, younger = youth(BSN_A, AGE_9), youth(BSN_B, AGE_3)
    involve(core, older, "Groningen", GGD, WIJ, parent_bsns=(BSN_PARENT,))
    place(core, ANNA, older)
    act(core, accept_coordination, core.institution(WIJ))
    # The younger child's own rule would be jonge-kinderen-ggd; the family's coordinator wins.
    involve(core, younger, "Groningen", GGD, WIJ, parent_bsns=(BSN_PARENT,), now=LATER)
    outcome = place(core, ANNA, younger, now=LATER)
    family = the_coordination(core)
    assert outcome.coordination_number == family.number
    assert family.institution_id == WIJ and family.status == CoordinationStatus.ACCEPTED
    rule, reason = younger_explanation(core, younger)
    assert rule == "gezin"
    assert reason == (
        "een broer of zus heeft al WIJ Groningen als procescoördinator "
        "(1 gezin, 1 plan, 1 procescoördinator)"
    )
    assert_logbook_intact(core)


def test_a_sibling_joins_an_open_coordination_that_is_not_accepted_yet(core: CoreDriver) -> None:
    older, younger = youth(BSN_A, AGE_9), youth(BSN_B, AGE_3)
    involve(core, older, "Groningen", GGD, WIJ, parent_bsns=(BSN_PARENT,))
    place(core, ANNA, older)
    involve(core, younger, "Groningen", GGD, WIJ, parent_bsns=(BSN_PARENT,), now=LATER)
    place(core, ANNA, younger, now=LATER)
    family = the_coordination(core)
    assert family.institution_id == WIJ and family.status == CoordinationStatus.PENDING
    assert younger_explanation(core, younger)[0] == "gezin"
    assert len(core.outbox("coordinatie-toegewezen")) == 1  # one assignment, one deadline
    assert_logbook_intact(core)


def test_when_the_familys_coordinator_declines_a_siblings_rule_gives_the_next(
    core: CoreDriver,
) -> None:
    older, younger = youth(BSN_A, AGE_9), youth(BSN_B, AGE_3)
    involve(core, older, "Groningen", GGD, WIJ, parent_bsns=(BSN_PARENT,))
    place(core, ANNA, older)
    involve(core, younger, "Groningen", GGD, WIJ, parent_bsns=(BSN_PARENT,), now=LATER)
    place(core, ANNA, younger, now=LATER)
    act(core, decline_coordination, core.institution(WIJ), "te jong voor ons")
    family = the_coordination(core)
    assert family.institution_id == GGD
    assert family.rule_name == "jonge-kinderen-ggd"
    assert_logbook_intact(core)


# --- reminders and escalation --------------------------------------------------------------------


def test_the_sweep_reminds_once_halfway_and_escalates_once_at_the_deadline(
    core: CoreDriver,
) -> None:
    assigned_to_wij(core)  # laag, Monday 2 March: due Monday 9 March, end of day
    coordination = the_coordination(core)
    assert coordination.remind_at is not None and coordination.due_at is not None
    assert sweep(core, coordination.remind_at - timedelta(minutes=1)) == {
        "reminded": 0,
        "escalated": 0,
    }
    assert sweep(core, coordination.remind_at) == {"reminded": 1, "escalated": 0}
    assert sweep(core, coordination.remind_at + timedelta(hours=1)) == {
        "reminded": 0,
        "escalated": 0,
    }
    [reminder] = core.outbox("coordinatie-herinnering")
    assert reminder.recipient == WIJ_MAILBOX
    assert reminder.reply_token
    assert core.outbox("coordinatie-escalatie") == []
    assert sweep(core, coordination.due_at) == {"reminded": 0, "escalated": 1}
    assert sweep(core, coordination.due_at + timedelta(days=1)) == {
        "reminded": 0,
        "escalated": 0,
    }
    [escalation] = core.outbox("coordinatie-escalatie")
    assert escalation.recipient == GRONINGEN_CONTACT
    assert escalation.context["reason"] == "deadline"
    assert len(core.outbox("coordinatie-herinnering")) == 1
    assert_logbook_intact(core)


def test_a_sweep_after_the_deadline_escalates_without_a_late_reminder(core: CoreDriver) -> None:
    assigned_to_wij(core)
    due = the_coordination(core).due_at
    assert due is not None
    assert sweep(core, due + timedelta(hours=1)) == {"reminded": 0, "escalated": 1}
    assert sweep(core, due + timedelta(hours=2)) == {"reminded": 0, "escalated": 0}
    assert core.outbox("coordinatie-herinnering") == []
    assert_logbook_intact(core)


def test_an_accepted_coordination_is_neither_reminded_nor_escalated(core: CoreDriver) -> None:
    assigned_to_wij(core)
    act(core, accept_coordination, core.institution(WIJ))
    assert sweep(core, MONDAY + timedelta(days=30)) == {"reminded": 0, "escalated": 0}
    assert core.outbox("coordinatie-herinnering") == []
    assert core.outbox("coordinatie-escalatie") == []
    assert_logbook_intact(core)


WEDNESDAY = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
NEXT_MONDAY = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)


def tighten_after_the_first_reminder(core: CoreDriver) -> Coordination:
    """Laag on Wednesday 4 March (due Wednesday 11 March), reminded at the weekend, then an
    urgent signal on Monday 9 March: due Tuesday 10 March, end of day."""
    identity = youth(BSN_A, AGE_9)
    involve(core, identity, "Groningen", GGD, WIJ, now=WEDNESDAY)
    place(core, ANNA, identity, now=WEDNESDAY)
    assert the_coordination(core).due_at == end_of_local_day(date(2026, 3, 11))
    assert sweep(core, datetime(2026, 3, 8, 12, 0, tzinfo=UTC))["reminded"] == 1
    place(core, SANNE, identity, code="urgent", now=NEXT_MONDAY)
    coordination = the_coordination(core)
    assert coordination.due_at == end_of_local_day(date(2026, 3, 10))
    return coordination


def test_a_deadline_tightened_after_the_reminder_is_reminded_again(core: CoreDriver) -> None:
    coordination = tighten_after_the_first_reminder(core)
    assert coordination.remind_at is not None and coordination.due_at is not None
    assert NEXT_MONDAY < coordination.remind_at < coordination.due_at
    assert sweep(core, coordination.remind_at) == {"reminded": 1, "escalated": 0}
    assert sweep(core, coordination.remind_at + timedelta(hours=1))["reminded"] == 0
    assert sweep(core, coordination.due_at) == {"reminded": 0, "escalated": 1}
    assert_logbook_intact(core)


def test_the_reminder_after_tightening_names_the_new_deadline(core: CoreDriver) -> None:
    coordination = tighten_after_the_first_reminder(core)
    assert coordination.remind_at is not None and coordination.due_at is not None
    sweep(core, coordination.remind_at)
    first, second = core.outbox("coordinatie-herinnering")
    assert first.context["due"] == end_of_local_day(date(2026, 3, 11)).isoformat()
    assert second.context["due"] == coordination.due_at.isoformat()
    assert_logbook_intact(core)


# --- the end of coordination ---------------------------------------------------------------------


def test_coordination_ends_when_fewer_than_two_institutions_are_involved(
    core: CoreDriver,
) -> None:
    identity = youth(BSN_A, AGE_9)
    involve(core, identity, "Groningen", GGD, WIJ)
    place(core, ANNA, identity)
    actor = core.institution(WIJ)
    core.run(
        lambda s: deregister_youth(
            DeregisterYouth(identity), session=s, config=core.config, actor=actor, now=LATER
        )
    )
    coordination = the_coordination(core)
    assert coordination.status == CoordinationStatus.ENDED
    assert coordination.ended_at == LATER
    assert sweep(core, MONDAY + timedelta(days=30)) == {"reminded": 0, "escalated": 0}
    assert_logbook_intact(core)


def test_coordination_ends_when_no_signal_is_active(core: CoreDriver) -> None:
    identity = youth(BSN_A, AGE_9)
    involve(core, identity, "Groningen", GGD, WIJ)
    outcome = place(core, ANNA, identity)
    actor = core.professional(ANNA)
    core.run(
        lambda s: withdraw_signal(
            outcome.number, "risico-weg", session=s, config=core.config, actor=actor, now=LATER
        )
    )
    assert the_coordination(core).status == CoordinationStatus.ENDED
    assert_logbook_intact(core)


def test_a_new_signal_after_the_end_starts_a_new_coordination(core: CoreDriver) -> None:
    identity = youth(BSN_A, AGE_9)
    involve(core, identity, "Groningen", GGD, WIJ)
    outcome = place(core, ANNA, identity)
    actor = core.professional(ANNA)
    core.run(
        lambda s: withdraw_signal(
            outcome.number, "risico-weg", session=s, config=core.config, actor=actor, now=LATER
        )
    )
    place(core, SANNE, identity, now=LATER + timedelta(hours=1))
    old, new = coordinations(core)
    assert old.status == CoordinationStatus.ENDED
    assert new.status == CoordinationStatus.PENDING and new.institution_id == WIJ
    assert_logbook_intact(core)
