"""A coordinator's successor, proposed by the rules after a move (issue 11.5, Jeugdwet
7.1.2.3 g): the current coordinator keeps the coordination until the proposed institution
accepts it; a decline asks the next candidate, and when the rules' next choice is the current
coordinator again, nothing changes.

Below :mod:`core.coordination` (which calls :func:`proposal_for`, :func:`take_over` and
:func:`decline` from its accept and decline commands, so a reply AKKOORD or WEIGER to the
proposal, or its Slack buttons, land here); the candidates come from there, ranked by the
covenant's rules (:func:`core.coordination.candidates`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from core import audit
from core.config import CoreConfig
from core.coordination_family import member_youth_ids
from core.coordination_rules import Candidate
from core.errors import Conflict
from core.events import CoordinationAcceptedEvent, CoordinationSuccessorDeclinedEvent
from core.free_text import check_free_text
from core.involvement import institution_reference, involved_in_any
from core.models import (
    OPEN_STATUSES,
    Coordination,
    CoordinationStatus,
    CoordinationSuccession,
    Institution,
    ReplyPurpose,
    SuccessionStatus,
)
from core.notifications import publish
from core.notifications.dispatch import ReplyRequest, notify
from core.notifications.recipients import institution_card, institution_recipient

KIND = "coordinatie-overname"


def open_succession(session: Session, coordination_id: int) -> CoordinationSuccession | None:
    return session.exec(
        select(CoordinationSuccession).where(
            CoordinationSuccession.coordination_id == coordination_id,
            CoordinationSuccession.status == SuccessionStatus.PROPOSED,
        )
    ).first()


def proposal_for(
    session: Session, coordination: Coordination, institution_id: str | None
) -> CoordinationSuccession | None:
    """The open proposal to ``institution_id`` to take the coordination over, if any."""
    succession = open_succession(session, coordination.id or 0)
    if succession is None or institution_id is None:
        return None
    return succession if succession.institution_id == institution_id else None


def reconsider(
    session: Session,
    config: CoreConfig,
    coordination: Coordination,
    ranked: Sequence[Candidate],
    *,
    occasion: str,
    now: datetime,
) -> CoordinationSuccession | None:
    """Propose the rules' first choice (``ranked``, from :func:`core.coordination.candidates`)
    as successor when it is not the current coordinator; withdraw a proposal the rules no
    longer make. Institutions that declined this coordination, or declined succeeding it on
    this occasion, are passed over. Returns the open proposal, if any."""
    current = open_succession(session, coordination.id or 0)
    passed_over = {d["institution_id"] for d in coordination.declined} | set(
        session.exec(
            select(CoordinationSuccession.institution_id).where(
                CoordinationSuccession.coordination_id == coordination.id,
                CoordinationSuccession.status == SuccessionStatus.DECLINED,
                CoordinationSuccession.occasion == occasion[:200],
            )
        ).all()
    )
    options = [c for c in ranked if c.institution_id not in passed_over]
    choice = options[0] if options else None
    if choice is None or choice.institution_id == coordination.institution_id:
        if current is not None:
            withdraw(session, current, now)
        return None
    if current is not None:
        if current.institution_id == choice.institution_id:
            return current  # the same proposal stands (a second move, the same outcome)
        withdraw(session, current, now)
    return _propose(session, config, coordination, choice, occasion=occasion, now=now)


def _propose(
    session: Session,
    config: CoreConfig,
    coordination: Coordination,
    choice: Candidate,
    *,
    occasion: str,
    now: datetime,
) -> CoordinationSuccession:
    succession = CoordinationSuccession(
        coordination_id=coordination.id or 0,
        from_institution_id=coordination.institution_id,
        institution_id=choice.institution_id,
        rule_name=choice.rule_name[:100],
        rule_reason=choice.reason[:500],
        occasion=occasion[:200],
        proposed_at=now,
        due_at=config.calendar.deadline_after(now, coordination.response_working_days),
    )
    session.add(succession)
    session.flush()
    audit.record(
        session,
        audit.SYSTEM,
        "coordination-successor-proposed",
        f"youth:{coordination.youth_id}",
        details={
            "coordination": coordination.number,
            "from": coordination.institution_id,
            "to": choice.institution_id,
            "rule": choice.rule_name,
        },
        at=now,
    )
    successor = session.get(Institution, choice.institution_id)
    assert successor is not None
    notify(
        session,
        config,
        kind=KIND,
        recipients=[institution_recipient(successor)],
        reference=coordination.number,
        context=_context(session, coordination, succession),
        key=f"{coordination.number}:opvolging-{succession.id}",
        now=now,
        reply=ReplyRequest(ReplyPurpose.COORDINATION.value, coordination.id or 0),
    )
    return succession


def _context(
    session: Session, coordination: Coordination, succession: CoordinationSuccession
) -> dict[str, Any]:
    youths = member_youth_ids(session, coordination) or [coordination.youth_id]
    current = (
        session.get(Institution, coordination.institution_id)
        if coordination.institution_id
        else None
    )
    references = (
        institution_reference(session, youth_id, succession.institution_id) for youth_id in youths
    )
    involved = (session.get(Institution, i) for i in involved_in_any(session, youths))
    return {
        "coordination_number": coordination.number,
        "current": institution_card(current) if current else None,
        "current_accepted": coordination.status == CoordinationStatus.ACCEPTED,
        "occasion": succession.occasion,
        "rule_name": succession.rule_name,
        "rule_reason": succession.rule_reason,
        "due": succession.due_at.isoformat() if succession.due_at else "",
        "own_reference": ", ".join(r for r in references if r),
        "involved": [institution_card(i) for i in involved if i is not None],
        "hand_over_options": [],  # taking over is yes or no: no hand-over from here
    }


def withdraw(session: Session, succession: CoordinationSuccession, now: datetime) -> None:
    succession.status = SuccessionStatus.WITHDRAWN
    succession.answered_at = now
    session.add(succession)


def withdraw_open(session: Session, coordination: Coordination, now: datetime) -> None:
    """The coordination was reassigned or ended: a pending proposal no longer applies."""
    current = open_succession(session, coordination.id or 0)
    if current is not None:
        withdraw(session, current, now)


def _check_still_valid(coordination: Coordination, succession: CoordinationSuccession) -> None:
    if (
        coordination.status not in OPEN_STATUSES
        or coordination.institution_id != succession.from_institution_id
    ):
        raise Conflict(
            f"{coordination.number} is intussen gewijzigd; het voorstel om de coördinatie over "
            "te nemen is vervallen"
        )


def take_over(
    session: Session,
    config: CoreConfig,
    coordination: Coordination,
    succession: CoordinationSuccession,
    actor: audit.Actor,
    now: datetime,
) -> Coordination:
    """The proposed institution accepts: from now on it coordinates (accepted at once)."""
    try:
        _check_still_valid(coordination, succession)
    except Conflict:
        withdraw(session, succession, now)
        session.flush()
        raise
    previous = coordination.institution_id
    coordination.institution_id = succession.institution_id
    coordination.rule_name = succession.rule_name
    coordination.rule_reason = succession.rule_reason
    coordination.status = CoordinationStatus.ACCEPTED
    coordination.accepted_at = now
    coordination.accepted_by = actor.identifier
    coordination.assigned_at = now
    coordination.due_at = coordination.remind_at = None
    coordination.reminded_at = coordination.escalated_at = None
    coordination.round += 1
    succession.status = SuccessionStatus.ACCEPTED
    succession.answered_at = now
    succession.answered_by = actor.identifier
    session.add(coordination)
    session.add(succession)
    session.flush()
    audit.record(
        session,
        actor,
        "coordination-taken-over",
        f"youth:{coordination.youth_id}",
        details={
            "coordination": coordination.number,
            "from": previous,
            "to": succession.institution_id,
        },
        at=now,
    )
    # Everyone involved (the previous coordinator too, when involved) hears who coordinates.
    publish(
        session, config, CoordinationAcceptedEvent(at=now, coordination_id=coordination.id or 0)
    )
    return coordination


def decline(
    session: Session,
    config: CoreConfig,
    coordination: Coordination,
    succession: CoordinationSuccession,
    reason: str,
    actor: audit.Actor,
    now: datetime,
    *,
    ranked: Sequence[Candidate],
) -> CoordinationSuccession | None:
    """The proposed institution declines: the next candidate is asked, or the current
    coordinator simply keeps it. Returns the next proposal, if any."""
    check_free_text(reason, "reden", multiline=True)
    _check_still_valid(coordination, succession)
    succession.status = SuccessionStatus.DECLINED
    succession.answered_at = now
    succession.answered_by = actor.identifier
    succession.reason = reason[:500]
    session.add(succession)
    session.flush()
    audit.record(
        session,
        actor,
        "coordination-successor-declined",
        f"youth:{coordination.youth_id}",
        details={"coordination": coordination.number, "institution": succession.institution_id},
        at=now,
    )
    publish(
        session,
        config,
        CoordinationSuccessorDeclinedEvent(
            at=now, coordination_id=coordination.id or 0, succession_id=succession.id or 0
        ),
    )
    return reconsider(session, config, coordination, ranked, occasion=succession.occasion, now=now)
