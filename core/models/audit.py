"""The logboek: append-only, MAC-chained (see core.audit)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from core.clock import utcnow


class AuditEvent(SQLModel, table=True):
    # An event's id is its place in the chain: never reused after a (forbidden) delete.
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    occurred_at: datetime = Field(default_factory=utcnow)
    actor: str = Field(max_length=340)  # "professional:a@b", "institution:ggd", "system:sweep"
    action: str = Field(max_length=60, index=True)
    subject: str = Field(max_length=60, index=True)  # "youth:12", "signal:34"
    channel: str = Field(max_length=10)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    # ``hash`` is the row's HMAC (core.audit.event_mac) under the key ``key_id`` names; the column
    # names date from the unkeyed SHA-256 chain. ``key_id`` is NULL only on a row written before
    # revision 0002 that the upgrade could not key (its unkeyed chain was already broken).
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)
    key_id: str | None = Field(default=None, max_length=8)


class AuditHead(SQLModel, table=True):
    """The chain's tail, kept in step with every append: deleting the newest events (which
    leaves an intact but shorter chain) is detected by comparing against it. ``mac`` (under
    ``key_id``) covers the other fields, so the head cannot be rewritten to match a cut chain."""

    id: int = Field(default=1, primary_key=True)
    last_event_id: int
    last_hash: str = Field(max_length=64)
    event_count: int
    key_id: str | None = Field(default=None, max_length=8)
    mac: str | None = Field(default=None, max_length=64)
