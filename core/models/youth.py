"""Youths: identified by a keyed digest; identity fields kept only encrypted."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.clock import utcnow


class Youth(SQLModel, table=True):
    # Numbers people quote (S-12, R-40, ...) are never given out again, also on SQLite.
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    # HMAC of the BSN (or of surname|birth date|sex for a youth without BSN): matching key.
    identity_key: str = Field(max_length=64, unique=True)
    has_bsn: bool = True
    bsn_encrypted: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    name_encrypted: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    birth_date: date
    municipality: str = Field(foreign_key="municipality.name", max_length=100)
    # Jeugdwet 7.1.1.1: everything about the youth is purged on the 23rd birthday.
    purge_on: date = Field(index=True)
    created_at: datetime = Field(default_factory=utcnow)


class YouthParent(SQLModel, table=True):
    """A parent's BSN digest: youths sharing one are a family (gezinsmatch, sibling coordinator)."""

    __table_args__ = (UniqueConstraint("youth_id", "parent_key"),)

    id: int | None = Field(default=None, primary_key=True)
    youth_id: int = Field(foreign_key="youth.id", index=True, ondelete="CASCADE")
    parent_key: str = Field(max_length=64, index=True)
