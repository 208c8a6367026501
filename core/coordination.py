"""Process coordination (DOMAIN step 3): assign, accept, decline, hand over, remind, escalate.

A youth needs a coordinator when at least two institutions are involved and at least one signal
is active. Candidates: first a sibling's accepted coordinator (one family, one coordinator), then
the institutions picked by the covenant's rules, involved institutions first. Only institutions
flagged ``may_coordinate`` are ever assigned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from core import audit
from core.clock import local_date, utcnow
from core.config import CoreConfig
from core.coordination_rules import CoordinationFacts, matching_rules
from core.errors import Conflict, InvalidInput, NotAllowed, NotFound
from core.events import (
    CoordinationAcceptedEvent,
    CoordinationAssignedEvent,
    CoordinationEscalatedEvent,
    CoordinationReminderDueEvent,
)
from core.free_text import check_free_text, quote
from core.involvement import active_signals, involved_institution_ids, takeover_candidates
from core.models import (
    OPEN_STATUSES,
    Coordination,
    CoordinationStatus,
    Institution,
    Professional,
    Signal,
    Youth,
    YouthParent,
)
from core.notifications import publish
from core.working_days import halfway
from core.youths import age_of, lock_youth, parent_keys_of


@dataclass(frozen=True)
class Candidate:
    institution_id: str
    rule_name: str
    reason: str


def open_coordination(session: Session, youth_id: int) -> Coordination | None:
    return session.exec(
        select(Coordination).where(
            Coordination.youth_id == youth_id,
            col(Coordination.status).in_([s.value for s in OPEN_STATUSES]),
        )
    ).first()


def reconcile_coordination(
    session: Session, config: CoreConfig, youth_id: int, now: datetime
) -> Coordination | None:
    involved = involved_institution_ids(session, youth_id)
    signals = active_signals(session, youth_id)
    current = open_coordination(session, youth_id)
    if len(involved) < 2 or not signals:
        if current is not None:
            current.status = CoordinationStatus.ENDED
            current.ended_at = now
            session.add(current)
            audit.record(
                session,
                audit.SYSTEM,
                "coordination-ended",
                f"youth:{youth_id}",
                details={"coordination": current.number},
                at=now,
            )
        return None
    days = min(config.response_working_days(s.code) for s in signals)
    if current is not None:
        _tighten_deadline(config, current, days, now)
        return current
    coordination = Coordination(youth_id=youth_id, rule_name="", rule_reason="", assigned_at=now)
    _assign_next(session, config, coordination, days, now)
    return coordination


def _tighten_deadline(
    config: CoreConfig, coordination: Coordination, days: int, now: datetime
) -> None:
    """A more urgent signal arriving while the assignment waits shortens the deadline."""
    if coordination.status != CoordinationStatus.PENDING or coordination.due_at is None:
        return
    due = config.calendar.deadline_after(now, days)
    if due < coordination.due_at:
        coordination.due_at = due
        coordination.remind_at = halfway(now, due)
        coordination.response_working_days = days
        # A reminder sent for the old deadline named the old date: remind again before the
        # new one, or the institution is escalated before the date it was told.
        coordination.reminded_at = None


def candidates(
    session: Session, config: CoreConfig, youth: Youth, now: datetime
) -> list[Candidate]:
    involved = involved_institution_ids(session, youth.id or 0)
    institutions = {
        i.id: i for i in session.exec(select(Institution).where(Institution.active)).all()
    }
    result: list[Candidate] = []
    sibling = _sibling_coordinator(session, youth)
    if sibling is not None and sibling in institutions and institutions[sibling].may_coordinate:
        result.append(
            Candidate(
                sibling,
                "gezin",
                f"een broer of zus heeft al {institutions[sibling].name} als procescoördinator "
                "(1 gezin, 1 plan, 1 procescoördinator)",
            )
        )
    facts = CoordinationFacts(
        municipality=youth.municipality,
        age=age_of(config, youth, local_date(now, config.tz)),
        involved_kinds=frozenset(institutions[i].kind for i in involved if i in institutions),
    )
    for decision in matching_rules(config.covenant.coordination_rules, facts):
        of_kind = [
            i for i in institutions.values() if i.kind == decision.assign_kind and i.may_coordinate
        ]
        # Involved institutions first, then those serving the youth's municipality.
        ranked = [i for i in of_kind if i.id in involved] + [
            i for i in of_kind if i.id not in involved and youth.municipality in i.municipalities
        ]
        for institution in ranked:
            where = "betrokken" if institution.id in involved else f"werkt in {youth.municipality}"
            result.append(
                Candidate(
                    institution.id,
                    decision.rule_name,
                    f"{decision.reason}; {institution.name} ({where})",
                )
            )
    unique: dict[str, Candidate] = {}
    for candidate in result:
        unique.setdefault(candidate.institution_id, candidate)
    return list(unique.values())


def _sibling_coordinator(session: Session, youth: Youth) -> str | None:
    keys = parent_keys_of(session, youth.id or 0)
    if not keys:
        return None
    siblings = select(YouthParent.youth_id).where(
        col(YouthParent.parent_key).in_(keys), YouthParent.youth_id != youth.id
    )
    return session.exec(
        select(Coordination.institution_id)
        .where(
            col(Coordination.youth_id).in_(siblings),
            Coordination.status == CoordinationStatus.ACCEPTED,
        )
        .order_by(col(Coordination.accepted_at).desc())
    ).first()


def _assign_next(
    session: Session,
    config: CoreConfig,
    coordination: Coordination,
    days: int,
    now: datetime,
    *,
    handed_over_from: str | None = None,
    forced: Candidate | None = None,
) -> None:
    youth = session.get(Youth, coordination.youth_id)
    assert youth is not None
    declined = {d["institution_id"] for d in coordination.declined}
    options = (
        [forced]
        if forced
        else [
            c for c in candidates(session, config, youth, now) if c.institution_id not in declined
        ]
    )
    coordination.assigned_at = now
    coordination.response_working_days = days
    coordination.reminded_at = None
    coordination.escalated_at = None
    # A new assignee (after a decline or a hand-over) has not accepted anything yet.
    coordination.accepted_at = None
    coordination.accepted_by = None
    if not options:
        coordination.institution_id = None
        coordination.status = CoordinationStatus.UNASSIGNED
        coordination.rule_name = coordination.rule_name or "geen-kandidaat"
        coordination.rule_reason = "geen instelling kan of wil de coördinatie op zich nemen"
        coordination.due_at = None
        coordination.remind_at = None
        coordination.escalated_at = now
        session.add(coordination)
        session.flush()
        audit.record(
            session,
            audit.SYSTEM,
            "coordination-unassigned",
            f"youth:{youth.id}",
            details={"coordination": coordination.number},
            at=now,
        )
        publish(
            session,
            config,
            CoordinationEscalatedEvent(
                at=now,
                coordination_id=coordination.id or 0,
                reason="all-declined",
                round=coordination.round,
            ),
        )
        return
    choice = options[0]
    coordination.institution_id = choice.institution_id
    coordination.rule_name = choice.rule_name
    coordination.rule_reason = choice.reason
    coordination.status = CoordinationStatus.PENDING
    coordination.due_at = config.calendar.deadline_after(now, days)
    coordination.remind_at = halfway(now, coordination.due_at)
    session.add(coordination)
    session.flush()
    audit.record(
        session,
        audit.SYSTEM,
        "coordination-assigned",
        f"youth:{youth.id}",
        details={
            "coordination": coordination.number,
            "institution": choice.institution_id,
            "rule": choice.rule_name,
            "reason": choice.reason,
        },
        at=now,
    )
    publish(
        session,
        config,
        CoordinationAssignedEvent(
            at=now,
            coordination_id=coordination.id or 0,
            handed_over_from=handed_over_from,
            round=coordination.round,
        ),
    )


def find_coordination(session: Session, coordination_id: int) -> Coordination:
    coordination = session.get(Coordination, coordination_id)
    if coordination is None:
        raise NotFound(f"coördinatie C-{coordination_id} bestaat niet (meer)")
    lock_youth(session, coordination.youth_id)
    session.refresh(coordination)
    return coordination


def _check_assignee(session: Session, coordination: Coordination, actor: audit.Actor) -> None:
    if coordination.status != CoordinationStatus.PENDING:
        raise Conflict(
            f"{coordination.number} wacht niet (meer) op een antwoord "
            f"(status: {_status_nl(coordination.status)})"
        )
    if actor.institution_id != coordination.institution_id:
        raise NotAllowed(
            f"{coordination.number} is toegewezen aan een andere instelling; "
            "alleen die kan antwoorden"
        )


def _status_nl(status: str) -> str:
    return {
        "pending": "wacht op antwoord",
        "accepted": "geaccepteerd",
        "unassigned": "niet toegewezen",
        "ended": "beëindigd",
    }.get(status, status)


def accept_coordination(
    coordination_id: int,
    *,
    session: Session,
    config: CoreConfig,
    actor: audit.Actor,
    now: datetime | None = None,
) -> Coordination:
    now = now or utcnow()
    coordination = find_coordination(session, coordination_id)
    _check_assignee(session, coordination, actor)
    coordination.status = CoordinationStatus.ACCEPTED
    coordination.accepted_at = now
    coordination.accepted_by = actor.identifier
    session.add(coordination)
    session.flush()
    audit.record(
        session,
        actor,
        "coordination-accepted",
        f"youth:{coordination.youth_id}",
        details={"coordination": coordination.number, "institution": coordination.institution_id},
        at=now,
    )
    publish(
        session, config, CoordinationAcceptedEvent(at=now, coordination_id=coordination.id or 0)
    )
    return coordination


def decline_coordination(
    coordination_id: int,
    reason: str,
    *,
    session: Session,
    config: CoreConfig,
    actor: audit.Actor,
    now: datetime | None = None,
) -> Coordination:
    """Decline with a reason; the next candidate is assigned, or the municipality is asked."""
    now = now or utcnow()
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("geef een reden bij het weigeren (WEIGER <reden>)", field="reden")
    check_free_text(reason, "reden", multiline=True)
    coordination = find_coordination(session, coordination_id)
    _check_assignee(session, coordination, actor)
    declined_by = coordination.institution_id or ""
    coordination.declined = [
        *coordination.declined,
        {"institution_id": declined_by, "reason": reason[:500], "at": now.isoformat()},
    ]
    coordination.round += 1
    audit.record(
        session,
        actor,
        "coordination-declined",
        f"youth:{coordination.youth_id}",
        details={"coordination": coordination.number, "institution": declined_by},
        at=now,
    )
    _assign_next(session, config, coordination, coordination.response_working_days, now)
    return coordination


def hand_over_coordination(
    coordination_id: int,
    target_institution_id: str,
    *,
    session: Session,
    config: CoreConfig,
    actor: audit.Actor,
    now: datetime | None = None,
) -> Coordination:
    """Hand over to another involved institution that may coordinate (it must then accept)."""
    now = now or utcnow()
    coordination = find_coordination(session, coordination_id)
    if coordination.status not in (CoordinationStatus.PENDING, CoordinationStatus.ACCEPTED):
        raise Conflict(f"{coordination.number} kan nu niet worden overgedragen")
    if actor.institution_id != coordination.institution_id:
        raise NotAllowed(f"alleen de coördinerende instelling kan {coordination.number} overdragen")
    target = session.get(Institution, (target_institution_id or "").strip().lower())
    if target is None or not target.active:
        raise InvalidInput(
            f"onbekende instelling {quote(target_institution_id)}", field="instelling"
        )
    candidates = takeover_candidates(session, coordination.youth_id, coordination.institution_id)
    if target not in candidates:
        # The rule is the list; the refusal says which part of it the target misses.
        if target.id == coordination.institution_id:
            reason = "u kunt niet aan uw eigen instelling overdragen"
        elif not target.may_coordinate:
            reason = f"{target.name} mag volgens het convenant niet coördineren"
        else:
            reason = f"{target.name} is niet betrokken bij deze jongere"
        raise InvalidInput(reason, field="instelling")
    previous = coordination.institution_id
    coordination.round += 1
    audit.record(
        session,
        actor,
        "coordination-handed-over",
        f"youth:{coordination.youth_id}",
        details={"coordination": coordination.number, "from": previous, "to": target.id},
        at=now,
    )
    forced = Candidate(target.id, "overdracht", f"overgedragen door {_name(session, previous)}")
    _assign_next(
        session,
        config,
        coordination,
        coordination.response_working_days,
        now,
        handed_over_from=previous,
        forced=forced,
    )
    return coordination


def _name(session: Session, institution_id: str | None) -> str:
    institution = session.get(Institution, institution_id) if institution_id else None
    return institution.name if institution else "onbekend"


def sweep_coordination(session: Session, config: CoreConfig, now: datetime) -> dict[str, int]:
    """Reminders halfway, escalation to the municipality at the deadline. Idempotent."""
    counts = {"reminded": 0, "escalated": 0}
    pending = session.exec(
        select(Coordination).where(Coordination.status == CoordinationStatus.PENDING)
    ).all()
    for coordination in pending:
        if coordination.due_at is None:
            continue
        if coordination.escalated_at is None and coordination.due_at <= now:
            coordination.escalated_at = now
            coordination.reminded_at = coordination.reminded_at or now
            session.add(coordination)
            audit.record(
                session,
                audit.SYSTEM,
                "coordination-escalated",
                f"youth:{coordination.youth_id}",
                details={"coordination": coordination.number},
                at=now,
            )
            publish(
                session,
                config,
                CoordinationEscalatedEvent(
                    at=now,
                    coordination_id=coordination.id or 0,
                    reason="deadline",
                    round=coordination.round,
                ),
            )
            counts["escalated"] += 1
        elif (
            coordination.reminded_at is None
            and coordination.remind_at is not None
            and coordination.remind_at <= now
        ):
            coordination.reminded_at = now
            session.add(coordination)
            publish(
                session,
                config,
                CoordinationReminderDueEvent(
                    at=now, coordination_id=coordination.id or 0, round=coordination.round
                ),
            )
            counts["reminded"] += 1
    return counts


def coordinating_contacts(session: Session, coordination: Coordination) -> list[Professional]:
    """Professionals of the coordinating institution with an active signal on the youth."""
    return list(
        session.exec(
            select(Professional)
            .join(Signal, col(Signal.professional_id) == Professional.id)
            .where(
                Signal.youth_id == coordination.youth_id,
                Signal.institution_id == coordination.institution_id,
                Signal.status == "active",
            )
        ).all()
    )
