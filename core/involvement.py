"""Who is involved with a youth: institutions with an active registration or active signal."""

from __future__ import annotations

from sqlmodel import Session, col, select

from core.models import Institution, Registration, RegistrationStatus, Signal, SignalStatus


def involved_institution_ids(session: Session, youth_id: int) -> list[str]:
    registered = select(Registration.institution_id).where(
        Registration.youth_id == youth_id, Registration.status == RegistrationStatus.ACTIVE
    )
    signalled = select(Signal.institution_id).where(
        Signal.youth_id == youth_id, Signal.status == SignalStatus.ACTIVE
    )
    ids = set(session.exec(registered).all()) | set(session.exec(signalled).all())
    return sorted(ids)


def active_signals(session: Session, youth_id: int) -> list[Signal]:
    return list(
        session.exec(
            select(Signal)
            .where(Signal.youth_id == youth_id, Signal.status == SignalStatus.ACTIVE)
            .order_by(col(Signal.id))
        ).all()
    )


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
    involved institutions that are active and that the covenant lets coordinate. The one rule
    behind the hand-over command, the choices in the assignment mail and the Slack form."""
    institutions = (
        session.get(Institution, i) for i in involved_institution_ids(session, youth_id)
    )
    return [
        i
        for i in institutions
        if i is not None and i.active and i.may_coordinate and i.id != current_institution_id
    ]
