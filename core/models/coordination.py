"""Process coordination: "1 gezin, 1 plan, 1 procescoördinator"."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, Index, text
from sqlmodel import Field, SQLModel

from core.clock import utcnow


class CoordinationStatus(StrEnum):
    PENDING = "pending"  # assigned, waiting for the institution's answer
    ACCEPTED = "accepted"
    UNASSIGNED = "unassigned"  # every candidate declined: the municipality must decide
    MUNICIPALITY = "municipality"  # the municipality took it up (REGIE, core.regie)
    ENDED = "ended"  # the family has fewer than two institutions involved, or no active signal


OPEN_STATUSES = (
    CoordinationStatus.PENDING,
    CoordinationStatus.ACCEPTED,
    CoordinationStatus.UNASSIGNED,
    CoordinationStatus.MUNICIPALITY,
)

_OPEN_WHERE = "status IN ('pending', 'accepted', 'unassigned', 'municipality')"


class Coordination(SQLModel, table=True):
    """One coordination per family: ``youth_id`` is the youth it started for; the youths it
    covers are its ``CoordinationMember`` rows (per child where a rule says ``per_family =
    false``)."""

    __table_args__ = (
        Index(
            "uq_coordination_open_youth",
            "youth_id",
            unique=True,
            sqlite_where=text(_OPEN_WHERE),
            postgresql_where=text(_OPEN_WHERE),
        ),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    youth_id: int = Field(foreign_key="youth.id", index=True, ondelete="CASCADE")
    institution_id: str | None = Field(default=None, foreign_key="institution.id", max_length=64)
    rule_name: str = Field(max_length=100)
    rule_reason: str = Field(max_length=500)
    status: str = Field(default=CoordinationStatus.PENDING, max_length=12)
    assigned_at: datetime = Field(default_factory=utcnow)
    response_working_days: int = 5
    due_at: datetime | None = None
    remind_at: datetime | None = None
    reminded_at: datetime | None = None
    escalated_at: datetime | None = None
    accepted_at: datetime | None = None
    accepted_by: str | None = Field(default=None, max_length=320)
    declined: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON))
    round: int = 0  # +1 on every decline or hand-over: each assignment is notified anew
    ended_at: datetime | None = None

    @property
    def number(self) -> str:
        return f"C-{self.id}"


class CoordinationMember(SQLModel, table=True):
    """A youth whose help the coordination directs: the lead youth (``Coordination.youth_id``,
    for whom it started) and the siblings that joined it (one family, one coordinator).

    ``left_at`` is set when the youth no longer takes part (no involvement left, or the
    coordination ended); a youth is an open member of at most one coordination.
    """

    __table_args__ = (
        Index(
            "uq_coordination_member_open_youth",
            "youth_id",
            unique=True,
            sqlite_where=text("left_at IS NULL"),
            postgresql_where=text("left_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    coordination_id: int = Field(foreign_key="coordination.id", index=True, ondelete="CASCADE")
    youth_id: int = Field(foreign_key="youth.id", index=True, ondelete="CASCADE")
    reason: str = Field(default="", max_length=500)  # why this youth is in it (Dutch)
    joined_at: datetime = Field(default_factory=utcnow)
    left_at: datetime | None = None
