"""Who is involved with a youth or its family: institutions with an active registration or
active signal. A family's coordination looks at all the youths it covers (its members)."""

from __future__ import annotations

from collections.abc import Collection

from sqlmodel import Session, col, select

from core.models import (
    OPEN_STATUSES,
    Coordination,
    CoordinationMember,
    Institution,
    Registration,
    RegistrationStatus,
    Signal,
    SignalStatus,
)


def involved_institution_ids(session: Session, youth_id: int) -> list[str]:
    return involved_in_any(session, [youth_id])


def involved_in_any(session: Session, youth_ids: Collection[int]) -> list[str]:
    """The institutions involved with at least one of the youths (a family's union)."""
    registered = select(Registration.institution_id).where(
        col(Registration.youth_id).in_(youth_ids),
        Registration.status == RegistrationStatus.ACTIVE,
    )
    signalled = select(Signal.institution_id).where(
        col(Signal.youth_id).in_(youth_ids), Signal.status == SignalStatus.ACTIVE
    )
    ids = set(session.exec(registered).all()) | set(session.exec(signalled).all())
    return sorted(ids)


def active_signals(session: Session, youth_id: int) -> list[Signal]:
    return active_signals_of(session, [youth_id])


def active_signals_of(session: Session, youth_ids: Collection[int]) -> list[Signal]:
    return list(
        session.exec(
            select(Signal)
            .where(col(Signal.youth_id).in_(youth_ids), Signal.status == SignalStatus.ACTIVE)
            .order_by(col(Signal.id))
        ).all()
    )


def covered_youth_ids(session: Session, youth_id: int) -> list[int]:
    """The youths whose help the youth's open coordination directs (its family), the youth
    itself included; just the youth when it has none."""
    coordination = (
        select(CoordinationMember.coordination_id)
        .join(Coordination, col(Coordination.id) == CoordinationMember.coordination_id)
        .where(
            CoordinationMember.youth_id == youth_id,
            col(CoordinationMember.left_at).is_(None),
            col(Coordination.status).in_([s.value for s in OPEN_STATUSES]),
        )
    )
    members = session.exec(
        select(CoordinationMember.youth_id).where(
            col(CoordinationMember.coordination_id).in_(coordination),
            col(CoordinationMember.left_at).is_(None),
        )
    ).all()
    return sorted(set(members) | {youth_id})


def institution_reference(session: Session, youth_id: int, institution_id: str) -> str | None:
    """The institution's own client reference (kenmerk) for this youth, if it registered one."""
    return session.exec(
        select(Registration.reference).where(
            Registration.youth_id == youth_id, Registration.institution_id == institution_id
        )
    ).first()


def takeover_candidates(
    session: Session, youth_id: int, current_institution_id: str | None
) -> list[Institution]:
    """Who may take over a youth's coordination from ``current_institution_id``: the other
    institutions involved with the youth or its family (the coordination's members) that are
    active and that the covenant lets coordinate. The one rule behind the hand-over command,
    the choices in the assignment mail and the Slack form."""
    involved = involved_in_any(session, covered_youth_ids(session, youth_id))
    institutions = (session.get(Institution, i) for i in involved)
    return [
        i
        for i in institutions
        if i is not None and i.active and i.may_coordinate and i.id != current_institution_id
    ]
