"""Which installation this database is (core.models.Installation): read, or drawn once."""

from __future__ import annotations

import secrets

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core.models import Installation


def installation_id(engine: Engine) -> str:
    """This database's installation id. A database made by ``db upgrade`` has it from revision
    0004; one made otherwise (``metadata.create_all`` in tests) draws it on first use, and two
    processes drawing at once agree on the first one stored."""
    with Session(engine) as session:
        row = session.get(Installation, 1)
        if row is not None:
            return row.installation_id
        session.add(Installation(id=1, installation_id=secrets.token_hex(16)))
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
        row = session.get(Installation, 1)
        assert row is not None
        return row.installation_id
