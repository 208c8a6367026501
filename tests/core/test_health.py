"""Readiness (core.health): each check says what is wrong, and only the roles this process runs
are checked."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.clock import utcnow
from core.health import RoleStates, readiness
from core.models import OutboxMessage


def _by_name(engine: Engine, states: RoleStates) -> dict[str, tuple[bool, str]]:
    return {check.name: (check.ok, check.detail) for check in readiness(engine, states)}


def test_a_schema_that_was_never_migrated_is_not_ready(engine: Engine) -> None:
    checks = _by_name(engine, RoleStates())
    assert checks["database"] == (True, "reachable")
    ok, detail = checks["migrations"]
    assert not ok and "run db upgrade" in detail
    assert "scheduler" not in checks and "imap" not in checks  # roles this process lacks


def test_an_overdue_notification_means_the_outbox_is_stuck(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(
            OutboxMessage(
                kind="match",
                channel="email",
                recipient="zorg@ggd-groningen.example",
                recipient_role="institution",
                reference="M-1",
                context={},
                idempotency_key="stuck-1",
                next_attempt_at=utcnow() - timedelta(minutes=20),
            )
        )
        session.commit()
    ok, detail = _by_name(engine, RoleStates())["outbox"]
    assert not ok and "20 minutes" in detail


def test_the_scheduler_and_imap_are_checked_where_they_run(engine: Engine) -> None:
    states = RoleStates()
    states.scheduler_runs(60.0)
    states.imap_runs()
    checks = _by_name(engine, states)
    assert checks["scheduler"] == (True, "starting")
    assert checks["imap"][0] is False
    states.imap_connection(True)
    states.swept()
    assert _by_name(engine, states)["imap"] == (True, "connected")
    states.last_sweep = time.monotonic() - 600
    ok, detail = _by_name(engine, states)["scheduler"]
    assert not ok and "no sweep for" in detail


def test_an_unreachable_database_is_not_ready() -> None:
    from core.db import create_db_engine

    broken = create_db_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    try:
        checks = _by_name(broken, RoleStates())
    finally:
        broken.dispose()
    assert checks == {"database": (False, "unreachable (OperationalError)")}
