"""Readiness (core.health): each check says what is wrong, and only the roles this process runs
are checked."""

from __future__ import annotations

import time
from datetime import timedelta

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.clock import utcnow
from core.health import RoleStates, readiness
from core.metrics import QueueCollector
from core.migrations import head_revision
from core.models import OutboxMessage


def _by_name(engine: Engine, states: RoleStates) -> dict[str, tuple[bool, str]]:
    return {check.name: (check.ok, check.detail) for check in readiness(engine, states)}


def test_a_schema_that_was_never_migrated_is_not_ready(engine: Engine) -> None:
    checks = _by_name(engine, RoleStates())
    assert checks["database"] == (True, "reachable")
    ok, detail = checks["migrations"]
    assert not ok and "run db upgrade" in detail
    assert "scheduler" not in checks and "imap" not in checks  # roles this process lacks


def _stamp(engine: Engine, revision: str) -> None:
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
        connection.execute(text("INSERT INTO alembic_version VALUES (:r)"), {"r": revision})


def test_an_older_schema_asks_for_db_upgrade(engine: Engine) -> None:
    _stamp(engine, "0005")
    ok, detail = _by_name(engine, RoleStates())["migrations"]
    assert not ok and detail == f"database at 0005, code at {head_revision()}: run db upgrade"


def test_a_schema_newer_than_the_code_asks_for_the_new_release_not_db_upgrade(
    engine: Engine,
) -> None:
    _stamp(engine, "0999")
    ok, detail = _by_name(engine, RoleStates())["migrations"]
    assert not ok
    assert "database at 0999 is newer than this code" in detail
    assert "install the new release" in detail and "run db upgrade" not in detail


def test_the_outbox_metric_has_every_channel_and_status_from_the_start(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(
            OutboxMessage(
                kind="match",
                channel="email",
                recipient="zorg@ggd-groningen.example",
                recipient_role="institution",
                reference="M-1",
                context={},
                idempotency_key="pending-1",
            )
        )
        session.commit()
    families: list[GaugeMetricFamily] = list(QueueCollector(engine).collect())
    (outbox,) = [f for f in families if f.name == "verwijsindex_outbox_messages"]
    series = {(s.labels["channel"], s.labels["status"]): s.value for s in outbox.samples}
    assert series == {
        (channel, status): 1.0 if (channel, status) == ("email", "pending") else 0.0
        for channel in ("email", "slack")
        for status in ("pending", "sending", "sent", "failed")
    }


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
