"""Resolving who acts, and the role checks every command shares; the read functions the
transports ask who someone is (they run no queries of their own on these tables)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar

from sqlmodel import Session, col, select

from core.audit import Actor
from core.errors import NotAllowed, NotFound
from core.models import Institution, Professional, Role


def find_professional(session: Session, email: str) -> Professional | None:
    return session.exec(
        select(Professional).where(Professional.email == email.strip().lower())
    ).first()


def professionals_by_id(session: Session, ids: Iterable[int | None]) -> dict[int, Professional]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    rows = session.exec(select(Professional).where(col(Professional.id).in_(wanted))).all()
    return {p.id: p for p in rows if p.id is not None}


def active_professionals_with_role(
    session: Session, institution_id: str, role: Role
) -> list[Professional]:
    """The institution's active professionals who have ``role``, by name."""
    people = session.exec(
        select(Professional)
        .where(Professional.institution_id == institution_id, col(Professional.active))
        .order_by(col(Professional.name))
    ).all()
    return [p for p in people if p.has_role(role)]


def professionals_with_slack_user(session: Session, user_id: str) -> list[Professional]:
    return list(
        session.exec(select(Professional).where(Professional.slack_user_id == user_id)).all()
    )


class SendsFor(Protocol):
    """What the sender rules read of an institution (a row, or ``core.sender_directory``'s)."""

    @property
    def allowed_senders(self) -> Sequence[str]: ...
    @property
    def notification_email(self) -> str: ...


_Sender = TypeVar("_Sender", bound=SendsFor)


def sender_allowed(institution: SendsFor, address: str) -> bool:
    """Whether ``address`` may send for the institution: one of its allowed senders (an address,
    or ``@domain``), or its notification mailbox."""
    address = address.strip().lower()
    for allowed in institution.allowed_senders:
        allowed = allowed.strip().lower()
        if allowed.startswith("@") and address.endswith(allowed):
            return True
        if address == allowed:
            return True
    return address == institution.notification_email.lower()


def institution_for_sender(institutions: Sequence[_Sender], address: str) -> _Sender | None:
    """Of ``institutions`` (the active ones), the one that allows ``address``: an exact address
    beats a domain."""
    address = address.strip().lower()
    exact = [i for i in institutions if address in (s.lower() for s in i.allowed_senders)]
    if exact:
        return exact[0]
    return next((i for i in institutions if sender_allowed(i, address)), None)


def require_known_professional(
    session: Session, email: str, *, field: str | None = None
) -> Professional:
    """A professional the covenant lists or listed: the source of a transfer may have left
    (core.departures) — their signals must still be handed on."""
    professional = find_professional(session, email)
    if professional is None:
        raise NotFound(f"{email} is geen hulpverlener in het convenant", field=field)
    return professional


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
