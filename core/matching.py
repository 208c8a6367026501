"""Matches are derived state: recomputed from the active signals after every change.

Client match: at least two active signals of *different* professionals on one youth.
Family match (gezinsmatch): active signals of different professionals on different youths who
share a parent (the parent's BSN digest). A match ends when fewer than two of its signals are
active (DOMAIN: Lifetime).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlmodel import Session, col, select

from core.config import CoreConfig
from core.events import MatchMembersJoinedEvent
from core.involvement import active_signals
from core.models import (
    Match,
    MatchKind,
    MatchMember,
    MatchStatus,
    Signal,
    SignalStatus,
    YouthParent,
)
from core.notifications import publish
from core.working_days import halfway
from core.youths import parent_keys_of


def reconcile_client_match(
    session: Session, config: CoreConfig, youth_id: int, now: datetime
) -> Match | None:
    """Bring the youth's client match in line with its active signals; return it if active."""
    signals = active_signals(session, youth_id)
    match = session.exec(
        select(Match).where(
            Match.youth_id == youth_id,
            Match.kind == MatchKind.CLIENT,
            Match.status == MatchStatus.ACTIVE,
        )
    ).first()
    return _sync_match(
        session, config, match, signals, now, kind=MatchKind.CLIENT, youth_id=youth_id
    )


def reconcile_family_matches(
    session: Session, config: CoreConfig, youth_id: int, now: datetime
) -> list[Match]:
    """Bring the family matches around the youth in line with its siblings' active signals.

    A family is the youths sharing one parent digest. Siblings usually share *both* parents,
    and then both digests describe the same group of signals: one family, one match. A group
    whose signals are all inside a larger group (a half-sibling joined one parent's side) adds
    nothing either; its match continues under the larger group, so its members keep their
    match number and follow-up and only hear of the newcomers.
    """
    own_keys = parent_keys_of(session, youth_id)
    if not own_keys:
        return []
    # Whether a sibling's other family group is covered by one of ours can change with this
    # youth's signals, so every group the siblings belong to is reconciled, in a fixed lock
    # order.
    keys = _family_keys(session, own_keys)
    for parent_key in keys:
        lock_family(session, parent_key)
    groups = {parent_key: _family_signals(session, parent_key) for parent_key in keys}
    active = {parent_key: _active_family_match(session, parent_key) for parent_key in keys}
    kept = _uncovered_groups(keys, groups, active)
    for parent_key in keys:
        match = active[parent_key]
        if parent_key in kept or match is None or not groups[parent_key]:
            continue
        larger = next(k for k in kept if _ids(groups[parent_key]) <= _ids(groups[k]))
        if active[larger] is None:
            match.family_key = larger  # the family grew: the match carries on under its key
            session.add(match)
            session.flush()
            active[larger] = match
        else:
            _end_match(session, match, now)
        active[parent_key] = None
    matches = []
    for parent_key in keys:
        signals = groups[parent_key] if parent_key in kept else []
        result = _sync_match(
            session,
            config,
            active[parent_key],
            signals,
            now,
            kind=MatchKind.FAMILY,
            family_key=parent_key,
        )
        if result is not None:
            matches.append(result)
    return matches


def _family_keys(session: Session, own_keys: list[str]) -> list[str]:
    siblings = select(YouthParent.youth_id).where(col(YouthParent.parent_key).in_(own_keys))
    rows = session.exec(
        select(YouthParent.parent_key).where(col(YouthParent.youth_id).in_(siblings))
    ).all()
    return sorted(set(rows) | set(own_keys))


def _family_signals(session: Session, parent_key: str) -> list[Signal]:
    siblings = select(YouthParent.youth_id).where(YouthParent.parent_key == parent_key)
    signals = list(
        session.exec(
            select(Signal)
            .where(col(Signal.youth_id).in_(siblings), Signal.status == SignalStatus.ACTIVE)
            .order_by(col(Signal.id))
        ).all()
    )
    if len({s.youth_id for s in signals}) < 2:
        return []  # one child's signals are a client match, not a family match
    return signals


