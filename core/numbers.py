"""The numbers people use for records (``S-12``, ``M-3``, ``J-7``, ``V-2``, ``R-40``, ``T-5``):
one way to read them, and to look the record up, for every command that takes one."""

from __future__ import annotations

from typing import TypeVar

from sqlmodel import Session, SQLModel

from core.errors import NotFound

MAX_ROW_ID = 2**63 - 1  # no row id is larger, in either database

Row = TypeVar("Row", bound=SQLModel)


def row_id(number: str, prefix: str) -> int | None:
    """The row id ``number`` names (its prefix, in any case, may be left out), or None when it
    names none: other characters, zero, or past any row id."""
    digits = (number or "").strip().upper().removeprefix(prefix.upper())
    if not (digits.isascii() and digits.isdigit()):
        return None
    value = int(digits)
    return value if 0 < value <= MAX_ROW_ID else None


def find_numbered(
    session: Session,
    model: type[Row],
    number: str,
    *,
    prefix: str,
    missing: str,
    field: str | None = None,
) -> Row:
    """The record ``number`` names, or :class:`NotFound` with ``missing`` (Dutch, for the
    person who typed it)."""
    identifier = row_id(number, prefix)
    row = session.get(model, identifier) if identifier is not None else None
    if row is None:
        raise NotFound(missing, field=field)
    return row
