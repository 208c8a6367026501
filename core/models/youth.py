"""Youths: identified by a keyed digest; identity fields kept only encrypted.

In clear only what the rules need without the key: the municipality (coordination rules,
escalation) and the month of the 23rd birthday (the purge sweep's candidates). The exact birth
date, and so the age, is decrypted when a rule needs it (README: what is stored in clear).
"""

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
    # Encrypted values carry their own key id (core.sealing).
    bsn_encrypted: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    name_encrypted: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    municipality: str = Field(foreign_key="municipality.name", max_length=100)
    created_at: datetime = Field(default_factory=utcnow)
    # (Columns added by revision 0003 come last, where PostgreSQL's ALTER TABLE puts them.)
    # The region key (core.keyring) identity_key was made with; `keys rotate` moves it.
    key_id: str = Field(max_length=8)
    birth_date_encrypted: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    # A youth without BSN: folded surname and sex, so a rotation can make identity_key again.
    substitute_encrypted: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    # Jeugdwet 7.1.1.1: everything about the youth is purged on the 23rd birthday. Only its
    # month is in clear (the first day of it): the sweep decrypts the birth dates of that
    # month's youths to purge each on the day itself.
    purge_month: date = Field(index=True)
    # A move to a municipality outside the covenant (Jeugdwet 7.1.2.3 g): ``municipality`` stays
    # the last covenant municipality (its contact keeps regie while signals run); this names
    # where the youth went, as the institution wrote it (revision 0008).
    moved_out_to: str | None = Field(default=None, max_length=100)
    moved_out_at: datetime | None = None


class YouthParent(SQLModel, table=True):
    """A parent's BSN digest: youths sharing one are a family (gezinsmatch, sibling coordinator).

    The parent's BSN is kept encrypted beside it only so that `keys rotate` can make the digest
    again under a new key (rows from before revision 0003 have none: see core.key_rotation).
    """

    __table_args__ = (UniqueConstraint("youth_id", "parent_key"),)

    id: int | None = Field(default=None, primary_key=True)
    youth_id: int = Field(foreign_key="youth.id", index=True, ondelete="CASCADE")
    parent_key: str = Field(max_length=64, index=True)
    key_id: str = Field(max_length=8)
    parent_bsn_encrypted: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
