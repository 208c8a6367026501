"""Matches: two or more active signals of different professionals on one youth (or family)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from core.clock import utcnow


class MatchKind(StrEnum):
    CLIENT = "client"
    FAMILY = "family"


class MatchStatus(StrEnum):
    ACTIVE = "active"
    ENDED = "ended"


class Match(SQLModel, table=True):
    __table_args__ = (
        # At most one active match per youth and per family: the database settles races.
        Index(
            "uq_match_active_youth",
            "youth_id",
            unique=True,
            sqlite_where=text("status = 'active' AND kind = 'client'"),
            postgresql_where=text("status = 'active' AND kind = 'client'"),
        ),
        Index(
            "uq_match_active_family",
            "family_key",
            unique=True,
            sqlite_where=text("status = 'active' AND kind = 'family'"),
            postgresql_where=text("status = 'active' AND kind = 'family'"),
        ),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=10)
    youth_id: int | None = Field(default=None, foreign_key="youth.id", index=True)
    family_key: str | None = Field(default=None, max_length=64, index=True)
    status: str = Field(default=MatchStatus.ACTIVE, max_length=10)
    created_at: datetime = Field(default_factory=utcnow)
    ended_at: datetime | None = None
    # Match follow-up (Jeugdwet 7.1.3.2): partners confirm contact before the deadline.
    follow_up_due_at: datetime | None = None
    follow_up_remind_at: datetime | None = None
    follow_up_reminded_at: datetime | None = None
    escalated_at: datetime | None = None

    @property
    def number(self) -> str:
        return f"M-{self.id}"


class MatchMember(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("match_id", "signal_id"),)

    id: int | None = Field(default=None, primary_key=True)
    match_id: int = Field(foreign_key="match.id", index=True, ondelete="CASCADE")
    signal_id: int = Field(foreign_key="signal.id", index=True, ondelete="CASCADE")
    joined_at: datetime = Field(default_factory=utcnow)
    left_at: datetime | None = None
    contact_confirmed_at: datetime | None = None
