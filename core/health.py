"""Is this instance alive, and is it ready for work (issue 13.2: ``/healthz``, ``/readyz``)?

Liveness is the process answering at all. Readiness is what an operator or a load balancer must
know before trusting the instance with mail: the database answers, its schema is the code's
(``db upgrade`` ran), and the roles this process runs are doing their work — the scheduler swept
recently, the IMAP intake is connected, and the outbox is moving.

The roles report their own state here (:data:`roles`); the checks that need the database ask it
at the moment of the request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta

from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlmodel import col

from core.clock import as_utc, utcnow
from core.db import reading
from core.models import OutboxMessage, OutboxStatus

# A notification due this long without being sent means delivery is stuck (relay down, every
# worker dead): mail waits, and someone must look.
OUTBOX_STUCK_AFTER = timedelta(minutes=15)


@dataclass
class RoleStates:
    """What the roles running in this process last reported (monotonic seconds)."""

    started: float = field(default_factory=time.monotonic)
    scheduler_interval: float | None = None  # set when this process runs the scheduler
    last_sweep: float | None = None
    imap_expected: bool = False
    imap_connected: bool = False

    def scheduler_runs(self, interval: float) -> None:
        self.scheduler_interval = interval

    def swept(self) -> None:
        self.last_sweep = time.monotonic()

    def imap_runs(self) -> None:
        self.imap_expected = True

    def imap_connection(self, connected: bool) -> None:
        self.imap_connected = connected


roles = RoleStates()  # this process's roles report here


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def readiness(engine: Engine, states: RoleStates | None = None) -> list[Check]:
    """Every readiness check, in a fixed order; the instance is ready when all are ok."""
    states = states or roles
    checks = [_database(engine)]
    if checks[0].ok:
        checks.append(_schema(engine))
        checks.append(_outbox(engine))
    if states.scheduler_interval is not None:
        checks.append(_scheduler(states))
    if states.imap_expected:
        checks.append(
            Check(
                "imap",
                states.imap_connected,
                "connected"
                if states.imap_connected
                else "not connected to the IMAP server (it is tried again; see the log)",
            )
        )
    return checks


def _database(engine: Engine) -> Check:
    try:
        with reading(engine).connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        return Check("database", False, f"unreachable ({type(exc).__name__})")
    return Check("database", True, "reachable")


def _schema(engine: Engine) -> Check:
    from core.migrations import head_revision, is_known_revision

    with reading(engine).connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    head = head_revision()
    if current == head:
        return Check("migrations", True, f"at {head}")
    if current is not None and not is_known_revision(current):
        return Check(
            "migrations",
            False,
            f"database at {current} is newer than this code (at {head}): install the new "
            "release on this instance (db upgrade cannot go back)",
        )
    return Check("migrations", False, f"database at {current}, code at {head}: run db upgrade")


def _outbox(engine: Engine) -> Check:
    now = utcnow()
    with reading(engine).connect() as connection:
        oldest = connection.execute(
            select(func.min(OutboxMessage.next_attempt_at)).where(
                col(OutboxMessage.status) == OutboxStatus.PENDING.value,
                col(OutboxMessage.next_attempt_at) <= now,
            )
        ).scalar_one_or_none()
    if oldest is None:
        return Check("outbox", True, "nothing overdue")
    waiting = now - as_utc(oldest)
    if waiting > OUTBOX_STUCK_AFTER:
        minutes = int(waiting.total_seconds() // 60)
        return Check("outbox", False, f"a notification has been due for {minutes} minutes")
    return Check("outbox", True, "moving")


def _scheduler(states: RoleStates) -> Check:
    assert states.scheduler_interval is not None
    allowed = 3 * states.scheduler_interval
    since = time.monotonic() - (states.last_sweep or states.started)
    if since <= allowed:
        return Check("scheduler", True, "swept recently" if states.last_sweep else "starting")
    return Check("scheduler", False, f"no sweep for {int(since)} s")
