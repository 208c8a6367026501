"""Registrations (an institution is involved) and signals (a professional is worried)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from core.clock import utcnow


class RegistrationStatus(StrEnum):
    ACTIVE = "active"
    ENDED = "ended"


class Registration(SQLModel, table=True):
    # Numbers people quote (S-12, R-40, ...) are never given out again, also on SQLite.
    __table_args__ = (
        UniqueConstraint("youth_id", "institution_id"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    youth_id: int = Field(foreign_key="youth.id", index=True, ondelete="CASCADE")
    institution_id: str = Field(foreign_key="institution.id", max_length=64, index=True)
    reference: str = Field(max_length=100)  # the institution's own client reference (kenmerk)
    professional_id: int | None = Field(default=None, foreign_key="professional.id")
    registered_at: datetime = Field(default_factory=utcnow)
    ends_on: date | None = None
    status: str = Field(default=RegistrationStatus.ACTIVE, max_length=10)
    ended_at: datetime | None = None

    @property
    def number(self) -> str:
        return f"R-{self.id}"


class SignalStatus(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"


class ArchiveReason(StrEnum):
    EXPIRED = "expired"
    RISK_GONE = "risk-gone"


class Informed(StrEnum):
    YES = "ja"
    NO = "nee"
    POSTPONED = "uitgesteld"


_INFORMING_PENDING = (
    "status = 'active' AND informed <> 'ja' AND informing_reminded_at IS NULL"
)


class Signal(SQLModel, table=True):
    """Content-free by law: who, about whom, when, which code, until when. Never the reason."""

    __table_args__ = (
        Index("ix_signal_youth_status", "youth_id", "status"),
        Index("ix_signal_status_ends_on", "status", "ends_on"),
        # The few active signals whose reporter is still to be reminded to inform (core.informing).
        Index(
            "ix_signal_informing_pending",
            "placed_at",
            sqlite_where=text(_INFORMING_PENDING),
            postgresql_where=text(_INFORMING_PENDING),
        ),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    youth_id: int = Field(foreign_key="youth.id", ondelete="CASCADE")
    professional_id: int = Field(foreign_key="professional.id", index=True)
    institution_id: str = Field(foreign_key="institution.id", max_length=64)
    team_id: int = Field(foreign_key="team.id")
    code: str = Field(max_length=40)
    reference: str | None = Field(default=None, max_length=100)  # the reporter's own reference
    placed_at: datetime = Field(default_factory=utcnow)
    ends_on: date
    status: str = Field(default=SignalStatus.ACTIVE, max_length=10)
    archived_at: datetime | None = None
    archive_reason: str | None = Field(default=None, max_length=20)
    informed: str = Field(max_length=12)
    informed_party: str = Field(max_length=20)  # ouders | jongere en ouders | jongere (by age)
    postpone_reason: str | None = Field(default=None, max_length=500)
    leaflet_given: bool = False
    channel: str = Field(default="cli", max_length=10)
    expiry_warned_at: datetime | None = None
    # One-time notice when an archived signal's youth is signalled again (DOMAIN: Lifetime).
    archive_notice_sent_at: datetime | None = None
    # When "ja" was recorded: at placing, or later (core.informing); the figures count it.
    informed_at: datetime | None = None
    # The one reminder to inform, after VERWIJSINDEX_INFORMING_REMINDER_DAYS (core.informing).
    informing_reminded_at: datetime | None = None

    @property
    def number(self) -> str:
        return f"S-{self.id}"
