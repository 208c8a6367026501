"""Notifications of the municipality's regie (core.regie): the answers an escalation offers the
municipality's contact, and ``gemeente-regie``, which tells the parties what the municipality
did (and asks the municipality, after REGIE, whom it names or why it closes).

Contexts hold references, institutions and the municipality contact's details — never a
youth's identity. The free-text toelichting of AFGEROND is the municipality's own words to the
parties, checked like every reason (core.free_text).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement
from sqlmodel import Session, col, or_, select

from core.clock import local_date
from core.config import CoreConfig
from core.events import MunicipalityActedEvent
from core.involvement import active_signals_of, involved_in_any
from core.match_members import match_members
from core.models import (
    Coordination,
    CoordinationMember,
    Institution,
    Match,
    Municipality,
    MunicipalityAction,
    MunicipalityActionKind,
    Professional,
)
from core.notifications.dispatch import ReplyRequest, notify
from core.notifications.recipients import (
    Recipient,
    institution_card,
    institution_recipient,
    municipality_recipients,
    professional_recipients,
)
from core.regie_subjects import RegieSubject, assignable_institutions, coordination_for_match


def escalation_reply(subject: RegieSubject) -> ReplyRequest:
    """An escalation asks the municipality for REGIE, AANWIJZEN or AFGEROND."""
    return ReplyRequest(subject.purpose, subject.subject_id)


def assign_choices(session: Session, subject: RegieSubject) -> list[dict[str, Any]]:
    """The institutions AANWIJZEN may name (the mail lists their ids, Slack offers a select)."""
    coordination = subject.coordination
    if coordination is None:
        assert subject.match is not None
        coordination = coordination_for_match(session, subject.match)
    if coordination is None:
        return []
    return [institution_card(i) for i in assignable_institutions(session, coordination)]


def on_municipality_acted(
    session: Session, config: CoreConfig, event: MunicipalityActedEvent
) -> None:
    action = session.get(MunicipalityAction, event.action_id)
    assert action is not None
    municipality = session.get(Municipality, action.municipality)
    assert municipality is not None
    subject = _subject(session, action)
    target = session.get(Institution, action.institution_id) if action.institution_id else None
    context: dict[str, Any] = {
        "action": action.action,
        "subject_number": subject.number,
        "is_match": subject.match is not None,
        "municipality": municipality.name,
        "municipality_contact": {
            "name": municipality.contact_name or f"Gemeente {municipality.name}",
            "email": municipality.contact_email,
        },
        "note": action.note or "",
        "institution": institution_card(target) if target else None,
        "assign_options": [],
    }
    # The named institution hears it from its own assignment mail (coordinatie-toegewezen).
    parties = [
        r
        for r in _parties(session, config, subject, event)
        if target is None or r.role != "institution" or r.institution_id != target.id
    ]
    key = f"MA-{action.id}"
    notify(
        session,
        config,
        kind="gemeente-regie",
        recipients=parties,
        reference=subject.number,
        context=context,
        key=key,
        now=event.at,
    )
    if action.action == MunicipalityActionKind.REGIE:
        # The municipality now holds it: its copy asks whom it names, or why it closes.
        notify(
            session,
            config,
            kind="gemeente-regie",
            recipients=municipality_recipients(session, municipality),
            reference=subject.number,
            context={**context, "assign_options": assign_choices(session, subject)},
            key=key,
            now=event.at,
            reply=escalation_reply(subject),
        )


def _subject(session: Session, action: MunicipalityAction) -> RegieSubject:
    if action.coordination_id is not None:
        return RegieSubject(coordination=session.get(Coordination, action.coordination_id))
    return RegieSubject(match=session.get(Match, action.match_id))


def _parties(
    session: Session, config: CoreConfig, subject: RegieSubject, event: MunicipalityActedEvent
) -> list[Recipient]:
    """Who hears of the municipality's action: for a coordination the institutions involved
    with the family and the professionals with an active signal on it; for a match its
    professionals (or their stand-ins)."""
    today = local_date(event.at, config.tz)
    if subject.coordination is not None:
        youth_ids = _family_of(session, subject.coordination)
        recipients = [
            institution_recipient(i)
            for i in (session.get(Institution, x) for x in involved_in_any(session, youth_ids))
            if i is not None and i.active
        ]
        professional_ids = [s.professional_id for s in active_signals_of(session, youth_ids)]
    else:
        assert subject.match is not None
        recipients = []
        professional_ids = [
            s.professional_id for _, s in match_members(session, subject.match.id or 0)
        ]
    for professional_id in dict.fromkeys(professional_ids):
        professional = session.get(Professional, professional_id)
        if professional is not None:
            recipients += professional_recipients(session, professional, today)
    return recipients


def _family_of(session: Session, coordination: Coordination) -> list[int]:
    """The youths the coordination covers; once it ended, those who were in it at the end."""
    where: ColumnElement[bool] = col(CoordinationMember.left_at).is_(None)
    if coordination.ended_at is not None:
        where = or_(where, CoordinationMember.left_at == coordination.ended_at)
    members = session.exec(
        select(CoordinationMember.youth_id).where(
            CoordinationMember.coordination_id == coordination.id, where
        )
    ).all()
    return sorted(set(members)) or [coordination.youth_id]
