"""The municipality's regie (Jeugdwet 7.1.3.2): what its contact did with an escalated or
unassigned coordination or a stalled match. Every action is one row, so the follow-up figures
can count them; the logboek records the same with who acted."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from core.clock import utcnow


class MunicipalityActionKind(StrEnum):
    REGIE = "regie"  # the municipality takes it up
    ASSIGNED = "assigned"  # it named the coordinating institution (which must still accept)
    CLOSED = "closed"  # it closed the matter, with a reason (``note``)


class MunicipalityAction(SQLModel, table=True):
    """One action of a municipality on a coordination or on a match (exactly one of the two).

    Rows go with their coordination or match (a youth purged at 23 or after death takes them
    along, Jeugdwet 7.1.4.6), so a ``note`` never outlives the youth it was about.
    """

    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    municipality: str = Field(foreign_key="municipality.name", max_length=100, index=True)
    coordination_id: int | None = Field(
        default=None, foreign_key="coordination.id", index=True, ondelete="CASCADE"
    )
    match_id: int | None = Field(
        default=None, foreign_key="match.id", index=True, ondelete="CASCADE"
    )
    action: str = Field(max_length=10)  # MunicipalityActionKind
    institution_id: str | None = Field(default=None, foreign_key="institution.id", max_length=64)
    note: str | None = Field(default=None, max_length=500)  # the toelichting of AFGEROND
    at: datetime = Field(default_factory=utcnow, index=True)

    @property
    def subject(self) -> str:
        return f"C-{self.coordination_id}" if self.coordination_id else f"M-{self.match_id}"
