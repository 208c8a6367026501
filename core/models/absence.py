"""Short absence (a stand-in) and long absence (transfer of active signals)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from core.clock import utcnow


class Absence(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    professional_id: int = Field(foreign_key="professional.id", index=True)
    starts_on: date
    ends_on: date
    stand_in_id: int | None = Field(default=None, foreign_key="professional.id")
    created_at: datetime = Field(default_factory=utcnow)
    ended_at: datetime | None = None  # "terug": back early


class TransferStatus(StrEnum):
    REQUESTED = "requested"
    EXECUTED = "executed"
    REJECTED = "rejected"


class TransferRequest(SQLModel, table=True):
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    institution_id: str = Field(foreign_key="institution.id", max_length=64)
    from_professional_id: int = Field(foreign_key="professional.id")
    to_professional_id: int = Field(foreign_key="professional.id")
    requested_by_id: int = Field(foreign_key="professional.id")
    instructed_by_id: int = Field(foreign_key="professional.id")  # the senior
    status: str = Field(default=TransferStatus.REQUESTED, max_length=10)
    requested_at: datetime = Field(default_factory=utcnow)
    executed_by_id: int | None = Field(default=None, foreign_key="professional.id")
    executed_at: datetime | None = None
    signals_moved: int = 0

    @property
    def number(self) -> str:
        return f"T-{self.id}"
