"""Consent after a match (seed 003, AVG): before content is shared, each matched institution
asks the youth or parents for permission. The system records only the fact — asked, given or
refused, when and by whom — never what is then shared."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from core.clock import utcnow


class ConsentStatus(StrEnum):
    ASKED = "asked"
    GIVEN = "given"
    REFUSED = "refused"


class MatchConsent(SQLModel, table=True):
    """The current status per match and institution; its history is in the logboek."""

    __table_args__ = (UniqueConstraint("match_id", "institution_id"),)

    id: int | None = Field(default=None, primary_key=True)
    match_id: int = Field(foreign_key="match.id", index=True, ondelete="CASCADE")
    institution_id: str = Field(foreign_key="institution.id", max_length=64)
    status: str = Field(max_length=10)
    recorded_at: datetime = Field(default_factory=utcnow)
    recorded_by_professional_id: int | None = Field(
        default=None, foreign_key="professional.id", ondelete="SET NULL"
    )
