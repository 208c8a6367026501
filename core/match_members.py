"""Who is in a match: read by the matching commands, the notifications and the overviews."""

from __future__ import annotations

from sqlmodel import Session, col, select

from core.models import MatchMember, Signal


def match_members(
    session: Session, match_id: int, *, current_only: bool = True
) -> list[tuple[MatchMember, Signal]]:
    query = (
        select(MatchMember, Signal)
        .join(Signal, col(Signal.id) == MatchMember.signal_id)
        .where(MatchMember.match_id == match_id)
        .order_by(col(MatchMember.id))
    )
    if current_only:
        query = query.where(col(MatchMember.left_at).is_(None))
    return [(member, signal) for member, signal in session.exec(query).all()]
