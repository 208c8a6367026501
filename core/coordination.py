"""Process coordination (DOMAIN step 3): assign, accept, decline, hand over, remind, escalate.

One family, one coordinator: youths sharing a parent share one coordination (core.
coordination_family), unless the rule that picks a youth says ``per_family = false``. A family
needs a coordinator when at least two institutions are involved with its youths together and at
least one of their signals is active; a sibling joins the family's open coordination. The
covenant's rules pick the institution, involved institutions first. Only institutions flagged
``may_coordinate`` are ever assigned.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from core import audit
from core.clock import local_date, utcnow
from core.config import CoreConfig
from core.coordination_family import (
    close_membership,
    join,
    leave,
    member_youth_ids,
    membership,
    open_members,
    siblings_of,
)
from core.coordination_rules import (
    Candidate,
    CoordinationFacts,
    matching_rules,
    ruled_candidates,
)
from core.coordination_succession import decline as decline_succession
from core.coordination_succession import proposal_for, take_over, withdraw_open
from core.errors import Conflict, InvalidInput, NotAllowed, NotFound
from core.events import (
    CoordinationAcceptedEvent,
    CoordinationAssignedEvent,
    CoordinationEscalatedEvent,
    CoordinationReminderDueEvent,
)
from core.free_text import check_free_text, quote
from core.involvement import (
    active_signals_of,
    involved_in_any,
    involved_institution_ids,
    takeover_candidates,
)
from core.models import (
    OPEN_STATUSES,
    Coordination,
    CoordinationMember,
    CoordinationStatus,
    Institution,
    Professional,
    Signal,
    Youth,
)
from core.notifications import publish
from core.working_days import halfway
from core.youths import age_of, lock_youth


def open_coordination(session: Session, youth_id: int) -> Coordination | None:
    """The open coordination covering the youth: its own, or its family's."""
    return session.exec(
        select(Coordination)
        .join(CoordinationMember, col(CoordinationMember.coordination_id) == Coordination.id)
        .where(
            CoordinationMember.youth_id == youth_id,
            col(CoordinationMember.left_at).is_(None),
            col(Coordination.status).in_([s.value for s in OPEN_STATUSES]),
        )
    ).first()


def reconcile_coordination(
    session: Session, config: CoreConfig, youth_id: int, now: datetime
) -> Coordination | None:
    """Bring the coordination covering the youth and its family in line with who is involved.

    The youth's family (siblings coordinated per family) joins one coordination: an open one
    of a sibling is reused, else one starts when the family together has at least two involved
    institutions and an active signal. It ends when the family no longer needs one. Returns
    the coordination covering the youth, if any.
    """
    youth = session.get(Youth, youth_id)
    assert youth is not None
    family = _family(session, config, youth, now)
    current = open_coordination(session, youth_id) or _family_coordination(session, family)
    if current is not None:
        session.refresh(current, with_for_update=True)
    scope = sorted(set(family) | set(member_youth_ids(session, current) if current else []))
    involved = involved_in_any(session, scope)
    signals = active_signals_of(session, scope)
    if len(involved) < 2 or not signals:
        if current is not None:
            _end(session, current, now)
        return None
    days = min(config.response_working_days(s.code) for s in signals)
    taking_part = [y for y in scope if involved_institution_ids(session, y)]
    if current is None:
        current = Coordination(youth_id=youth_id, rule_name="", rule_reason="", assigned_at=now)
        session.add(current)
        session.flush()
        for member in taking_part:
            join(session, current, member, "", now)
        _assign_next(session, config, current, days, now)
    else:
        _sync_members(session, current, taking_part, now)
        _tighten_deadline(config, current, days, now)
    return current if youth_id in taking_part else None


def _family(session: Session, config: CoreConfig, youth: Youth, now: datetime) -> list[int]:
    """The youth and the siblings it shares a coordination with: none where the rule that
    picks the youth (or the sibling) says ``per_family = false``."""
    if not _per_family(session, config, youth, now):
        return [youth.id or 0]
    family = [youth.id or 0]
    for sibling_id in siblings_of(session, youth.id or 0):
        sibling = session.get(Youth, sibling_id)
        if sibling is not None and _per_family(session, config, sibling, now):
            family.append(sibling_id)
    return sorted(family)


def _per_family(session: Session, config: CoreConfig, youth: Youth, now: datetime) -> bool:
    decisions = matching_rules(
        config.covenant.coordination_rules,
        _facts(session, config, youth, involved_institution_ids(session, youth.id or 0), now),
    )
    return decisions[0].per_family if decisions else True


def _family_coordination(session: Session, family: list[int]) -> Coordination | None:
    """An open coordination of a sibling, the oldest first: the family's coordination."""
    for youth_id in family:
        found = open_coordination(session, youth_id)
        if found is not None:
            return found
    return None


def _sync_members(
    session: Session, coordination: Coordination, taking_part: list[int], now: datetime
) -> None:
    """Siblings newly involved join; members with no involvement left leave."""
    members = open_members(session, coordination)
    present = {m.youth_id for m in members}
    for youth_id in taking_part:
        if youth_id not in present:
            join(session, coordination, youth_id, _sibling_reason(session, coordination), now)
    for member in members:
        if member.youth_id not in taking_part:
            leave(session, coordination, member, now)


