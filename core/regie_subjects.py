"""What the municipality's regie (core.regie) is about, and who answers for it: an escalated or
unassigned coordination, or a stalled match; the municipality of its youth, whose contact alone
may act; the institutions that contact may name as coordinator.

Read functions only, below the commands and the notifications: the escalation notices
(core.notifications) and the regie commands ask the same questions here.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from core.coordination_family import member_youth_ids
from core.errors import InvalidInput, NotFound
from core.free_text import quote
from core.involvement import involved_in_any
from core.match_members import match_members
from core.models import (
    OPEN_STATUSES,
    Coordination,
    CoordinationMember,
    Institution,
    Match,
    Municipality,
    ReplyPurpose,
    Youth,
)

# The reply purposes of the municipality's answers, by the kind of subject (C- or M-).
REGIE_PURPOSES = {
    ReplyPurpose.REGIE_COORDINATION.value: "C",
    ReplyPurpose.REGIE_MATCH.value: "M",
}


@dataclass(frozen=True)
class RegieSubject:
    """A coordination or a match (exactly one), as the municipality sees it."""

    coordination: Coordination | None = None
    match: Match | None = None

    @property
    def number(self) -> str:
        if self.coordination is not None:
            return self.coordination.number
        assert self.match is not None
        return self.match.number

    @property
    def purpose(self) -> str:
        """The reply purpose of a notification that asks the municipality about it."""
        if self.coordination is not None:
            return ReplyPurpose.REGIE_COORDINATION.value
        return ReplyPurpose.REGIE_MATCH.value

    @property
    def subject_id(self) -> int:
        row = self.coordination if self.coordination is not None else self.match
        assert row is not None and row.id is not None
        return row.id


def find_subject(session: Session, reference: str) -> RegieSubject:
    """``C-4`` (a coordination) or ``M-3`` (a match)."""
    prefix, _, number = (reference or "").strip().upper().partition("-")
    if prefix not in ("C", "M") or not number.isdigit():
        raise InvalidInput(
            f"{quote(reference)} is geen referentie van een coördinatie (C-4) of match (M-3)",
            field="referentie",
        )
    if prefix == "C":
        coordination = session.get(Coordination, int(number))
        if coordination is None:
            raise NotFound(f"coördinatie C-{number} bestaat niet (meer)")
        return RegieSubject(coordination=coordination)
    match = session.get(Match, int(number))
    if match is None:
        raise NotFound(f"match M-{number} bestaat niet (meer)")
    return RegieSubject(match=match)


def subject_reference(purpose: str, subject_id: int) -> str:
    """The reference a regie reply token is about (``C-4``, ``M-3``)."""
    return f"{REGIE_PURPOSES[purpose]}-{subject_id}"


def match_youth_id(session: Session, match: Match) -> int | None:
    """The youth a match is about: its own, or (a family match) its first member's."""
    if match.youth_id is not None:
        return match.youth_id
    members = match_members(session, match.id or 0)
    return members[0][1].youth_id if members else None


def subject_youth_id(session: Session, subject: RegieSubject) -> int | None:
    if subject.coordination is not None:
        return subject.coordination.youth_id
    assert subject.match is not None
    return match_youth_id(session, subject.match)


def municipality_of_youth(session: Session, youth_id: int | None) -> Municipality | None:
    """The municipality that answers for the youth (Jeugdwet 7.1.3.2): where it lives now."""
    youth = session.get(Youth, youth_id) if youth_id else None
    return session.get(Municipality, youth.municipality) if youth else None


def responsible_municipality(session: Session, subject: RegieSubject) -> Municipality | None:
    return municipality_of_youth(session, subject_youth_id(session, subject))


def is_contact(municipality: Municipality | None, sender: str) -> bool:
    """Whether ``sender`` is the municipality's contact (regievoerder) in the covenant."""
    return (
        municipality is not None
        and municipality.active
        and municipality.contact_email.strip().lower() == sender.strip().lower()
    )


def may_answer(session: Session, purpose: str, subject_id: int, sender: str) -> bool:
    """The cheap early check of a reply to a regie token (the SMTP listener's RCPT): the sender
    is the contact of the municipality the subject belongs to. The core checks again when the
    answer is carried out (core.regie)."""
    if purpose not in REGIE_PURPOSES:
        return False
    try:
        subject = find_subject(session, subject_reference(purpose, subject_id))
    except NotFound:
        return False
    return is_contact(responsible_municipality(session, subject), sender)


def coordination_for_match(session: Session, match: Match) -> Coordination | None:
    """The open coordination that directs help for a youth of the match (or its family)."""
    youth_ids = sorted({signal.youth_id for _, signal in match_members(session, match.id or 0)})
    if match.youth_id is not None:
        youth_ids = sorted({*youth_ids, match.youth_id})
    if not youth_ids:
        return None
    return session.exec(
        select(Coordination)
        .join(CoordinationMember, col(CoordinationMember.coordination_id) == Coordination.id)
        .where(
            col(CoordinationMember.youth_id).in_(youth_ids),
            col(CoordinationMember.left_at).is_(None),
            col(Coordination.status).in_([s.value for s in OPEN_STATUSES]),
        )
        .order_by(col(Coordination.id))
    ).first()


def assignable_institutions(session: Session, coordination: Coordination) -> list[Institution]:
    """Whom the municipality may name as coordinator: an active institution the covenant lets
    coordinate that is involved with the family, or that serves the youth's municipality (the
    rules' own reach, core.coordination_rules). Involved ones first, then by name."""
    youth_ids = member_youth_ids(session, coordination) or [coordination.youth_id]
    involved = set(involved_in_any(session, youth_ids))
    municipality = municipality_of_youth(session, coordination.youth_id)
    here = municipality.name if municipality else ""
    rows = session.exec(
        select(Institution).where(col(Institution.active), col(Institution.may_coordinate))
    ).all()
    reachable = [i for i in rows if i.id in involved or here in i.municipalities]
    return sorted(reachable, key=lambda i: (i.id not in involved, i.name.casefold()))
