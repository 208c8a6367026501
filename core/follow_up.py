"""Match follow-up (Jeugdwet 7.1.3.2): matched professionals confirm they made contact; a
reminder goes out halfway, and a match that stalls past its deadline goes to the
municipality contact."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Session, col, select

from core import audit
from core.actors import acting_professional
from core.clock import local_date, utcnow
from core.config import CoreConfig
from core.errors import Conflict, NotAllowed, NotFound
from core.events import MatchContactConfirmedEvent, MatchEscalatedEvent, MatchFollowUpDueEvent
from core.match_members import match_members
from core.models import Match, MatchStatus, Professional
from core.notifications import publish
from core.notifications.recipients import current_stand_in


def confirm_match_contact(
    match_id: int,
    *,
    session: Session,
    config: CoreConfig,
    actor: audit.Actor,
    now: datetime | None = None,
) -> Match:
    """Confirm "CONTACT GELEGD": the acting professional (or their stand-in) made contact."""
    now = now or utcnow()
    me = acting_professional(session, actor)
    match = session.get(Match, match_id)
    if match is None:
        raise NotFound(f"match M-{match_id} bestaat niet (meer)")
    if match.status != MatchStatus.ACTIVE:
        raise Conflict(f"{match.number} is beëindigd")
    today = local_date(now, config.tz)
    mine = [
        (member, signal)
        for member, signal in match_members(session, match_id)
        if _acts_for(session, me, signal.professional_id, today)
    ]
    if not mine:
        raise NotAllowed(f"u bent geen deelnemer aan {match.number}")
    confirmed = []
    for member, signal in mine:
        if member.contact_confirmed_at is None:
            member.contact_confirmed_at = now
            session.add(member)
            confirmed.append(signal.professional_id)
    audit.record(
        session,
        actor,
        "match-contact-confirmed",
        f"youth:{match.youth_id}" if match.youth_id else f"match:{match.id}",
        details={"match": match.number},
        at=now,
    )
    if confirmed:  # the question is answered: its Slack messages lose their buttons
        publish(
            session,
            config,
            MatchContactConfirmedEvent(
                at=now,
                match_id=match.id or 0,
                professional_id=me.id or 0,
                for_professional_ids=tuple(dict.fromkeys(confirmed)),
            ),
        )
    return match


def _acts_for(session: Session, me: Professional, professional_id: int, today: date) -> bool:
    """``me`` is the professional, or their stand-in today (DOMAIN: Transfer on absence)."""
    if professional_id == me.id:
        return True
    stand_in = current_stand_in(session, professional_id, today)
    return stand_in is not None and stand_in.id == me.id


def sweep_match_follow_up(session: Session, config: CoreConfig, now: datetime) -> dict[str, int]:
    counts = {"match_reminders": 0, "match_escalations": 0}
    matches = session.exec(
        select(Match).where(
            Match.status == MatchStatus.ACTIVE,
            col(Match.escalated_at).is_(None),
            col(Match.follow_up_due_at).is_not(None),
        )
    ).all()
    for match in matches:
        unconfirmed = [
            m for m, _ in match_members(session, match.id or 0) if m.contact_confirmed_at is None
        ]
        if not unconfirmed:
            continue
        assert match.follow_up_due_at is not None
        if match.follow_up_due_at <= now:
            match.escalated_at = now
            session.add(match)
            audit.record(
                session,
                audit.SYSTEM,
                "match-escalated",
                f"match:{match.id}",
                details={"match": match.number},
                at=now,
            )
            publish(session, config, MatchEscalatedEvent(at=now, match_id=match.id or 0))
            counts["match_escalations"] += 1
        elif (
            match.follow_up_reminded_at is None
            and match.follow_up_remind_at is not None
            and match.follow_up_remind_at <= now
        ):
            match.follow_up_reminded_at = now
            session.add(match)
            publish(session, config, MatchFollowUpDueEvent(at=now, match_id=match.id or 0))
            counts["match_reminders"] += 1
    return counts
