"""Requests of a youth or parent to correct, delete or object to what the index holds (AVG art.
16, 17 and 21; Jeugdwet 7.1.4.6), recorded by the region's functional administrator.

A request names the requester by role, never by identity, and the youth by its row only: the
record of how a request was handled outlives the youth's data (the link is cleared when the youth
is purged), so that the region can still show it answered in time.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from core.clock import utcnow


class RightsRequestKind(StrEnum):
    CORRECTION = "correctie"  # AVG art. 16
    DELETION = "verwijdering"  # AVG art. 17
    OBJECTION = "verzet"  # AVG art. 21


class RequesterRole(StrEnum):
    PARENT = "ouder"
    YOUTH = "jeugdige"
    LEGAL_REPRESENTATIVE = "wettelijk-vertegenwoordiger"


class RightsRequestStatus(StrEnum):
    OPEN = "open"
    EXECUTED = "executed"  # granted: the data were corrected or removed
    REJECTED = "rejected"  # refused, with the reason the requester is given
    LAPSED = "lapsed"  # the youth's data were purged (23rd birthday, death) before a decision


class RightsRequest(SQLModel, table=True):
    __table_args__ = (
        Index("ix_rightsrequest_status_deadline", "status", "deadline_on"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    youth_id: int | None = Field(
        default=None, foreign_key="youth.id", index=True, ondelete="SET NULL"
    )
    kind: str = Field(max_length=20)
    requester_role: str = Field(max_length=30)
    received_on: date
    deadline_on: date
    status: str = Field(default=RightsRequestStatus.OPEN, max_length=10)
    recorded_by_id: int = Field(foreign_key="professional.id")
    recorded_at: datetime = Field(default_factory=utcnow)
    decided_by_id: int | None = Field(default=None, foreign_key="professional.id")
    decided_at: datetime | None = None
    outcome_note: str | None = Field(default=None, max_length=1000)
    # The records the decision changed (S-12 corrected, R-40 removed): numbers only.
    changes: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON))

    @property
    def number(self) -> str:
        # V for verzoek: R- already names registrations.
        return f"V-{self.id}"
