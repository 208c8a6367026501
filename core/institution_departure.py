"""An institution that leaves the covenant (issue 11.4).

The covenant sync marks it inactive (its rows stay: the logboek and the archive refer to them)
and applies its :class:`core.covenant_plan.InstitutionDeparture` here, in the same transaction:
its signals end and go to the archive (Jeugdwet 7.1.4.6, like any ended signal:
:func:`core.signals.end_signal`), its registrations end, the open coordinations it held are
assigned anew by the rules (core.coordination), a proposal to make it a family's coordinator
is withdrawn, and every other party is told once — each institution involved with one of its
youths (with its own kenmerk) and each match partner of its signals — by references only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from core import audit
from core.clock import as_utc, local_date
from core.config import CoreConfig
from core.coordination import open_coordination, reassign_coordination
from core.coordination_succession import withdraw
from core.covenant_plan import InstitutionDeparture
from core.involvement import institution_reference, involved_institution_ids
from core.models import (
    OPEN_STATUSES,
    Coordination,
    CoordinationSuccession,
    Institution,
    Professional,
    Registration,
    RegistrationStatus,
    Signal,
    SignalStatus,
    SuccessionStatus,
    Youth,
)
from core.notifications.dispatch import notify
from core.notifications.recipients import (
    Recipient,
    institution_card,
    institution_recipient,
    professional_recipients,
)
from core.reconcile import reconcile_youth
from core.signal_terms import INSTITUTION_LEFT
from core.signals import end_signal, match_partner_ids

KIND = "instelling-vertrokken"


@dataclass
class _Case:
    """What one party hears about one youth."""

    youth_id: int
    own_reference: str
    ended: list[str] = field(default_factory=list)


@dataclass
class _Party:
    recipients: list[Recipient]
    cases: dict[int, _Case] = field(default_factory=dict)

    def case(self, youth_id: int, own_reference: str) -> _Case:
        return self.cases.setdefault(youth_id, _Case(youth_id, own_reference))


def depart(
    session: Session,
    config: CoreConfig,
    departure: InstitutionDeparture,
    *,
    actor: audit.Actor,
    now: datetime,
) -> None:
    """End what the institution still holds and tell the others. Idempotent: what has ended
    already is passed over."""
    institution = session.get(Institution, departure.institution_id)
    if institution is None:
        return
    held = [r.coordination_id for r in departure.coordinations]
    leads = session.exec(select(Coordination.youth_id).where(col(Coordination.id).in_(held))).all()
    youth_ids = _lock(session, sorted(set(departure.youth_ids) | set(leads)))
    parties = _parties(session, config, departure, youth_ids, now)
    ended_registrations = _end_registrations(session, departure, youth_ids, actor, now)
    ended_signals = 0
    for item in departure.signals:
        signal = session.get(Signal, item.id, populate_existing=True)
        if (
            signal is None
            or signal.status != SignalStatus.ACTIVE
            or signal.youth_id not in youth_ids
        ):
            continue
        end_signal(session, config, signal, INSTITUTION_LEFT, actor, now)
        ended_signals += 1
    for youth_id in sorted({r.youth_id for r in departure.registrations} & youth_ids):
        reconcile_youth(session, config, youth_id, now)
    reassigned = _reassign(session, config, departure, now)
    _withdraw_proposals(session, departure.institution_id, now)
    audit.record(
        session,
        actor,
        "institution-left",
        f"institution:{departure.institution_id}",
        details={
            "signals_ended": ended_signals,
            "registrations_ended": ended_registrations,
            "coordinations_reassigned": reassigned,
        },
        at=now,
    )
    _tell(session, config, institution, parties, now)


def _lock(session: Session, youth_ids: list[int]) -> set[int]:
    """Lock the youths in id order, as every command does; those purged meanwhile drop out."""
    locked = set()
    for youth_id in youth_ids:
        found = session.exec(select(Youth.id).where(Youth.id == youth_id).with_for_update()).first()
        if found is not None:
            locked.add(youth_id)
    return locked


def _parties(
    session: Session,
    config: CoreConfig,
    departure: InstitutionDeparture,
    youth_ids: set[int],
    now: datetime,
) -> dict[tuple[str, str], _Party]:
    """Who is to be told what, read before anything ends: the other institutions involved with
    the youths, and the match partners of the institution's signals."""
    today = local_date(now, config.tz)
    parties: dict[tuple[str, str], _Party] = {}
    gone = departure.institution_id
    for registration in departure.registrations:
        if registration.youth_id in youth_ids:
            _involved_hear(session, parties, registration.youth_id, registration.number, gone)
    for item in departure.signals:
        signal = session.get(Signal, item.id)
        if signal is None or signal.status != SignalStatus.ACTIVE or item.youth_id not in youth_ids:
            continue
        _involved_hear(session, parties, item.youth_id, item.number, gone)
        for partner_id in match_partner_ids(session, signal):
            partner = session.get(Professional, partner_id)
            if partner is None or partner.institution_id == gone:
                continue
            party = parties.setdefault(
                ("professional", str(partner_id)),
                _Party(professional_recipients(session, partner, today)),
            )
            own = _own_signal_reference(session, partner_id, item.youth_id)
            party.case(item.youth_id, own).ended.append(item.number)
    return parties


