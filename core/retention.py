"""Lifetimes set by law (DOMAIN: Age, Lifetime): expiry warning a week before a signal's end
date, archive at the end date, archive purged after 5 years, and everything about a youth
purged on the 23rd birthday. Every job is idempotent and safe to run on two machines at once
(each youth is locked before it is changed)."""

from __future__ import annotations

from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta
from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from core import audit
from core.clock import local_date
from core.config import CoreConfig
from core.events import SignalExpiringEvent
from core.models import (
    Coordination,
    Match,
    MatchMember,
    Registration,
    RegistrationStatus,
    Signal,
    SignalStatus,
    Youth,
    YouthParent,
)
from core.notifications import publish
from core.signals import end_signal
from core.youths import lock_youth


def warn_expiring_signals(session: Session, config: CoreConfig, now: datetime) -> int:
    today = local_date(now, config.tz)
    horizon = today + timedelta(days=config.covenant.region.reminder_lead_days)
    signals = session.exec(
        select(Signal).where(
            Signal.status == SignalStatus.ACTIVE,
            col(Signal.ends_on) <= horizon,
            col(Signal.ends_on) >= today,
            col(Signal.expiry_warned_at).is_(None),
        )
    ).all()
    for signal in signals:
        signal.expiry_warned_at = now
        session.add(signal)
        publish(session, config, SignalExpiringEvent(at=now, signal_id=signal.id or 0))
    return len(signals)


def archive_ended_signals(session: Session, config: CoreConfig, now: datetime) -> int:
    """A signal is active up to and including its end date; the day after, it is archived."""
    today = local_date(now, config.tz)
    ids = session.exec(
        select(Signal.id).where(Signal.status == SignalStatus.ACTIVE, col(Signal.ends_on) < today)
    ).all()
    archived = 0
    for signal_id in ids:
        signal = session.get(Signal, signal_id)
        if signal is None:
            continue
        lock_youth(session, signal.youth_id)
        session.refresh(signal)
        if signal.status != SignalStatus.ACTIVE:
            continue  # another sweeper got here first
        end_signal(session, config, signal, "expired", audit.SYSTEM, now)
        archived += 1
    return archived


def end_lapsed_registrations(session: Session, config: CoreConfig, now: datetime) -> int:
    today = local_date(now, config.tz)
    rows = session.exec(
        select(Registration).where(
            Registration.status == RegistrationStatus.ACTIVE,
            col(Registration.ends_on).is_not(None),
            col(Registration.ends_on) < today,
        )
    ).all()
    from core.reconcile import reconcile_youth

    for registration in rows:
        lock_youth(session, registration.youth_id)
        registration.status = RegistrationStatus.ENDED
        registration.ended_at = now
        session.add(registration)
        audit.record(session, audit.SYSTEM, "registration-ended", f"youth:{registration.youth_id}",
                     details={"registration": registration.number, "reason": "end date"}, at=now)
        reconcile_youth(session, config, registration.youth_id, now)
    return len(rows)


def purge_old_archive(session: Session, config: CoreConfig, now: datetime) -> int:
    cutoff = now - relativedelta(years=config.covenant.region.archive_years)
    ids = session.exec(
        select(Signal.id).where(
            Signal.status == SignalStatus.ARCHIVED, col(Signal.archived_at) <= cutoff
        )
    ).all()
    if ids:
        session.execute(delete(MatchMember).where(col(MatchMember.signal_id).in_(ids)))
        session.execute(delete(Signal).where(col(Signal.id).in_(ids)))
        audit.record(session, audit.SYSTEM, "archive-purged", "signals",
                     details={"count": len(ids)}, at=now)
    return len(ids)


def purge_adults(session: Session, config: CoreConfig, now: datetime) -> int:
    """Jeugdwet 7.1.1.1: on the 23rd birthday everything about the youth goes."""
    today = local_date(now, config.tz)
    ids = list(session.exec(select(Youth.id).where(col(Youth.purge_on) <= today)).all())
    for youth_id in ids:
        purge_youth(session, youth_id, reason="23rd birthday", now=now)
    return len(ids)


def purge_youth(session: Session, youth_id: int, *, reason: str, now: datetime) -> None:
    """Delete the youth and all that hangs off it (also used on notice of death)."""
    lock_youth(session, youth_id)
    signal_ids = select(Signal.id).where(Signal.youth_id == youth_id)
    session.execute(delete(MatchMember).where(col(MatchMember.signal_id).in_(signal_ids)))
    session.execute(
        update(Match).where(Match.youth_id == youth_id).values(youth_id=None, status="ended", ended_at=now)
    )
    session.execute(delete(Coordination).where(Coordination.youth_id == youth_id))
    session.execute(delete(Signal).where(Signal.youth_id == youth_id))
    session.execute(delete(Registration).where(Registration.youth_id == youth_id))
    session.execute(delete(YouthParent).where(YouthParent.youth_id == youth_id))
    session.execute(delete(Youth).where(Youth.id == youth_id))
    audit.record(session, audit.SYSTEM, "youth-purged", f"youth:{youth_id}",
                 details={"reason": reason}, at=now)


__all__ = [
    "archive_ended_signals",
    "end_lapsed_registrations",
    "purge_adults",
    "purge_old_archive",
    "purge_youth",
    "warn_expiring_signals",
]
