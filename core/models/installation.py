"""This installation: one row, made with the database, that tells it from any other."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from core.clock import utcnow


class Installation(SQLModel, table=True):
    """A random id drawn when the database is made (and kept by a backup and its restore), so
    what must be unique across installations — notification Message-IDs — differs between two
    databases even when they share a mail domain and a secret key."""

    id: int = Field(default=1, primary_key=True)
    installation_id: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow)
