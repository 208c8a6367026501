"""A professional's own work (``/verwijsindex mijn``, the Slack App Home): own active signals,
matches with the partners' contact details (or their stand-in's), the institution's
coordinations with deadlines, absences and stand-in duties — references only, and logged."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlmodel import Session, select

from core.absence import declare_absence
from core.audit import Actor
from core.coordination import accept_coordination
from core.models import AuditEvent, Coordination, Professional
from core.overview import MyWork, my_work
from core.registration import RegisterYouth, register_youth
from core.signals import PlaceSignal, place_signal
from tests.core.conftest import BSN_A, BSN_B, MONDAY, CoreDriver, youth

ANNA = "a.devries@ggd-groningen.example"
PIETER = "p.bakker@ggd-groningen.example"
SANNE = "s.jansen@wij-groningen.example"
MOHAMED = "m.elamrani@wij-groningen.example"
TODAY = date(2026, 3, 2)


def _scenario(core: CoreDriver) -> None:
    """GGD and WIJ register a child; Anna (GGD) and Sanne (WIJ) signal it: a match, and a
    coordination for WIJ Groningen (city of Groningen). Anna is away with Pieter standing in."""
    for institution, reference in (("ggd-groningen", "GGD-77"), ("wij-groningen", "WIJ-88")):
        registration = RegisterYouth(youth(), "Groningen", reference)
        by = core.institution(institution)

        def register(session: Session, r: RegisterYouth = registration, a: Actor = by) -> Any:
            return register_youth(r, session=session, config=core.config, actor=a, now=MONDAY)

        core.run(register)
    for email, own in ((ANNA, "dossier-a"), (SANNE, None)):
        placing = PlaceSignal(youth(), "Groningen", "laag", "ja", reference=own)
        signaller = core.professional(email)

        def signal(session: Session, p: PlaceSignal = placing, a: Actor = signaller) -> Any:
            return place_signal(p, session=session, config=core.config, actor=a, now=MONDAY)

        core.run(signal)
    anna = core.professional(ANNA)
    core.run(
        lambda s: declare_absence(
            ANNA, TODAY, TODAY + timedelta(days=14), PIETER,
            session=s, config=core.config, actor=anna, now=MONDAY,
        )
    )


def _work(core: CoreDriver, email: str, days: int = 1) -> MyWork:
    actor = core.professional(email, channel="slack")

    def view(session: Session) -> MyWork:
        professional = session.exec(select(Professional).where(Professional.email == email)).one()
        return my_work(
            session, core.config, professional, actor=actor, now=MONDAY + timedelta(days=days)
        )

    return core.run(view)


def test_own_signals_matches_with_partner_contacts_and_absence(core: CoreDriver) -> None:
    _scenario(core)
    work = _work(core, ANNA)
    assert work.professional.name == "Anna de Vries"
    assert [(s.number, s.code, s.own_reference) for s in work.signals] == [
        ("S-1", "laag", "dossier-a")
    ]
    assert work.signals[0].ends_on > TODAY and work.signals[0].placed_on == TODAY
    [match] = work.matches
    assert (match.number, match.own_signal, match.family) == ("M-1", "S-1", False)
    assert match.follow_up_due is not None and not match.contact_confirmed
    [partner] = match.partners
    assert partner.signal_number == "S-2"
    assert (partner.contact.name, partner.contact.institution) == ("Sanne Jansen", "WIJ Groningen")
    assert partner.contact.email == SANNE and partner.contact.phone == "050 367 1201"
    assert partner.stand_in is None
    assert work.assignments == []  # the coordination is WIJ's, not GGD's
    absence = work.absent_now
    assert absence is not None and absence.ends_on == TODAY + timedelta(days=14)
    assert absence.stand_in is not None and absence.stand_in.name == "Pieter Bakker"
    assert work.standing_in_for == []


def test_the_institutions_coordination_with_its_deadline(core: CoreDriver) -> None:
    _scenario(core)
    for email in (SANNE, MOHAMED):  # every professional of WIJ sees WIJ's assignment
        [assignment] = _work(core, email).assignments
        assert assignment.number == "C-1" and assignment.status == "pending"
        assert assignment.own_reference == "WIJ-88"
        assert assignment.due is not None and assignment.due > MONDAY
    # The partner is away: Sanne sees Anna's stand-in next to Anna.
    [partner] = _work(core, SANNE).matches[0].partners
    assert partner.contact.name == "Anna de Vries"
    assert partner.stand_in is not None and partner.stand_in.email == PIETER
    assert partner.stand_in_until == TODAY + timedelta(days=14)

    wij = core.institution("wij-groningen")
    with Session(core.engine) as session:
        coordination_id = session.exec(select(Coordination.id)).one()
    core.run(
        lambda s: accept_coordination(
            coordination_id or 0, session=s, config=core.config, actor=wij, now=MONDAY
        )
    )
    [running] = _work(core, SANNE).assignments
    assert running.status == "accepted"
    assert _work(core, MOHAMED).signals == []


def test_a_stand_in_sees_the_absent_colleagues_work_while_the_absence_runs(
    core: CoreDriver,
) -> None:
    _scenario(core)
    [duty] = _work(core, PIETER).standing_in_for
    assert duty.colleague.name == "Anna de Vries" and duty.current
    assert [s.number for s in duty.signals] == ["S-1"]
    assert [m.number for m in duty.matches] == ["M-1"]
    assert duty.matches[0].partners[0].contact.name == "Sanne Jansen"
    assert _work(core, PIETER).signals == []
    assert _work(core, PIETER, days=20).standing_in_for == []  # the absence is over


def test_the_view_is_logged_with_references_and_without_identity(core: CoreDriver) -> None:
    _scenario(core)
    work = _work(core, PIETER)
    with Session(core.engine) as session:
        event = session.exec(
            select(AuditEvent).where(AuditEvent.action == "work-viewed")
        ).one()
    assert event.actor == f"professional:{PIETER}" and event.channel == "slack"
    assert event.details == {"signals": ["S-1"], "matches": ["M-1"], "coordinations": []}
    shown = repr(work) + repr(event.model_dump())
    for secret in (BSN_A, BSN_B, "Testkind", "Geheimnaam", "2016-05-01", "01-05-2016"):
        assert secret not in shown
