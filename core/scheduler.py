"""The time-driven jobs (``verwijsindex sweep``, and periodically inside ``serve``).

Each job runs in its own transaction so one failing job does not hold back the others, and
each is idempotent: running the sweep twice, or on two machines at once, changes nothing more.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.clock import utcnow
from core.config import CoreConfig
from core.coordination import sweep_coordination
from core.db import run_in_transaction
from core.follow_up import sweep_match_follow_up
from core.retention import (
    archive_ended_signals,
    end_lapsed_registrations,
    purge_adults,
    purge_old_archive,
    warn_expiring_signals,
)

log = logging.getLogger(__name__)

Job = Callable[[Session, CoreConfig, datetime], object]

JOBS: list[tuple[str, Job]] = [
    ("purge_adults", purge_adults),
    ("expiry_warnings", warn_expiring_signals),
    ("archived_signals", archive_ended_signals),
    ("ended_registrations", end_lapsed_registrations),
    ("purged_archive", purge_old_archive),
    ("coordination", sweep_coordination),
    ("match_follow_up", sweep_match_follow_up),
]


def sweep(engine: Engine, config: CoreConfig, now: datetime | None = None) -> dict[str, int]:
    now = now or utcnow()
    report: dict[str, int] = {}
    for name, job in JOBS:
        result = run_in_transaction(engine, lambda session, job=job: job(session, config, now))
        if isinstance(result, dict):
            report.update(result)
        else:
            report[name] = int(result)  # type: ignore[call-overload]
    log.info("sweep done: %s", report)
    return report
