"""A youth who moves (verhuizing, Jeugdwet 7.1.2.3 g; issue 11.5): a registration or signal
naming another municipality is a move. It is in the logboek, both municipalities' contacts are
told (references only), and an open coordination is weighed again by the new municipality's
rules: the current coordinator keeps it until the one those rules pick accepts. A move outside
the covenant is recorded and the old municipality's contact is told."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from core.audit import verify_chain
from core.coordination import accept_coordination, decline_coordination, open_coordination
from core.errors import Conflict, InvalidInput
from core.models import (
    AuditEvent,
    Coordination,
    CoordinationStatus,
    CoordinationSuccession,
    SuccessionStatus,
    Youth,
)
from core.moves import KIND
from core.registration import RegisterYouth, register_youth
from core.signals import PlaceSignal, place_signal
from tests.core.conftest import BSN_A, BSN_B, MONDAY, CoreDriver, youth

SANNE = "s.jansen@wij-groningen.example"  # WIJ Groningen
EVA = "e.meijer@jeugdhulp-noord.example"  # Jeugdhulp Noord
ANNA = "a.devries@ggd-groningen.example"  # GGD
GRONINGEN = "regie.verwijsindex@gemeente-groningen.example"
WESTERKWARTIER = "verwijsindex@westerkwartier.example"
ST_WESTERKWARTIER = "sociaal-team-westerkwartier"
LATER = MONDAY + timedelta(days=1)


def _signal(core: CoreDriver, email: str, municipality: str = "Groningen", bsn: str = BSN_A) -> str:
    actor = core.professional(email)
    request = PlaceSignal(youth(bsn), municipality, "laag", "ja")
    return core.run(
        lambda s: place_signal(request, session=s, config=core.config, actor=actor, now=MONDAY)
    ).number


def _register(
    core: CoreDriver, institution: str, municipality: str, *, bsn: str = BSN_A, at: datetime = LATER
) -> str:
    actor = core.institution(institution)
    request = RegisterYouth(youth(bsn), municipality, "JHN-7")
    return core.run(
        lambda s: register_youth(request, session=s, config=core.config, actor=actor, now=at)
    ).registration_number


def _coordinated_in_groningen(core: CoreDriver) -> Coordination:
    """Two signals on a nine-year-old in Groningen: WIJ Groningen coordinates, and accepts."""
    _signal(core, SANNE)
    _signal(core, EVA)
    with Session(core.engine) as session:
        coordination = session.exec(select(Coordination)).one()
    assert coordination.institution_id == "wij-groningen"
    core.run(
        lambda s: accept_coordination(
            coordination.id or 0,
            session=s,
            config=core.config,
            actor=core.institution("wij-groningen"),
            now=MONDAY,
        )
    )
    return coordination


def _youth(core: CoreDriver) -> Youth:
    with Session(core.engine) as session:
        return session.exec(select(Youth)).one()


def _moves(core: CoreDriver) -> list[AuditEvent]:
    with Session(core.engine) as session:
        return list(
            session.exec(
                select(AuditEvent)
                .where(AuditEvent.action == "youth-moved")
                .order_by(col(AuditEvent.id))
            ).all()
        )


def test_a_registration_in_another_municipality_is_a_move_told_to_both_contacts(
    core: CoreDriver,
) -> None:
    coordination = _coordinated_in_groningen(core)
    number = _register(core, "jeugdhulp-noord", "westerkwartier")
    assert _youth(core).municipality == "Westerkwartier"
    [moved] = _moves(core)
    assert moved.details == {
        "from": "Groningen",
        "to": "Westerkwartier",
        "outside_covenant": False,
        "via": number,
    }
    assert moved.actor == "institution:jeugdhulp-noord"
    told = core.outbox(KIND)
    assert {(m.recipient_role, m.recipient) for m in told} == {
        ("municipality", GRONINGEN),
        ("municipality", WESTERKWARTIER),
    }
    context = told[0].context
    assert context["youth_reference"] == f"J-{_youth(core).id}"
    assert (context["from_name"], context["to_name"], context["via"]) == (
        "Groningen",
        "Westerkwartier",
        number,
    )
    card = context["coordination"]
    assert card["number"] == coordination.number
    assert card["institution"]["id"] == "wij-groningen", "the current coordinator keeps it"
    assert card["successor"]["institution"]["id"] == ST_WESTERKWARTIER
    assert card["successor"]["rule_name"] == "elders-sociaal-team"
    with Session(core.engine) as session:
        assert verify_chain(session)[1] is None


def test_the_current_coordinator_keeps_it_until_the_new_one_accepts(core: CoreDriver) -> None:
    coordination = _coordinated_in_groningen(core)
    _register(core, "jeugdhulp-noord", "Westerkwartier")
    with Session(core.engine) as session:
        kept = session.get(Coordination, coordination.id)
        assert kept is not None
        assert (kept.institution_id, kept.status) == ("wij-groningen", CoordinationStatus.ACCEPTED)
    [asked] = core.outbox("coordinatie-overname", channel="email")
    assert asked.recipient == "verwijsindex@sociaalteam-westerkwartier.example"
    assert asked.reply_token and asked.context["current"]["id"] == "wij-groningen"
    assert "verhuizing naar Westerkwartier" in asked.context["occasion"]

    later = LATER + timedelta(hours=2)
    core.run(
        lambda s: accept_coordination(
            coordination.id or 0,
            session=s,
            config=core.config,
            actor=core.institution(ST_WESTERKWARTIER),
            now=later,
        )
    )
    with Session(core.engine) as session:
        taken = session.get(Coordination, coordination.id)
        assert taken is not None
        assert (taken.institution_id, taken.status) == (
            ST_WESTERKWARTIER,
            CoordinationStatus.ACCEPTED,
        )
        assert taken.rule_name == "elders-sociaal-team"
        succession = session.exec(select(CoordinationSuccession)).one()
        assert succession.status == SuccessionStatus.ACCEPTED
    accepted = core.outbox("coordinatie-geaccepteerd", channel="email")
    told = {m.recipient for m in accepted if m.created_at >= later}
    assert "verwijsindex@wij-groningen.example" in told, "the old coordinator hears it"


def test_a_declining_successor_leaves_it_with_the_current_coordinator(core: CoreDriver) -> None:
    coordination = _coordinated_in_groningen(core)
    _register(core, "jeugdhulp-noord", "Westerkwartier")
    core.run(
        lambda s: decline_coordination(
            coordination.id or 0,
            "geen capaciteit",
            session=s,
            config=core.config,
            actor=core.institution(ST_WESTERKWARTIER),
            now=LATER,
        )
    )
    with Session(core.engine) as session:
        kept = session.get(Coordination, coordination.id)
        assert kept is not None and kept.institution_id == "wij-groningen"
        assert kept.status == CoordinationStatus.ACCEPTED and kept.declined == []
        succession = session.exec(select(CoordinationSuccession)).one()
        assert (succession.status, succession.reason) == (
            SuccessionStatus.DECLINED,
            "geen capaciteit",
        )
    assert len(core.outbox("coordinatie-overname", channel="email")) == 1, "nobody else to ask"


def test_moving_back_withdraws_the_proposal(core: CoreDriver) -> None:
    coordination = _coordinated_in_groningen(core)
    _register(core, "jeugdhulp-noord", "Westerkwartier")
    _register(core, "jeugdhulp-noord", "Groningen", at=LATER + timedelta(hours=1))  # back again
    with Session(core.engine) as session:
        assert session.exec(select(CoordinationSuccession)).one().status == (
            SuccessionStatus.WITHDRAWN
        ), "the rules of Groningen pick the current coordinator again"
    with pytest.raises(Conflict, match="wacht niet"):
        core.run(
            lambda s: accept_coordination(
                coordination.id or 0,
                session=s,
                config=core.config,
                actor=core.institution(ST_WESTERKWARTIER),
                now=LATER + timedelta(hours=2),
            )
        )


def test_a_proposal_lapses_when_the_coordinator_declines_meanwhile(core: CoreDriver) -> None:
    """WIJ had not accepted yet: its decline reassigns by the rules (now those of
    Westerkwartier), and the proposal made for WIJ's tenure lapses."""
    _signal(core, SANNE)
    _signal(core, EVA)
    _register(core, "jeugdhulp-noord", "Westerkwartier")
    with Session(core.engine) as session:
        coordination = session.exec(select(Coordination)).one()
    core.run(
        lambda s: decline_coordination(
            coordination.id or 0,
            "verhuisd",
            session=s,
            config=core.config,
            actor=core.institution("wij-groningen"),
            now=LATER + timedelta(hours=1),
        )
    )
    with Session(core.engine) as session:
        now_with = session.get(Coordination, coordination.id)
        assert now_with is not None
        assert (now_with.institution_id, now_with.status) == (
            ST_WESTERKWARTIER,
            CoordinationStatus.PENDING,
        )
        assert session.exec(select(CoordinationSuccession)).one().status == (
            SuccessionStatus.WITHDRAWN
        )


