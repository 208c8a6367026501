"""Who a coordination covers: "1 gezin, 1 plan, 1 procescoördinator".

A family is the youths sharing a parent digest with the youth (core.youths). A coordination's
members are the youths whose help it directs; a youth is an open member of at most one
coordination (a partial unique index). The decision *whether* a family needs coordination and
who coordinates lives in core.coordination; this module only keeps the membership.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from core import audit
from core.models import Coordination, CoordinationMember, YouthParent
from core.youths import parent_keys_of


def siblings_of(session: Session, youth_id: int) -> list[int]:
    """The other youths sharing a parent digest with the youth, ascending."""
    keys = parent_keys_of(session, youth_id)
    if not keys:
        return []
    rows = session.exec(
        select(YouthParent.youth_id).where(
            col(YouthParent.parent_key).in_(keys), YouthParent.youth_id != youth_id
        )
    ).all()
    return sorted(set(rows))


def open_members(session: Session, coordination: Coordination) -> list[CoordinationMember]:
    return list(
        session.exec(
            select(CoordinationMember)
            .where(
                CoordinationMember.coordination_id == coordination.id,
                col(CoordinationMember.left_at).is_(None),
            )
            .order_by(col(CoordinationMember.youth_id))
        ).all()
    )


def member_youth_ids(session: Session, coordination: Coordination) -> list[int]:
    return [m.youth_id for m in open_members(session, coordination)]


def membership(
    session: Session, coordination: Coordination, youth_id: int
) -> CoordinationMember | None:
    """The youth's (latest) membership of the coordination, open or left."""
    return session.exec(
        select(CoordinationMember)
        .where(
            CoordinationMember.coordination_id == coordination.id,
            CoordinationMember.youth_id == youth_id,
        )
        .order_by(col(CoordinationMember.id).desc())
    ).first()


def join(
    session: Session, coordination: Coordination, youth_id: int, reason: str, now: datetime
) -> None:
    session.add(
        CoordinationMember(
            coordination_id=coordination.id or 0, youth_id=youth_id, reason=reason, joined_at=now
        )
    )
    session.flush()
    if youth_id != coordination.youth_id:
        audit.record(
            session,
            audit.SYSTEM,
            "coordination-joined",
            f"youth:{youth_id}",
            details={"coordination": coordination.number, "reason": reason},
            at=now,
        )


def leave(
    session: Session, coordination: Coordination, member: CoordinationMember, now: datetime
) -> None:
    """The youth no longer takes part; the coordination's lead moves to a remaining member, so
    the youth can start a coordination of its own later (one open coordination per lead)."""
    member.left_at = now
    session.add(member)
    session.flush()
    if member.youth_id == coordination.youth_id:
        remaining = member_youth_ids(session, coordination)
        if remaining:
            coordination.youth_id = remaining[0]
            session.add(coordination)
            session.flush()
    audit.record(
        session,
        audit.SYSTEM,
        "coordination-left",
        f"youth:{member.youth_id}",
        details={"coordination": coordination.number},
        at=now,
    )


def close_membership(session: Session, coordination: Coordination, now: datetime) -> None:
    """The coordination ended: every member leaves with it."""
    for member in open_members(session, coordination):
        member.left_at = now
        session.add(member)
    session.flush()


def release_youth(session: Session, youth_id: int, now: datetime) -> None:
    """Before a youth is purged: its memberships go, and an open family coordination it led
    carries on under a sibling instead of being deleted with the youth."""
    members = session.exec(
        select(CoordinationMember).where(CoordinationMember.youth_id == youth_id)
    ).all()
    for member in members:
        coordination = session.get(Coordination, member.coordination_id)
        session.delete(member)
        session.flush()
        if coordination is None or coordination.youth_id != youth_id:
            continue
        remaining = member_youth_ids(session, coordination)
        if remaining:
            coordination.youth_id = remaining[0]
            session.add(coordination)
            session.flush()