def _active_family_match(session: Session, parent_key: str) -> Match | None:
    return session.exec(
        select(Match).where(
            Match.family_key == parent_key,
            Match.kind == MatchKind.FAMILY,
            Match.status == MatchStatus.ACTIVE,
        )
    ).first()


def _ids(signals: list[Signal]) -> frozenset[int]:
    return frozenset(signal.id or 0 for signal in signals)


def _uncovered_groups(
    keys: list[str], groups: dict[str, list[Signal]], active: dict[str, Match | None]
) -> list[str]:
    """The groups not covered by another: no other group holds a superset of their signals.
    Of equal groups the one that already has a match wins, else the first key."""

    def covers(other: str, parent_key: str) -> bool:
        mine, theirs = _ids(groups[parent_key]), _ids(groups[other])
        if mine != theirs:
            return mine < theirs
        if (active[other] is None) != (active[parent_key] is None):
            return active[other] is not None
        return other < parent_key

    return [
        parent_key
        for parent_key in keys
        if groups[parent_key]
        and not any(covers(other, parent_key) for other in keys if other != parent_key)
    ]


def lock_family(session: Session, parent_key: str) -> None:
    # Siblings are different youth rows, so their row locks don't serialize a family; a
    # transaction-scoped advisory lock on the parent digest does (PostgreSQL only; SQLite
    # transactions are serialized already).
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"family:{parent_key}"}
        )


def _sync_match(
    session: Session,
    config: CoreConfig,
    match: Match | None,
    signals: list[Signal],
    now: datetime,
    *,
    kind: MatchKind,
    youth_id: int | None = None,
    family_key: str | None = None,
) -> Match | None:
    professionals = {signal.professional_id for signal in signals}
    if len(professionals) < 2:
        if match is not None:
            _end_match(session, match, now)
        return None
    formed = match is None
    if match is None:
        match = Match(kind=kind, youth_id=youth_id, family_key=family_key, created_at=now)
        session.add(match)
        session.flush()
    members = session.exec(select(MatchMember).where(MatchMember.match_id == match.id)).all()
    current = {m.signal_id: m for m in members if m.left_at is None}
    active_ids = {signal.id for signal in signals}
    for member in current.values():
        if member.signal_id not in active_ids:
            member.left_at = now
            session.add(member)
    joined = []
    for signal in signals:
        if signal.id not in current:
            session.add(
                MatchMember(match_id=match.id or 0, signal_id=signal.id or 0, joined_at=now)
            )
            joined.append(signal.id or 0)
    if joined:
        _set_follow_up_deadline(config, match, signals, now)
        session.add(match)
        session.flush()
        publish(
            session,
            config,
            MatchMembersJoinedEvent(
                at=now, match_id=match.id or 0, joined_signal_ids=tuple(joined), formed=formed
            ),
        )
    return match


def _set_follow_up_deadline(
    config: CoreConfig, match: Match, signals: list[Signal], now: datetime
) -> None:
    """Matched professionals must confirm contact within the most urgent code's response time
    (Jeugdwet 7.1.3.2: the municipality checks that contact is made)."""
    days = min(config.response_working_days(signal.code) for signal in signals)
    match.follow_up_due_at = config.calendar.deadline_after(now, days)
    match.follow_up_remind_at = halfway(now, match.follow_up_due_at)
    match.follow_up_reminded_at = None
    match.escalated_at = None


def _end_match(session: Session, match: Match, now: datetime) -> None:
    match.status = MatchStatus.ENDED
    match.ended_at = now
    session.add(match)
    for member in session.exec(
        select(MatchMember).where(
            MatchMember.match_id == match.id, col(MatchMember.left_at).is_(None)
        )
    ).all():
        member.left_at = now
        session.add(member)
    session.flush()