def test_a_signal_in_another_municipality_is_a_move_too(core: CoreDriver) -> None:
    _signal(core, SANNE)
    number = _signal(core, ANNA, municipality="Het Hogeland")
    [moved] = _moves(core)
    assert (moved.details["to"], moved.details["via"]) == ("Het Hogeland", number)
    assert moved.actor == f"professional:{ANNA}"
    assert _youth(core).municipality == "Het Hogeland"
    assert {m.recipient for m in core.outbox(KIND)} == {
        GRONINGEN,
        "verwijsindex@hethogeland.example",
    }


def test_a_move_outside_the_covenant_is_recorded_and_told_to_the_old_contact(
    core: CoreDriver,
) -> None:
    coordination = _coordinated_in_groningen(core)
    _register(core, "jeugdhulp-noord", "Amsterdam")
    away = _youth(core)
    assert (away.municipality, away.moved_out_to) == ("Groningen", "Amsterdam")
    [moved] = _moves(core)
    assert moved.details["outside_covenant"] is True and moved.details["to"] == "Amsterdam"
    [told] = core.outbox(KIND)
    assert told.recipient == GRONINGEN and told.context["outside_covenant"] is True
    assert told.context["coordination"]["successor"] is None
    with Session(core.engine) as session:
        assert open_coordination(session, away.id or 0) is not None
        assert session.get(Coordination, coordination.id).institution_id == "wij-groningen"  # type: ignore[union-attr]
    # Registered again in Amsterdam: it lives there already; back in Groningen: a move home.
    _register(core, "jeugdhulp-noord", "amsterdam", at=LATER + timedelta(hours=1))
    assert len(_moves(core)) == 1
    _register(core, "jeugdhulp-noord", "Groningen", at=LATER + timedelta(hours=2))
    back = _moves(core)[-1]
    assert (back.details["from"], back.details["to"]) == ("Amsterdam", "Groningen")
    assert _youth(core).moved_out_to is None


def test_a_youth_new_to_the_index_must_live_in_the_covenant(core: CoreDriver) -> None:
    actor = core.professional(ANNA)
    request = PlaceSignal(youth(BSN_B), "Amsterdam", "laag", "ja")
    with pytest.raises(InvalidInput) as refused:
        core.run(
            lambda s: place_signal(request, session=s, config=core.config, actor=actor, now=MONDAY)
        )
    assert refused.value.field == "Gemeente"
    assert "moet in het convenant staan" in refused.value.message


def test_a_name_close_to_a_covenant_municipality_is_a_typing_error_not_a_move(
    core: CoreDriver,
) -> None:
    _signal(core, SANNE)
    with pytest.raises(InvalidInput) as refused:
        _register(core, "jeugdhulp-noord", "Westerkwartir")
    assert refused.value.field == "Gemeente"
    assert "bedoelt u 'Westerkwartier'?" in refused.value.message
    assert _moves(core) == [] and _youth(core).municipality == "Groningen"
