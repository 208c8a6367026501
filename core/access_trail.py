"""Who was told about a youth, and who looked (inzage, AVG art. 15 lid 1 c: the recipients to
whom the data were disclosed): the notifications about the youth's registrations, signals,
matches and coordinations, and every view of the youth in the logboek.

Both read what already records it — the outbox (every notification passes through it) and the
logboek (every view is audited) — so nothing is kept twice for the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, String, and_, cast, or_
from sqlmodel import Session, col, select

from core.actors import find_professional
from core.clock import local_date
from core.models import (
    AuditEvent,
    CoordinationMember,
    Institution,
    MatchMember,
    OutboxMessage,
    OutboxStatus,
    Professional,
    Registration,
    Signal,
)

# What shows a youth to someone: the overview and the inzage by name, the work list by the
# numbers it showed (core.overview records them).
YOUTH_VIEWS = ("youth-viewed", "access-report")
WORK_VIEW = "work-viewed"


@dataclass(frozen=True)
class Disclosure:
    """One notification about the youth: to which institution (and person), about what, when."""

    institution: str
    person: str
    about: str  # S-12, M-3, C-7, R-40
    kind: str  # the notification's kind (match, nieuwe-betrokkenheid, ...)
    date: str
    status: str  # verzonden | nog niet verzonden | niet bezorgd


@dataclass(frozen=True)
class View:
    institution: str
    person: str
    what: str  # overzicht | inzage | werklijst
    date: str


def youth_references(session: Session, youth_id: int) -> list[str]:
    """The numbers by which notifications and the work list name this youth's records."""
    signal_ids = list(session.exec(select(Signal.id).where(Signal.youth_id == youth_id)).all())
    registration_ids = session.exec(
        select(Registration.id).where(Registration.youth_id == youth_id)
    ).all()
    match_ids = session.exec(
        select(MatchMember.match_id).where(col(MatchMember.signal_id).in_(signal_ids)).distinct()
    ).all()
    coordination_ids = session.exec(
        select(CoordinationMember.coordination_id)
        .where(CoordinationMember.youth_id == youth_id)
        .distinct()
    ).all()
    return (
        [f"S-{i}" for i in signal_ids]
        + [f"R-{i}" for i in registration_ids]
        + [f"M-{i}" for i in match_ids]
        + [f"C-{i}" for i in coordination_ids]
    )


_STATUS = {
    OutboxStatus.SENT: "verzonden",
    OutboxStatus.FAILED: "niet bezorgd",
}


def disclosures(session: Session, references: list[str], tz: ZoneInfo) -> list[Disclosure]:
    if not references:
        return []
    rows = session.exec(
        select(OutboxMessage)
        .where(col(OutboxMessage.reference).in_(references))
        .order_by(col(OutboxMessage.created_at), col(OutboxMessage.id))
    ).all()
    names = _Names(session)
    return [
        Disclosure(
            institution=names.institution(row.institution_id, row.professional_id),
            person=names.professional(row.professional_id),
            about=row.reference,
            kind=row.kind,
            date=local_date(row.sent_at or row.created_at, tz).isoformat(),
            status=_STATUS.get(OutboxStatus(row.status), "nog niet verzonden"),
        )
        for row in rows
    ]


def views(session: Session, youth_id: int, references: list[str], tz: ZoneInfo) -> list[View]:
    shown_in_work = [
        cast(AuditEvent.details, String).like(f'%"{reference}"%') for reference in references
    ]
    condition: ColumnElement[bool] = and_(
        col(AuditEvent.subject) == f"youth:{youth_id}", col(AuditEvent.action).in_(YOUTH_VIEWS)
    )
    if shown_in_work:
        condition = or_(condition, (col(AuditEvent.action) == WORK_VIEW) & or_(*shown_in_work))
    events = session.exec(select(AuditEvent).where(condition).order_by(col(AuditEvent.id))).all()
    names = _Names(session)
    what = {"youth-viewed": "overzicht", "access-report": "inzage", WORK_VIEW: "werklijst"}
    result = []
    for event in events:
        kind, _, identifier = event.actor.partition(":")
        professional = find_professional(session, identifier) if kind == "professional" else None
        result.append(
            View(
                institution=names.institution(professional.institution_id, None)
                if professional
                else "",
                person=professional.name if professional else _ACTOR_KINDS.get(kind, kind),
                what=what[event.action],
                date=local_date(event.occurred_at, tz).isoformat(),
            )
        )
    return result


_ACTOR_KINDS = {"operator": "beheerder (console)", "system": "het systeem"}


class _Names:
    """Institution and professional names, looked up once per report."""

    def __init__(self, session: Session):
        self.session = session
        self._professionals: dict[int, Professional | None] = {}

    def professional_row(self, professional_id: int | None) -> Professional | None:
        if professional_id is None:
            return None
        if professional_id not in self._professionals:
            self._professionals[professional_id] = self.session.get(Professional, professional_id)
        return self._professionals[professional_id]

    def professional(self, professional_id: int | None) -> str:
        row = self.professional_row(professional_id)
        return row.name if row else ""

    def institution(self, institution_id: str | None, professional_id: int | None) -> str:
        if institution_id is None:
            row = self.professional_row(professional_id)
            institution_id = row.institution_id if row else None
        institution = self.session.get(Institution, institution_id) if institution_id else None
        return institution.name if institution else (institution_id or "")
