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

from core.audit_anchor import mail_audit_anchor
from core.clock import utcnow
from core.config import CoreConfig
from core.coordination import sweep_coordination
from core.db import run_in_transaction
from core.departures import ask_for_transfers
from core.follow_up import sweep_match_follow_up
from core.informing import remind_uninformed
from core.report_mail import send_monthly_reports
from core.retention import (
    archive_ended_signals,
    end_lapsed_registrations,
    erase_kept_mail,
    purge_adults,
    purge_old_archive,
    warn_expiring_signals,
)
from core.rights_requests import remind_request_deadlines

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
    ("erased_kept_mail", erase_kept_mail),
    ("departures", ask_for_transfers),
    ("rights_request_deadlines", remind_request_deadlines),
    ("informing_reminders", remind_uninformed),
    ("monthly_reports", send_monthly_reports),
    # Last, so the day's anchor covers what the other jobs logged.
    ("audit_anchor", mail_audit_anchor),
]


# What each count of the sweep's report means, for people (``sweep`` prints these; ``--json``
# keeps the keys, which scripts read).
COUNT_LABELS = {
    "purge_adults": "jongeren van 23 of ouder gewist",
    "expiry_warnings": "waarschuwingen: signaal verloopt",
    "archived_signals": "beëindigde signalen gearchiveerd",
    "ended_registrations": "verlopen betrokkenheden beëindigd",
    "purged_archive": "archief na de bewaartermijn gewist",
    "reminded": "herinneringen procescoördinatie",
    "escalated": "procescoördinaties geëscaleerd",
    "match_reminders": "herinneringen: contact na match",
    "match_escalations": "matches zonder contact geëscaleerd",
    "erased_kept_mail": "bewaarde mail gewist",
    "departures": "vertrokken hulpverleners: overdracht gevraagd",
    "rights_request_deadlines": "herinneringen: termijn rechtenverzoek",
    "informing_reminders": "herinneringen: informeren",
    "monthly_reports": "maandrapporten verstuurd",
    "audit_anchor": "logboekankers gemaild",
}


def count_label(key: str) -> str:
    return COUNT_LABELS.get(key, key.replace("_", " "))


def sweep(engine: Engine, config: CoreConfig, now: datetime | None = None) -> dict[str, int]:
    """Run every job; returns how many items each handled. A failing job is logged and the
    others still run; the first failure is raised at the end, so callers see it."""
    now = now or utcnow()
    report: dict[str, int] = {}
    failures: list[Exception] = []
    for name, job in JOBS:
        try:
            result = run_in_transaction(engine, _bound(job, config, now))
        except Exception as exc:
            log.exception("sweep job %s failed", name)
            failures.append(exc)
            continue
        if isinstance(result, dict):
            report.update({str(key): int(value) for key, value in result.items()})
        else:
            report[name] = result if isinstance(result, int) else 0
    log.info("sweep done: %s", report)
    if failures:
        raise failures[0]
    return report


def _bound(job: Job, config: CoreConfig, now: datetime) -> Callable[[Session], object]:
    def work(session: Session) -> object:
        return job(session, config, now)

    return work
