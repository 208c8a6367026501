"""A youth who moves (verhuizing, Jeugdwet 7.1.2.3 g; issue 11.5).

A registration or signal that names another municipality than the youth's is a move. This is
the one place a known youth's municipality changes, for the registration executor (set-wise)
and for a signal alike: the move is recorded in the logboek, the contacts of both
municipalities are told (references only: the youth's J-number, the numbers of the message that
showed the move, the institutions involved, the coordination), and an open coordination is
weighed again by the rules of the new municipality — the current coordinator keeps it until the
institution those rules pick accepts (core.coordination_succession).

A move to a municipality outside the covenant keeps the youth's last covenant municipality
(its contact keeps regie while the signals run, and is told), and records where it went.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, update
from sqlmodel import Session

from core import audit
from core.clock import as_utc, local_date
from core.config import CoreConfig
from core.coordination import candidates, open_coordination, reassign_coordination
from core.coordination_succession import open_succession, reconsider
from core.involvement import involved_institution_ids
from core.models import Coordination, CoordinationStatus, Institution, Municipality, Youth
from core.notifications.dispatch import notify
from core.notifications.recipients import institution_card, municipality_recipients
from core.youths import Destination, lives_at

KIND = "verhuizing"

_youth: Table = Youth.__table__  # type: ignore[attr-defined]

_STATUS_NL: dict[str, str] = {
    CoordinationStatus.PENDING: "wacht op antwoord",
    CoordinationStatus.ACCEPTED: "geaccepteerd",
    CoordinationStatus.UNASSIGNED: "niet toegewezen",
    CoordinationStatus.MUNICIPALITY: "de gemeente voert regie",
}


@dataclass(frozen=True)
class Move:
    youth_id: int
    home: str  # the covenant municipality the youth belonged to: its contact is told
    from_name: str  # where it lived (``home``, or a place outside the covenant)
    to: str
    inside: bool  # ``to`` is an active covenant municipality
    via: str  # what showed the move: R-12 (a registration) or S-3 (a signal)


def detect_move(
    youth_id: int,
    municipality: str,
    moved_out_to: str | None,
    destination: Destination,
    *,
    via: str,
) -> Move | None:
    """The move ``destination`` means for a youth living in ``municipality`` (or, when
    ``moved_out_to`` is set, outside the covenant), or None when it lives there already."""
    if lives_at(municipality, moved_out_to, destination):
        return None
    here = moved_out_to if moved_out_to is not None else municipality
    return Move(youth_id, municipality, here, destination.name, destination.inside, via)


def apply_moves(
    session: Session,
    config: CoreConfig,
    moves: Sequence[Move],
    *,
    actor: audit.Actor,
    now: datetime,
) -> None:
    """Write the moves (one statement per kind), record them, weigh open coordinations again
    and tell the municipalities. The youths are locked by the caller."""
    if not moves:
        return
    connection = session.connection()
    by_id = _youth.c.id == bindparam("b_id")
    inside = [{"b_id": m.youth_id, "b_to": m.to} for m in moves if m.inside]
    outside = [{"b_id": m.youth_id, "b_to": m.to} for m in moves if not m.inside]
    if inside:
        connection.execute(
            update(_youth)
            .where(by_id)
            .values(municipality=bindparam("b_to"), moved_out_to=None, moved_out_at=None),
            inside,
        )
    if outside:
        connection.execute(
            update(_youth).where(by_id).values(moved_out_to=bindparam("b_to"), moved_out_at=now),
            outside,
        )
    moved = {m.youth_id for m in moves}
    for instance in list(session.identity_map.values()):
        if isinstance(instance, Youth) and instance.id in moved:
            session.expire(instance)  # written underneath the ORM
    for move in moves:
        audit.record(
            session,
            actor,
            "youth-moved",
            f"youth:{move.youth_id}",
            details={
                "from": move.from_name,
                "to": move.to,
                "outside_covenant": not move.inside,
                "via": move.via,
            },
            at=now,
        )
        coordination = _follow_coordination(session, config, move, now)
        _tell_municipalities(session, config, move, coordination, actor, now)


def _follow_coordination(
    session: Session, config: CoreConfig, move: Move, now: datetime
) -> Coordination | None:
    """Inside the covenant, the new municipality's rules weigh the open coordination again:
    nobody had it (every candidate declined), so it is assigned anew; or another institution
    is proposed, and the current coordinator keeps it until that one accepts. One the
    municipality took up stays with it."""
    coordination = open_coordination(session, move.youth_id)
    if coordination is None or not move.inside:
        return coordination
    if coordination.status == CoordinationStatus.MUNICIPALITY:
        return coordination  # the municipality directs it (core.regie): it decides, and is told
    session.refresh(coordination, with_for_update=True)
    if coordination.status == CoordinationStatus.UNASSIGNED:
        reassign_coordination(session, config, coordination, now)
    else:
        reconsider(
            session,
            config,
            coordination,
            candidates(session, config, coordination, now),
            occasion=f"verhuizing naar {move.to}",
            now=now,
        )
    return coordination


def coordination_card(session: Session, coordination: Coordination) -> dict[str, Any]:
    """The coordination as a municipality contact reads it: who has it, who is asked to take
    it over."""
    holder = (
        session.get(Institution, coordination.institution_id)
        if coordination.institution_id
        else None
    )
    proposal = open_succession(session, coordination.id or 0)
    successor = session.get(Institution, proposal.institution_id) if proposal else None
    return {
        "number": coordination.number,
        "institution": institution_card(holder) if holder else None,
        "status": _STATUS_NL.get(coordination.status, coordination.status),
        "successor": (
            {
                "institution": institution_card(successor),
                "rule_name": proposal.rule_name,
                "rule_reason": proposal.rule_reason,
            }
            if proposal is not None and successor is not None
            else None
        ),
    }


def _tell_municipalities(
    session: Session,
    config: CoreConfig,
    move: Move,
    coordination: Coordination | None,
    actor: audit.Actor,
    now: datetime,
) -> None:
    names = [move.home] + ([move.to] if move.inside and move.to != move.home else [])
    recipients = [
        recipient
        for m in (session.get(Municipality, name) for name in names)
        if m is not None and m.active
        for recipient in municipality_recipients(session, m)
    ]
    reporter = session.get(Institution, actor.institution_id) if actor.institution_id else None
    involved = (
        session.get(Institution, i) for i in involved_institution_ids(session, move.youth_id)
    )
    context = {
        "youth_reference": f"J-{move.youth_id}",
        "from_name": move.from_name,
        "to_name": move.to,
        "home": move.home,
        "outside_covenant": not move.inside,
        "moved_on": local_date(now, config.tz).isoformat(),
        "via": move.via,
        "reported_by": institution_card(reporter) if reporter else None,
        "involved": [institution_card(i) for i in involved if i is not None],
        "coordination": coordination_card(session, coordination) if coordination else None,
    }
    notify(
        session,
        config,
        kind=KIND,
        recipients=recipients,
        reference=f"J-{move.youth_id}",
        context=context,
        key=f"J-{move.youth_id}@{as_utc(now).isoformat()}",
        now=now,
    )