def _involved_hear(
    session: Session, parties: dict[tuple[str, str], _Party], youth_id: int, number: str, gone: str
) -> None:
    """Every other active institution involved with the youth hears that ``number`` ended."""
    found = (session.get(Institution, i) for i in involved_institution_ids(session, youth_id))
    for other in found:
        if other is None or other.id == gone or not other.active:
            continue
        reference = institution_reference(session, youth_id, other.id) or ""
        party = parties.setdefault(
            ("institution", other.id), _Party([institution_recipient(other)])
        )
        party.case(youth_id, reference).ended.append(number)


def _own_signal_reference(session: Session, professional_id: int, youth_id: int) -> str:
    reference = session.exec(
        select(Signal.reference).where(
            Signal.professional_id == professional_id,
            Signal.youth_id == youth_id,
            Signal.status == SignalStatus.ACTIVE,
        )
    ).first()
    return reference or ""


def _end_registrations(
    session: Session,
    departure: InstitutionDeparture,
    youth_ids: set[int],
    actor: audit.Actor,
    now: datetime,
) -> int:
    ended = 0
    for item in departure.registrations:
        registration = session.get(Registration, item.id, populate_existing=True)
        if (
            registration is None
            or registration.status != RegistrationStatus.ACTIVE
            or registration.youth_id not in youth_ids
        ):
            continue
        registration.status = RegistrationStatus.ENDED
        registration.ended_at = now
        session.add(registration)
        audit.record(
            session,
            actor,
            "registration-ended",
            f"youth:{registration.youth_id}",
            details={"registration": registration.number, "reason": INSTITUTION_LEFT},
            at=now,
        )
        ended += 1
    session.flush()
    return ended


def _reassign(
    session: Session, config: CoreConfig, departure: InstitutionDeparture, now: datetime
) -> int:
    """The coordinations it still holds (ending its involvement may have ended some) go to
    the institution the rules pick now, which must accept as usual."""
    reassigned = 0
    for item in departure.coordinations:
        coordination = session.get(Coordination, item.coordination_id, populate_existing=True)
        if (
            coordination is None
            or coordination.status not in OPEN_STATUSES
            or coordination.institution_id != departure.institution_id
        ):
            continue
        reassign_coordination(session, config, coordination, now)
        reassigned += 1
    return reassigned


def _withdraw_proposals(session: Session, institution_id: str, now: datetime) -> None:
    for succession in session.exec(
        select(CoordinationSuccession).where(
            CoordinationSuccession.institution_id == institution_id,
            CoordinationSuccession.status == SuccessionStatus.PROPOSED,
        )
    ).all():
        withdraw(session, succession, now)


def _coordination_line(session: Session, youth_id: int) -> dict[str, Any] | None:
    coordination = open_coordination(session, youth_id)
    if coordination is None:
        return None
    holder = (
        session.get(Institution, coordination.institution_id)
        if coordination.institution_id
        else None
    )
    return {
        "number": coordination.number,
        "institution": institution_card(holder) if holder else None,
        "pending": coordination.status != "accepted",
    }


def _tell(
    session: Session,
    config: CoreConfig,
    institution: Institution,
    parties: dict[tuple[str, str], _Party],
    now: datetime,
) -> None:
    left_on = local_date(now, config.tz).isoformat()
    for (_kind, party_id), party in sorted(parties.items()):
        cases = [
            {
                "youth_reference": f"J-{case.youth_id}",
                "own_reference": case.own_reference,
                "ended": case.ended,
                "coordination": _coordination_line(session, case.youth_id),
            }
            for case in sorted(party.cases.values(), key=lambda c: c.youth_id)
        ]
        notify(
            session,
            config,
            kind=KIND,
            recipients=party.recipients,
            reference=institution.id,
            context={
                "departed": {"id": institution.id, "name": institution.name},
                "left_on": left_on,
                "cases": cases,
            },
            key=f"{institution.id}@{as_utc(now).isoformat()}:{_kind}:{party_id}",
            now=now,
        )
