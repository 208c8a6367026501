"""Who receives a notification, and how a professional is shown to others.

A professional who is absent today with a stand-in is notified together with the stand-in, and
correspondents see the stand-in's contact details (DOMAIN: Transfer on absence).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from sqlmodel import Session, col, select

from core.models import Absence, Institution, Municipality, Professional, Role


@dataclass(frozen=True)
class Recipient:
    address: str
    role: str  # professional | stand-in | institution | municipality
    name: str
    professional_id: int | None = None
    institution_id: str | None = None
    slack_id: str | None = None  # Slack user (professional) or channel (institution)
    on_behalf_of: str | None = None  # the absent professional's name, for a stand-in
    # False: Slack only (an institution's coordinator, whose institution's mailbox has the mail).
    mail: bool = True


def current_absence(session: Session, professional_id: int, today: date) -> Absence | None:
    return session.exec(
        select(Absence)
        .where(
            Absence.professional_id == professional_id,
            col(Absence.starts_on) <= today,
            col(Absence.ends_on) >= today,
            col(Absence.ended_at).is_(None),
        )
        .order_by(col(Absence.id).desc())
    ).first()


def current_stand_in(session: Session, professional_id: int, today: date) -> Professional | None:
    absence = current_absence(session, professional_id, today)
    if absence is None or absence.stand_in_id is None:
        return None
    return session.get(Professional, absence.stand_in_id)


def professional_recipient(professional: Professional) -> Recipient:
    """The professional themselves, by mail and (when linked) Slack."""
    return Recipient(
        address=professional.email,
        role="professional",
        name=professional.name,
        professional_id=professional.id,
        institution_id=professional.institution_id,
        slack_id=professional.slack_user_id,
    )


def professional_recipients(
    session: Session, professional: Professional, today: date
) -> list[Recipient]:
    """The professional, and their stand-in while they are away. A professional who left the
    covenant gets nothing: their stand-in, or else their institution, receives it for them
    until their signals are transferred (core.departures)."""
    recipients = [professional_recipient(professional)] if professional.active else []
    stand_in = current_stand_in(session, professional.id or 0, today)
    if stand_in is not None and stand_in.active:
        recipients.append(
            replace(
                professional_recipient(stand_in), role="stand-in", on_behalf_of=professional.name
            )
        )
    elif not professional.active:
        institution = session.get(Institution, professional.institution_id)
        if institution is not None:
            recipients.append(
                replace(
                    institution_recipient(institution),
                    on_behalf_of=f"{professional.name} (niet meer in het convenant)",
                )
            )
    return recipients


def institution_recipient(institution: Institution) -> Recipient:
    return Recipient(
        address=institution.notification_email,
        role="institution",
        name=institution.name,
        institution_id=institution.id,
        slack_id=institution.slack_channel,
    )


def coordinator_recipients(
    session: Session, institution: Institution, today: date
) -> list[Recipient]:
    """Who is asked when ``institution`` is to coordinate (CONTRACT §5): its mailbox (and its
    Slack channel, if any), and its coordinators — the ``institution-admin``s (the covenant's
    *instellingscoördinatoren*) — in Slack, by DM with the buttons, when linked; their stand-in
    while they are away. The institution's mailbox keeps the mail: one per institution."""
    recipients = [institution_recipient(institution)]
    coordinators = session.exec(
        select(Professional)
        .where(Professional.institution_id == institution.id, col(Professional.active))
        .order_by(col(Professional.id))
    ).all()
    seen: set[str] = set()
    for coordinator in coordinators:
        if not coordinator.has_role(Role.INSTITUTION_ADMIN):
            continue
        for person in professional_recipients(session, coordinator, today):
            if person.slack_id and person.slack_id not in seen:
                seen.add(person.slack_id)
                role = "institution-admin" if person.role == "professional" else person.role
                recipients.append(replace(person, role=role, mail=False))
    return recipients


def municipality_recipient(municipality: Municipality) -> Recipient:
    return Recipient(
        address=municipality.contact_email,
        role="municipality",
        name=municipality.contact_name or f"Gemeente {municipality.name}",
    )


def municipality_recipients(session: Session, municipality: Municipality) -> list[Recipient]:
    """The municipality's contact by mail, and by Slack DM when the covenant also lists that
    address as a professional who linked Slack (bot/identity.py links professionals only). The
    contact stays the addressee either way: the answer is the municipality's (core.regie)."""
    recipient = municipality_recipient(municipality)
    person = session.exec(
        select(Professional).where(
            Professional.email == municipality.contact_email.strip().lower(),
            col(Professional.active),
        )
    ).first()
    if person is None or not person.slack_user_id:
        return [recipient]
    return [replace(recipient, slack_id=person.slack_user_id)]


def contact_card(session: Session, professional: Professional, today: date) -> dict[str, Any]:
    """A professional's contact details as correspondents see them (with stand-in, if any)."""
    institution = session.get(Institution, professional.institution_id)
    card: dict[str, Any] = {
        "name": professional.name,
        "email": professional.email,
        "phone": professional.phone or "",
        "institution": institution.name if institution else professional.institution_id,
        "stand_in": None,
    }
    stand_in = current_stand_in(session, professional.id or 0, today)
    if stand_in is not None:
        absence = current_absence(session, professional.id or 0, today)
        card["stand_in"] = {
            "name": stand_in.name,
            "email": stand_in.email,
            "phone": stand_in.phone or "",
            "until": absence.ends_on.isoformat() if absence else "",
        }
    return card


def institution_card(institution: Institution) -> dict[str, Any]:
    return {
        "id": institution.id,
        "name": institution.name,
        "email": institution.notification_email,
        "kind": institution.kind,
    }
