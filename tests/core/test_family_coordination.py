"""One family, one coordinator (issue 11, items 1 and 2): youths sharing a parent share one
coordination; it starts when the family together has two involved institutions and an active
signal; a sibling joins it later; ``per_family = false`` on a rule keeps coordination per child.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from core import audit
from core.access_report import youth_overview
from core.bulk_import import apply_requests
from core.config import CoreConfig
from core.coordination import (
    accept_coordination,
    hand_over_coordination,
    open_coordination,
)
from core.coordination_family import member_youth_ids
from core.identity import YouthIdentity
from core.involvement import takeover_candidates
from core.models import Coordination, CoordinationStatus, Match, MatchKind, Signal
from core.registration import RegisterYouth
from core.retention import purge_youth
from core.signals import PlaceSignal, SignalOutcome, place_signal, withdraw_signal
from core.youths import find_youth
from tests.core.conftest import BSN_A, BSN_B, BSN_C, BSN_PARENT, MONDAY, CoreDriver, youth
from tests.core.test_coordination import (
    AGE_3,
    AGE_9,
    ANNA,
    EVA,
    GGD,
    JEUGDHULP,
    LATER,
    SANNE,
    WIJ,
    assert_logbook_intact,
    coordinations,
    register,
)

FAMILY = (BSN_PARENT,)
AGE_6 = AGE_3.replace(year=AGE_3.year - 3)


def place(
    core: CoreDriver, email: str, identity: YouthIdentity, *, now: datetime = MONDAY
) -> SignalOutcome:
    actor = core.professional(email)
    request = PlaceSignal(identity, "Groningen", "laag", "ja", parent_bsns=FAMILY)
    return core.run(
        lambda s: place_signal(request, session=s, config=core.config, actor=actor, now=now)
    )


def youth_id(core: CoreDriver, identity: YouthIdentity) -> int:
    with Session(core.engine) as session:
        found = find_youth(session, core.config, identity)
        assert found is not None and found.id is not None
        return found.id


def covering(core: CoreDriver, identity: YouthIdentity) -> Coordination | None:
    with Session(core.engine) as session:
        return open_coordination(session, youth_id(core, identity))


def members(core: CoreDriver, coordination: Coordination) -> list[int]:
    with Session(core.engine) as session:
        return member_youth_ids(session, coordination)


def open_ones(core: CoreDriver) -> list[Coordination]:
    return [c for c in coordinations(core) if c.status != CoordinationStatus.ENDED]


def two_siblings_one_institution_each(core: CoreDriver) -> tuple[YouthIdentity, YouthIdentity]:
    """A 3-year-old known to the GGD, a 9-year-old known to the WIJ-team: a family match."""
    younger, older = youth(BSN_B, AGE_3), youth(BSN_A, AGE_9)
    register(core, GGD, younger, parent_bsns=FAMILY)
    place(core, ANNA, younger)
    register(core, WIJ, older, parent_bsns=FAMILY, now=LATER)
    place(core, SANNE, older, now=LATER)
    return younger, older


def test_siblings_each_with_one_institution_get_one_coordinator(core: CoreDriver) -> None:
    younger, older = two_siblings_one_institution_each(core)
    with Session(core.engine) as session:
        [match] = session.exec(select(Match).where(Match.kind == MatchKind.FAMILY)).all()
    assert match.status == "active"
    [family] = coordinations(core)
    assert family.status == CoordinationStatus.PENDING
    # Started when the older child's signal made two institutions involved with the family:
    # its rule (the city's WIJ-team) decides; the younger child's age rule is the next option.
    assert family.youth_id == youth_id(core, older)
    assert family.institution_id == WIJ and family.rule_name == "stad-groningen-wij"
    assert members(core, family) == sorted([youth_id(core, younger), youth_id(core, older)])
    assert covering(core, younger) == covering(core, older) == family
    assert_logbook_intact(core)


def test_the_assignment_names_every_signal_of_the_family_and_no_identity(
    core: CoreDriver,
) -> None:
    # The coordination starts with the older child's signal (the WIJ-team is involved through
    # it): both siblings' signals are active by then.
    younger, older = youth(BSN_B, AGE_3), youth(BSN_A, AGE_9)
    register(core, GGD, younger, parent_bsns=FAMILY)
    place(core, ANNA, younger)
    register(core, WIJ, youth(BSN_C, AGE_9))  # WIJ's kenmerk for another child: not named
    place(core, SANNE, older, now=LATER)
    [mail] = core.outbox("coordinatie-toegewezen")
    assert [s["number"] for s in mail.context["signals"]] == ["S-1", "S-2"]
    assert {i["id"] for i in mail.context["involved"]} == {GGD, WIJ}
    assert mail.context["own_reference"] == ""  # WIJ registered none of this family
    stored = json.dumps(mail.context, ensure_ascii=False)
    assert "Geheimnaam" not in stored and BSN_A not in stored and BSN_B not in stored


def test_a_third_sibling_joins_the_familys_coordination_later(core: CoreDriver) -> None:
    two_siblings_one_institution_each(core)
    act_accept(core)
    third = youth(BSN_C, AGE_6)
    outcome = place(core, EVA, third, now=LATER + timedelta(days=1))
    [family] = coordinations(core)
    assert outcome.coordination_number == family.number
    assert family.status == CoordinationStatus.ACCEPTED and family.institution_id == WIJ
    assert youth_id(core, third) in members(core, family)
    youth_view = _youth_show(core, third)
    assert youth_view["rule"] == "gezin"
    assert youth_view["reason"] == (
        "een broer of zus heeft al WIJ Groningen als procescoördinator "
        "(1 gezin, 1 plan, 1 procescoördinator)"
    )
    assert len(core.outbox("coordinatie-toegewezen")) == 1  # no second assignment
    assert_logbook_intact(core)


def test_per_family_false_keeps_coordination_per_child(
    core: CoreDriver, config: CoreConfig
) -> None:
    rules = tuple(
        rule.model_copy(update={"per_family": False}) if rule.name == "jonge-kinderen-ggd" else rule
        for rule in config.covenant.coordination_rules
    )
    per_child = CoreDriver(
        core.engine,
        CoreConfig(
            covenant=config.covenant.model_copy(update={"coordination_rules": rules}),
            keys=config.keys,
        ),
    )
    younger, older = youth(BSN_B, AGE_3), youth(BSN_A, AGE_9)
    for institution in (GGD, WIJ):
        register(per_child, institution, younger, parent_bsns=FAMILY)
    place(per_child, ANNA, younger)
    for institution in (WIJ, JEUGDHULP):
        register(per_child, institution, older, parent_bsns=FAMILY, now=LATER)
    place(per_child, SANNE, older, now=LATER)
    first, second = coordinations(core)
    assert (first.institution_id, first.rule_name) == (GGD, "jonge-kinderen-ggd")
    assert (second.institution_id, second.rule_name) == (WIJ, "stad-groningen-wij")
    assert members(core, first) == [youth_id(core, younger)]
    assert members(core, second) == [youth_id(core, older)]
    assert_logbook_intact(core)


def test_the_coordinator_can_hand_over_to_an_institution_of_a_sibling(core: CoreDriver) -> None:
    younger, _ = two_siblings_one_institution_each(core)
    [family] = coordinations(core)
    with Session(core.engine) as session:
        options = takeover_candidates(session, youth_id(core, younger), WIJ)
    assert [i.id for i in options] == [GGD]  # involved with the younger child only
    core.run(
        lambda s: hand_over_coordination(
            family.id or 0, GGD, session=s, config=core.config, actor=core.institution(WIJ)
        )
    )
    [family] = coordinations(core)
    assert family.institution_id == GGD and family.status == CoordinationStatus.PENDING
    assert_logbook_intact(core)


def test_the_coordination_ends_when_the_family_no_longer_needs_one(core: CoreDriver) -> None:
    younger, older = two_siblings_one_institution_each(core)
    [signal] = [s for s in _signals(core) if s.youth_id == youth_id(core, older)]
    core.run(
        lambda s: withdraw_signal(
            signal.number,
            "onterecht",
            session=s,
            config=core.config,
            actor=core.professional(SANNE),
        )
    )
    # The older child is still registered with WIJ, so the family has two institutions and
    # the younger child's signal: the coordination carries on.
    assert covering(core, younger) is not None
    [family] = coordinations(core)
    core.run(
        lambda s: withdraw_signal(
            "S-1", "onterecht", session=s, config=core.config, actor=core.professional(ANNA)
        )
    )
    [family] = coordinations(core)
    assert family.status == CoordinationStatus.ENDED and family.ended_at is not None
    assert covering(core, younger) is None and covering(core, older) is None
    assert members(core, family) == []
    assert_logbook_intact(core)


def test_purging_the_lead_youth_leaves_the_siblings_coordination(core: CoreDriver) -> None:
    younger, older = two_siblings_one_institution_each(core)
    third = youth(BSN_C, AGE_6)
    place(core, EVA, third, now=LATER)
    [family] = coordinations(core)
    lead = youth_id(core, older)
    assert family.youth_id == lead
    core.run(lambda s: purge_youth(s, core.config, lead, reason="overleden", now=LATER))
    [family] = open_ones(core)
    assert family.youth_id != lead
    assert members(core, family) == sorted([youth_id(core, younger), youth_id(core, third)])
    assert_logbook_intact(core)


# --- helpers ---------------------------------------------------------------------------------


def act_accept(core: CoreDriver) -> None:
    [family] = coordinations(core)
    core.run(
        lambda s: accept_coordination(
            family.id or 0, session=s, config=core.config, actor=core.institution(WIJ), now=LATER
        )
    )


def _signals(core: CoreDriver) -> list[Signal]:
    with Session(core.engine) as session:
        return list(session.exec(select(Signal).order_by(col(Signal.id))).all())


def _youth_show(core: CoreDriver, identity: YouthIdentity) -> dict[str, Any]:
    shown = core.run(
        lambda s: youth_overview(identity, session=s, config=core.config, actor=audit.SYSTEM)
    )
    coordination: dict[str, Any] = shown["coordination"]
    return coordination


def test_a_sibling_registered_without_a_signal_starts_the_familys_coordination(
    core: CoreDriver,
) -> None:
    """Seed 000: "bij een en dezelfde jeugdige en/of het gezin". The GGD signals the younger
    child; the WIJ-team only registers the older one, naming the same parent: the family now
    has two involved institutions and an active signal, so it gets its coordinator — by the
    single registration and by the set-wise import alike (one rule)."""
    younger, older = youth(BSN_B, AGE_3), youth(BSN_A, AGE_9)
    register(core, GGD, younger, parent_bsns=FAMILY)
    place(core, ANNA, younger)
    assert coordinations(core) == []
    register(core, WIJ, older, parent_bsns=FAMILY, now=LATER)
    [family] = coordinations(core)
    assert family.status == CoordinationStatus.PENDING
    assert members(core, family) == sorted([youth_id(core, younger), youth_id(core, older)])
    assert_logbook_intact(core)


def test_the_import_of_a_registered_sibling_starts_the_familys_coordination_too(
    core: CoreDriver,
) -> None:
    younger, older = youth(BSN_B, AGE_3), youth(BSN_A, AGE_9)
    register(core, GGD, younger, parent_bsns=FAMILY)
    place(core, ANNA, younger)
    request = RegisterYouth(older, "Groningen", "WIJ-9", parent_bsns=FAMILY)
    actor = core.institution(WIJ)
    report = core.run(
        lambda s: apply_requests(s, core.config, [(1, request)], actor=actor, now=LATER)
    )
    assert not report.refused
    [family] = coordinations(core)
    assert members(core, family) == sorted([youth_id(core, younger), youth_id(core, older)])
