"""Resolving who acts, and the role checks every command shares."""

from __future__ import annotations

from sqlmodel import Session, select

from core.audit import Actor
from core.errors import NotAllowed, NotFound
from core.models import Institution, Professional, Role


def find_professional(session: Session, email: str) -> Professional | None:
    return session.exec(
        select(Professional).where(Professional.email == email.strip().lower())
    ).first()


def require_professional(session: Session, email: str, *, field: str | None = None) -> Professional:
    professional = find_professional(session, email)
    if professional is None or not professional.active:
        raise NotFound(f"{email} is geen (actieve) hulpverlener in het convenant", field=field)
    return professional


def professional_actor(professional: Professional, channel: str) -> Actor:
    return Actor(
        kind="professional",
        identifier=professional.email,
        channel=channel,
        professional_id=professional.id,
        institution_id=professional.institution_id,
    )


def institution_actor(institution_id: str, channel: str) -> Actor:
    return Actor(
        kind="institution",
        identifier=institution_id,
        channel=channel,
        institution_id=institution_id,
    )


def acting_professional(session: Session, actor: Actor) -> Professional:
    """The active professional behind ``actor``, or NotAllowed."""
    if actor.professional_id is None:
        raise NotAllowed("alleen een hulpverlener uit het convenant kan dit doen")
    professional = session.get(Professional, actor.professional_id)
    if professional is None or not professional.active:
        raise NotAllowed("uw account is niet (meer) actief in het convenant")
    return professional


def acting_institution(session: Session, actor: Actor) -> Institution:
    if actor.institution_id is None:
        raise NotAllowed("alleen een instelling uit het convenant kan dit doen")
    institution = session.get(Institution, actor.institution_id)
    if institution is None or not institution.active:
        raise NotAllowed("deze instelling is niet (meer) actief in het convenant")
    return institution


def is_admin(professional: Professional) -> bool:
    return professional.has_role(Role.ADMIN)


def may_administer(professional: Professional, institution_id: str) -> bool:
    """Jeugdwet 7.1.3.3: the institution's coordinator (institution-admin) or the region's
    functional administrator may change what belongs to an institution."""
    return is_admin(professional) or (
        professional.has_role(Role.INSTITUTION_ADMIN)
        and professional.institution_id == institution_id
    )
