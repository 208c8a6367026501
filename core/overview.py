"""A professional's own work at a glance: ``/verwijsindex mijn`` and the Slack App Home.

What it shows is what the professional's notifications already told them — references (S-12,
M-3, C-7, their own kenmerk), signal codes, dates, deadlines and the contact details of match
partners — never a youth's identity (DOMAIN: Content-free). It is still a view of data about
youths, so :func:`my_work` records one ``work-viewed`` event in the logboek (DOMAIN: Logboek),
naming the signals, matches and coordinations shown.

A professional who stands in for an absent colleague sees that colleague's active signals and
matches too: they receive the colleague's notifications (DOMAIN: Transfer on absence).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import ColumnElement
from sqlmodel import Session, col, select

from core import audit
from core.clock import as_utc, local_date, utcnow
from core.config import CoreConfig
from core.consent import ConsentItem, consents_of
from core.involvement import institution_reference
from core.match_members import match_members
from core.models import (
    Absence,
    Coordination,
    CoordinationStatus,
    Institution,
    Match,
    MatchKind,
    MatchMember,
    MatchStatus,
    Professional,
    Signal,
    SignalStatus,
)
from core.notifications.recipients import current_absence, current_stand_in


@dataclass(frozen=True)
class Contact:
    """A professional as a correspondent sees them (CONTRACT §4: contact details)."""

    name: str
    email: str
    phone: str
    institution: str


@dataclass(frozen=True)
class SignalItem:
    number: str
    code: str
    code_label: str
    placed_on: date
    ends_on: date
    own_reference: str  # the reporter's own kenmerk, "" when none was given
    informed: str = "ja"  # ja | nee | uitgesteld (core.informing: still to inform)
    informed_party: str = ""  # who is to be informed (ouders | jongere en ouders | jongere)


@dataclass(frozen=True)
class MatchPartner:
    signal_number: str
    contact: Contact
    stand_in: Contact | None  # the partner is absent: reach their stand-in
    stand_in_until: date | None
    contact_confirmed: bool


@dataclass(frozen=True)
class MatchItem:
    number: str
    family: bool
    own_signal: str  # the signal by which the professional (or the absent colleague) is in it
    partners: list[MatchPartner]
    follow_up_due: datetime | None
    contact_confirmed: bool  # has this side confirmed contact (match follow-up)?
    # Consent after a match, per institution (core.consent): the fact only.
    consents: list[ConsentItem] = field(default_factory=list)


@dataclass(frozen=True)
class AssignmentItem:
    """A coordination of the professional's institution: waiting for an answer, or running."""

    number: str
    status: str  # pending | accepted
    due: datetime | None
    response_working_days: int
    own_reference: str  # the institution's kenmerk for the youth, "" if it has none
    rule_name: str
    assigned_at: datetime


@dataclass(frozen=True)
class AbsenceItem:
    starts_on: date
    ends_on: date
    current: bool  # today falls within it
    stand_in: Contact | None


@dataclass(frozen=True)
class StandInDuty:
    """The professional stands in for an absent colleague."""

    colleague: Contact
    starts_on: date
    ends_on: date
    current: bool
    signals: list[SignalItem]
    matches: list[MatchItem]


@dataclass(frozen=True)
class MyWork:
    professional: Contact
    today: date
    signals: list[SignalItem]
    matches: list[MatchItem]
    assignments: list[AssignmentItem]
    absences: list[AbsenceItem]  # own absences, current and coming
    standing_in_for: list[StandInDuty] = field(default_factory=list)

    @property
    def absent_now(self) -> AbsenceItem | None:
        return next((a for a in self.absences if a.current), None)

    def references(self) -> dict[str, list[str]]:
        """The numbers shown, for the logboek."""
        duties = self.standing_in_for
        return {
            "signals": [s.number for s in self.signals]
            + [s.number for d in duties for s in d.signals],
            "matches": [m.number for m in self.matches]
            + [m.number for d in duties for m in d.matches],
            "coordinations": [a.number for a in self.assignments],
        }


def my_work(
    session: Session,
    config: CoreConfig,
    professional: Professional,
    *,
    actor: audit.Actor,
    now: datetime | None = None,
) -> MyWork:
    """Everything ``professional`` has on their plate today, and a logboek entry for the view.

    Runs in the caller's transaction (the audit event is written when it commits).
    """
    now = now or utcnow()
    today = local_date(now, config.tz)
    professional_id = professional.id or 0
    work = MyWork(
        professional=_contact(session, professional),
        today=today,
        signals=_signals(session, config, professional_id),
        matches=_matches(session, config, professional_id, today),
        assignments=_assignments(session, professional.institution_id),
        absences=_own_absences(session, professional_id, today),
        standing_in_for=_stand_in_duties(session, config, professional_id, today),
    )
    audit.record(
        session,
        actor,
        "work-viewed",
        f"professional:{professional_id}",
        details=work.references(),
        at=now,
    )
    return work


# -- pieces -----------------------------------------------------------------------------------


def _institution_name(session: Session, institution_id: str) -> str:
    institution = session.get(Institution, institution_id)
    return institution.name if institution else institution_id


def _contact(session: Session, professional: Professional) -> Contact:
    return Contact(
        name=professional.name,
        email=professional.email,
        phone=professional.phone or "",
        institution=_institution_name(session, professional.institution_id),
    )


