"""A proposed change of process coordinator that waits for the newcomer's yes.

When a youth moves (Jeugdwet 7.1.2.3 g) the rules of the new municipality may pick another
institution; the current coordinator keeps the coordination until that one accepts (issue
11.5). One open proposal per coordination at most: a later move replaces it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, text
from sqlmodel import Field, SQLModel

from core.clock import utcnow


class SuccessionStatus(StrEnum):
    PROPOSED = "proposed"  # waiting for the proposed institution's answer
    ACCEPTED = "accepted"  # it took the coordination over
    DECLINED = "declined"  # it said no (the next candidate, if any, is asked)
    WITHDRAWN = "withdrawn"  # the coordination changed meanwhile (ended, another move)


class CoordinationSuccession(SQLModel, table=True):
    __table_args__ = (
        Index(
            "uq_succession_open_coordination",
            "coordination_id",
            unique=True,
            sqlite_where=text("status = 'proposed'"),
            postgresql_where=text("status = 'proposed'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    coordination_id: int = Field(foreign_key="coordination.id", index=True, ondelete="CASCADE")
    # Who held it when the proposal was made: it is stale once someone else does.
    from_institution_id: str | None = Field(
        default=None, foreign_key="institution.id", max_length=64
    )
    institution_id: str = Field(foreign_key="institution.id", max_length=64)
    rule_name: str = Field(max_length=100)
    rule_reason: str = Field(max_length=500)
    occasion: str = Field(max_length=200)  # why it was proposed (Dutch): "verhuizing naar ..."
    status: str = Field(default=SuccessionStatus.PROPOSED, max_length=10)
    proposed_at: datetime = Field(default_factory=utcnow)
    due_at: datetime | None = None
    answered_at: datetime | None = None
    answered_by: str | None = Field(default=None, max_length=320)
    reason: str | None = Field(default=None, max_length=500)  # a decline's reason
