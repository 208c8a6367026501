"""Death of a youth (DOMAIN: Age; issue 11.11): on notice of death the region's admin purges
everything about the youth at once — registrations, signals (also archived ones), matches,
coordinations and their members, reply tokens and the notifications not yet delivered — and
the logboek keeps only that it happened, without identity. A sibling's family coordination
carries on; those told of the youth's active signals hear they ended, never why."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlmodel import Session, select

from core.audit import verify_chain
from core.errors import NotAllowed, NotFound
from core.models import (
    OPEN_STATUSES,
    AuditEvent,
    Coordination,
    CoordinationMember,
    Match,
    MatchMember,
    MatchStatus,
    OutboxMessage,
    OutboxStatus,
    Registration,
    ReplyToken,
    Signal,
    Youth,
    YouthParent,
)
from core.registration import RegisterYouth, register_youth
from core.rights_requests import record_death
from core.signals import PlaceSignal, place_signal, withdraw_signal
from tests.core.conftest import BSN_A, BSN_B, BSN_C, BSN_PARENT, MONDAY, CoreDriver

ADMIN = "f.dijkstra@ggd-groningen.example"
GGD = "a.devries@ggd-groningen.example"
WIJ = "s.jansen@wij-groningen.example"
POLICE = "i.wiersma@politie-nn.example"
PLUSTEAM = "e.meijer@jeugdhulp-noord.example"
INSTITUTION_ADMIN = "h.visser@ggd-groningen.example"

CHILD = dict(bsn=BSN_A, birth=date(2016, 5, 1), name="Overleden Kindnaam")
SIBLING = dict(bsn=BSN_B, birth=date(2019, 3, 10), name="Broer Blijftnaam")


@pytest.fixture(autouse=True)
def audit_chain_stays_intact(core: CoreDriver) -> Iterator[None]:
    yield
    with Session(core.engine) as session:
        _, broken = verify_chain(session)
    assert broken is None, broken


def _identity(person: dict[str, Any]) -> Any:
    from core.identity import YouthIdentity

    return YouthIdentity(bsn=person["bsn"], birth_date=person["birth"], name=person["name"])


def _register(core: CoreDriver, institution: str, person: dict[str, Any]) -> None:
    request = RegisterYouth(
        _identity(person),
        "Groningen",
        f"{institution[:3].upper()}-{person['bsn'][-2:]}",
        parent_bsns=(BSN_PARENT,),
    )
    core.run(
        lambda s: register_youth(
            request, session=s, config=core.config, actor=core.institution(institution), now=MONDAY
        )
    )


def _signal(core: CoreDriver, email: str, person: dict[str, Any]) -> str:
    actor = core.professional(email)
    request = PlaceSignal(_identity(person), "Groningen", "laag", "ja", parent_bsns=(BSN_PARENT,))
    return core.run(
        lambda s: place_signal(request, session=s, config=core.config, actor=actor, now=MONDAY)
    ).number


def _family(core: CoreDriver) -> dict[str, Any]:
    """The child: two registrations, two active signals (a match), one archived signal; the
    sibling: two institutions and a signal. One coordination for the family."""
    _register(core, "ggd-groningen", CHILD)
    _register(core, "wij-groningen", CHILD)
    _register(core, "ggd-groningen", SIBLING)
    _register(core, "jeugdhulp-noord", SIBLING)
    numbers = {"ggd": _signal(core, GGD, CHILD), "wij": _signal(core, WIJ, CHILD)}
    numbers["police"] = _signal(core, POLICE, CHILD)
    police = core.professional(POLICE)
    core.run(
        lambda s: withdraw_signal(
            numbers["police"], "risico-weg", session=s, config=core.config, actor=police, now=MONDAY
        )
    )
    numbers["sibling"] = _signal(core, PLUSTEAM, SIBLING)
    with Session(core.engine) as session:
        child = session.exec(
            select(Youth).where(Youth.identity_key == core.config.keys.bsn_digest(BSN_A))
        ).one()
        sibling = session.exec(
            select(Youth).where(Youth.identity_key == core.config.keys.bsn_digest(BSN_B))
        ).one()
        coordinations = session.exec(select(Coordination)).all()
        tokens = session.exec(select(ReplyToken)).all()
    assert len(coordinations) == 1, "one family, one coordinator"
    assert tokens, "the match and the coordination asked for answers"
    return {"child": child.id, "sibling": sibling.id, "signals": numbers}


def _deceased(core: CoreDriver, who: Any, by: str = ADMIN) -> Any:
    actor = core.professional(by)
    return core.run(
        lambda s: record_death(who, session=s, config=core.config, actor=actor, now=MONDAY)
    )


def _all(core: CoreDriver, model: Any) -> list[Any]:
    with Session(core.engine) as session:
        return list(session.exec(select(model)).all())


def test_death_purges_everything_about_the_youth_at_once(core: CoreDriver) -> None:
    family = _family(core)
    child, sibling = family["child"], family["sibling"]
    child_signals = [family["signals"][k] for k in ("ggd", "wij", "police")]
    with Session(core.engine) as session:
        [client_match] = session.exec(select(Match).where(Match.youth_id == child)).all()
        child_registrations = [
            r.number
            for r in session.exec(select(Registration).where(Registration.youth_id == child))
        ]
    child_refs = set(child_signals) | set(child_registrations) | {client_match.number}
    pending_before = [r for r in _all(core, OutboxMessage) if r.reference in child_refs]
    assert pending_before and all(r.status == OutboxStatus.PENDING for r in pending_before)

    outcome = _deceased(core, _identity(CHILD))

    assert (outcome.youth, outcome.signals, outcome.registrations) == (f"J-{child}", 3, 2)
    assert child not in {y.id for y in _all(core, Youth)}
    assert all(r.youth_id != child for r in _all(core, Registration))
    assert all(s.youth_id != child for s in _all(core, Signal)), "the archive too"
    assert all(p.youth_id != child for p in _all(core, YouthParent))
    assert all(m.youth_id != child for m in _all(core, CoordinationMember))
    remaining_signals = {s.id for s in _all(core, Signal)}
    assert all(m.signal_id in remaining_signals for m in _all(core, MatchMember))
    ended = {m.id: m for m in _all(core, Match)}[client_match.id]
    assert (ended.status, ended.youth_id) == (MatchStatus.ENDED, None)
    # Nothing about the child still waits to be sent, or can be answered.
    still_pending = [
        r
        for r in _all(core, OutboxMessage)
        if r.reference in child_refs and r.status == OutboxStatus.PENDING
    ]
    assert {r.kind for r in still_pending} == {"signaal-beeindigd"}
    assert not any(r.id in {p.id for p in pending_before} for r in still_pending)
    token_subjects = {(t.purpose, t.subject_id) for t in _all(core, ReplyToken)}
    assert ("match", client_match.id) not in token_subjects
    # The sibling's family coordination carries on, now led by the sibling.
    [coordination] = _all(core, Coordination)
    assert coordination.status in {s.value for s in OPEN_STATUSES}
    assert coordination.youth_id == sibling
    assert [m.youth_id for m in _all(core, CoordinationMember) if m.left_at is None] == [sibling]


def test_those_told_of_an_active_signal_hear_it_ended_never_why(core: CoreDriver) -> None:
    family = _family(core)
    _deceased(core, f"J-{family['child']}")
    notices = core.outbox("signaal-beeindigd")
    about = {row.reference for row in notices}
    assert about == {family["signals"]["ggd"], family["signals"]["wij"]}, "not the archived one"
    assert {GGD, WIJ} <= {row.recipient for row in notices}
    for row in notices:
        assert row.context["reason"] == "removed" and row.context["archived"] is False
        text = json.dumps(row.context, ensure_ascii=False).lower()
        assert "overl" not in text and "dood" not in text


def test_the_logboek_keeps_the_fact_without_identity(core: CoreDriver) -> None:
    family = _family(core)
    _deceased(core, _identity(CHILD))
    events = _all(core, AuditEvent)
    [deceased] = [e for e in events if e.action == "youth-deceased"]
    assert (deceased.actor, deceased.subject) == (
        f"professional:{ADMIN}",
        f"youth:{family['child']}",
    )
    [purged] = [e for e in events if e.action == "youth-purged"]
    assert purged.details["reason"] == "death"
    logged = json.dumps([e.model_dump(mode="json") for e in events], ensure_ascii=False)
    for word in (BSN_A, "Overleden", "Kindnaam", "2016-05-01", "01-05-2016"):
        assert word not in logged


def test_only_the_regions_admin_records_a_death_and_a_stranger_is_not_found(
    core: CoreDriver,
) -> None:
    family = _family(core)
    for email in (INSTITUTION_ADMIN, GGD):
        with pytest.raises(NotAllowed):
            _deceased(core, _identity(CHILD), by=email)
    with pytest.raises(NotFound):
        _deceased(core, _identity(dict(bsn=BSN_C, birth=date(2015, 1, 1), name="x")))
    assert family["child"] in {y.id for y in _all(core, Youth)}
    _deceased(core, _identity(CHILD))
    with pytest.raises(NotFound):
        _deceased(core, _identity(CHILD))  # already gone