def _signal_item(config: CoreConfig, signal: Signal) -> SignalItem:
    return SignalItem(
        number=signal.number,
        code=signal.code,
        code_label=config.code_label(signal.code),
        placed_on=local_date(signal.placed_at, config.tz),
        ends_on=signal.ends_on,
        own_reference=signal.reference or "",
        informed=signal.informed,
        informed_party=signal.informed_party,
    )


def _active_signals_of(session: Session, professional_id: int) -> list[Signal]:
    return list(
        session.exec(
            select(Signal)
            .where(Signal.professional_id == professional_id, Signal.status == SignalStatus.ACTIVE)
            .order_by(col(Signal.ends_on), col(Signal.id))
        ).all()
    )


def _signals(session: Session, config: CoreConfig, professional_id: int) -> list[SignalItem]:
    return [_signal_item(config, s) for s in _active_signals_of(session, professional_id)]


def _matches(
    session: Session, config: CoreConfig, professional_id: int, today: date
) -> list[MatchItem]:
    """Active matches in which one of the professional's active signals takes part."""
    rows = session.exec(
        select(Match, MatchMember, Signal)
        .join(MatchMember, col(MatchMember.match_id) == Match.id)
        .join(Signal, col(Signal.id) == MatchMember.signal_id)
        .where(
            Match.status == MatchStatus.ACTIVE,
            col(MatchMember.left_at).is_(None),
            Signal.professional_id == professional_id,
            Signal.status == SignalStatus.ACTIVE,
        )
        .order_by(col(Match.id), col(MatchMember.id))
    ).all()
    items: list[MatchItem] = []
    seen: set[int] = set()
    consents = consents_of(session, (match.id or 0 for match, _, _ in rows))
    for match, member, own in rows:
        if match.id in seen:  # two siblings signalled by one professional: one family match
            continue
        seen.add(match.id or 0)
        partners = [
            _partner(session, partner_member, partner_signal, today)
            for partner_member, partner_signal in match_members(session, match.id or 0)
            if partner_signal.professional_id != professional_id
        ]
        items.append(
            MatchItem(
                number=match.number,
                family=match.kind == MatchKind.FAMILY,
                own_signal=own.number,
                partners=partners,
                follow_up_due=as_utc(match.follow_up_due_at) if match.follow_up_due_at else None,
                contact_confirmed=member.contact_confirmed_at is not None,
                consents=consents.get(match.id or 0, []),
            )
        )
    return items


def _partner(session: Session, member: MatchMember, signal: Signal, today: date) -> MatchPartner:
    reporter = session.get(Professional, signal.professional_id)
    assert reporter is not None, signal.professional_id
    stand_in = current_stand_in(session, signal.professional_id, today)
    absence = current_absence(session, signal.professional_id, today) if stand_in else None
    return MatchPartner(
        signal_number=signal.number,
        contact=_contact(session, reporter),
        stand_in=_contact(session, stand_in) if stand_in is not None else None,
        stand_in_until=absence.ends_on if absence is not None else None,
        contact_confirmed=member.contact_confirmed_at is not None,
    )


def _assignments(session: Session, institution_id: str) -> list[AssignmentItem]:
    coordinations = session.exec(
        select(Coordination)
        .where(
            Coordination.institution_id == institution_id,
            col(Coordination.status).in_(
                [CoordinationStatus.PENDING.value, CoordinationStatus.ACCEPTED.value]
            ),
        )
        .order_by(col(Coordination.status).desc(), col(Coordination.due_at), col(Coordination.id))
    ).all()
    return [
        AssignmentItem(
            number=c.number,
            status=c.status,
            due=as_utc(c.due_at) if c.due_at else None,
            response_working_days=c.response_working_days,
            own_reference=institution_reference(session, c.youth_id, institution_id) or "",
            rule_name=c.rule_name,
            assigned_at=as_utc(c.assigned_at),
        )
        for c in coordinations
    ]


def _open_absences(
    session: Session, today: date, *conditions: ColumnElement[bool]
) -> list[Absence]:
    return list(
        session.exec(
            select(Absence)
            .where(
                *conditions,
                col(Absence.ends_on) >= today,
                col(Absence.ended_at).is_(None),
            )
            .order_by(col(Absence.starts_on), col(Absence.id))
        ).all()
    )


def _own_absences(session: Session, professional_id: int, today: date) -> list[AbsenceItem]:
    items = []
    for absence in _open_absences(session, today, col(Absence.professional_id) == professional_id):
        stand_in = session.get(Professional, absence.stand_in_id) if absence.stand_in_id else None
        items.append(
            AbsenceItem(
                starts_on=absence.starts_on,
                ends_on=absence.ends_on,
                current=absence.starts_on <= today,
                stand_in=_contact(session, stand_in) if stand_in is not None else None,
            )
        )
    return items


def _stand_in_duties(
    session: Session, config: CoreConfig, professional_id: int, today: date
) -> list[StandInDuty]:
    duties = []
    for absence in _open_absences(session, today, col(Absence.stand_in_id) == professional_id):
        colleague = session.get(Professional, absence.professional_id)
        if colleague is None:
            continue
        current = absence.starts_on <= today
        duties.append(
            StandInDuty(
                colleague=_contact(session, colleague),
                starts_on=absence.starts_on,
                ends_on=absence.ends_on,
                current=current,
                # Their work is the stand-in's only while the absence runs.
                signals=_signals(session, config, absence.professional_id) if current else [],
                matches=_matches(session, config, absence.professional_id, today)
                if current
                else [],
            )
        )
    return duties