def _sibling_reason(session: Session, coordination: Coordination) -> str:
    if coordination.institution_id is None:
        has = f"procescoördinatie {coordination.number}"
    else:
        has = f"{_name(session, coordination.institution_id)} als procescoördinator"
    return f"een broer of zus heeft al {has} (1 gezin, 1 plan, 1 procescoördinator)"


def _end(session: Session, coordination: Coordination, now: datetime) -> None:
    withdraw_open(session, coordination, now)
    coordination.status = CoordinationStatus.ENDED
    coordination.ended_at = now
    session.add(coordination)
    close_membership(session, coordination, now)
    audit.record(
        session,
        audit.SYSTEM,
        "coordination-ended",
        f"youth:{coordination.youth_id}",
        details={"coordination": coordination.number},
        at=now,
    )


def explanation(session: Session, coordination: Coordination, youth_id: int) -> tuple[str, str]:
    """The rule and reason that put the youth under the coordination: a sibling who joined an
    existing one is there because of the family, the others by the coordination's own rule."""
    member = membership(session, coordination, youth_id)
    if member is not None and member.reason:
        return "gezin", member.reason
    return coordination.rule_name, coordination.rule_reason


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


def _facts(
    session: Session, config: CoreConfig, youth: Youth, involved: list[str], now: datetime
) -> CoordinationFacts:
    kinds = {i.kind for i in (session.get(Institution, x) for x in involved) if i is not None}
    return CoordinationFacts(
        municipality=youth.municipality,
        age=age_of(config, youth, local_date(now, config.tz)),
        involved_kinds=frozenset(kinds),
    )


def candidates(
    session: Session, config: CoreConfig, coordination: Coordination, now: datetime
) -> list[Candidate]:
    """The institutions the covenant's rules pick for the coordination, in order. The rules
    see every institution involved with the family, and each youth's own municipality and age:
    first those of the youth it started for, then the siblings' (the next candidates when one
    declines)."""
    members = member_youth_ids(session, coordination)
    involved = involved_in_any(session, members)
    institutions = {
        i.id: i for i in session.exec(select(Institution).where(Institution.active)).all()
    }
    result: list[Candidate] = []
    for youth_id in sorted(members, key=lambda y: y != coordination.youth_id):
        youth = session.get(Youth, youth_id)
        assert youth is not None
        facts = _facts(session, config, youth, [i for i in involved if i in institutions], now)
        result += _ruled(config, facts, institutions, involved)
    unique: dict[str, Candidate] = {}
    for candidate in result:
        unique.setdefault(candidate.institution_id, candidate)
    return list(unique.values())


def _ruled(
    config: CoreConfig,
    facts: CoordinationFacts,
    institutions: dict[str, Institution],
    involved: list[str],
) -> list[Candidate]:
    return ruled_candidates(
        config.covenant.coordination_rules, facts, institutions.values(), involved
    )


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
    withdraw_open(session, coordination, now)  # a proposed successor was for the old holder
    declined = {d["institution_id"] for d in coordination.declined}
    options = (
        [forced]
        if forced
        else [
            c
            for c in candidates(session, config, coordination, now)
            if c.institution_id not in declined
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
        "municipality": "de gemeente voert regie",
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
    succession = proposal_for(session, coordination, actor.institution_id)
    if succession is not None:  # a successor proposed after a move takes it over
        return take_over(session, config, coordination, succession, actor, now)
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
    succession = proposal_for(session, coordination, actor.institution_id)
    if succession is not None:  # a proposed successor says no: the current one keeps it
        ranked = candidates(session, config, coordination, now)
        decline_succession(
            session, config, coordination, succession, reason, actor, now, ranked=ranked
        )
        return coordination
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
            reason = f"{target.name} is niet betrokken bij deze jongere of het gezin"
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


def reassign_coordination(
    session: Session, config: CoreConfig, coordination: Coordination, now: datetime
) -> None:
    """Assign the coordination anew by the rules, as after a decline: its institution left the
    covenant (issue 11.4), or nobody had it and a move brought new candidates (issue 11.5)."""
    coordination.round += 1
    _assign_next(session, config, coordination, coordination.response_working_days, now)


def _name(session: Session, institution_id: str | None) -> str:
    institution = session.get(Institution, institution_id) if institution_id else None
    return institution.name if institution else "onbekend"


def assign_institution(
    session: Session,
    config: CoreConfig,
    coordination: Coordination,
    institution_id: str,
    *,
    rule_name: str,
    reason: str,
    now: datetime,
) -> None:
    """Assign the named institution outside the rules' order (the municipality's choice,
    core.regie): a new round, a new deadline, and it must accept, decline or hand over as
    usual; a decline goes on to the rules' next candidate."""
    coordination.round += 1
    _assign_next(
        session,
        config,
        coordination,
        coordination.response_working_days,
        now,
        forced=Candidate(institution_id, rule_name, reason),
    )


def end_coordination(session: Session, coordination: Coordination, now: datetime) -> None:
    """End the coordination (its members leave it): the family no longer needs it, or the
    municipality closed it (core.regie)."""
    _end(session, coordination, now)


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
    """Professionals of the coordinating institution with an active signal on the family."""
    youth_ids = member_youth_ids(session, coordination) or [coordination.youth_id]
    return list(
        session.exec(
            select(Professional)
            .join(Signal, col(Signal.professional_id) == Professional.id)
            .where(
                col(Signal.youth_id).in_(youth_ids),
                Signal.institution_id == coordination.institution_id,
                Signal.status == "active",
            )
        ).all()
    )
