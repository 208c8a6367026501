"""Lifetimes set by law (DOMAIN: Age, Lifetime): the expiry warning a week before a signal's end
date, archiving the day after it, purging the archive after 5 years, and purging everything
about a youth on the 23rd birthday. Also: the content of inbound mail kept for an administrator
(not understood, or automatic) is erased after the region's ``kept_mail_days``.

Every job is idempotent and safe to run on two machines at once: each youth is locked before it
is changed, and a youth purged meanwhile is skipped."""

from __future__ import annotations

from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta
from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from core import audit
from core.clock import local_date, start_of_local_day
from core.config import CoreConfig
from core.coordination import reconcile_coordination
from core.coordination_family import release_youth
from core.events import SignalExpiringEvent
from core.identity import twenty_third_birthday
from core.matching import reconcile_family_matches
from core.models import (
    Coordination,
    InboundMessage,
    InboundStatus,
    Match,
    MatchMember,
    MatchStatus,
    OutboxMessage,
    OutboxStatus,
    Registration,
    RegistrationStatus,
    ReplyPurpose,
    ReplyToken,
    RightsRequest,
    RightsRequestStatus,
    Signal,
    SignalStatus,
    Youth,
    YouthParent,
)
from core.notifications import publish
from core.reconcile import reconcile_youth
from core.signals import end_signal


def _lock_youth_if_present(session: Session, youth_id: int) -> bool:
    """Lock the youth's row; False when another sweeper purged it meanwhile."""
    found = session.exec(select(Youth.id).where(Youth.id == youth_id).with_for_update()).first()
    return found is not None


def warn_expiring_signals(session: Session, config: CoreConfig, now: datetime) -> int:
    """The reporter is asked to extend ``reminder_lead_days`` before the end date, once per end
    date (an extension clears ``expiry_warned_at``, so the new end date is warned of again).

    No youth lock is needed: two sweepers warning at once write the same outbox idempotency
    key, so one transaction fails on the unique index and its retry finds the signal warned."""
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
    rows = session.exec(
        select(Signal.id, Signal.youth_id).where(
            Signal.status == SignalStatus.ACTIVE, col(Signal.ends_on) < today
        )
    ).all()
    archived = 0
    for signal_id, youth_id in rows:
        if not _lock_youth_if_present(session, youth_id):
            continue  # purged meanwhile
        signal = session.get(Signal, signal_id, populate_existing=True)
        if signal is None or signal.status != SignalStatus.ACTIVE or signal.ends_on >= today:
            continue  # another sweeper, or an extension, got here first
        end_signal(session, config, signal, "expired", audit.SYSTEM, now)
        archived += 1
    return archived


def end_lapsed_registrations(session: Session, config: CoreConfig, now: datetime) -> int:
    """A registration with an end date is involved up to and including that date."""
    today = local_date(now, config.tz)
    rows = session.exec(
        select(Registration.id, Registration.youth_id).where(
            Registration.status == RegistrationStatus.ACTIVE,
            col(Registration.ends_on).is_not(None),
            col(Registration.ends_on) < today,
        )
    ).all()
    ended = 0
    for registration_id, youth_id in rows:
        if not _lock_youth_if_present(session, youth_id):
            continue
        registration = session.get(Registration, registration_id, populate_existing=True)
        if (
            registration is None
            or registration.status != RegistrationStatus.ACTIVE
            or registration.ends_on is None
            or registration.ends_on >= today
        ):
            continue  # ended, renewed or extended meanwhile
        registration.status = RegistrationStatus.ENDED
        registration.ended_at = now
        session.add(registration)
        audit.record(
            session,
            audit.SYSTEM,
            "registration-ended",
            f"youth:{youth_id}",
            details={"registration": registration.number, "reason": "end date"},
            at=now,
        )
        reconcile_youth(session, config, youth_id, now)
        ended += 1
    return ended


def purge_old_archive(session: Session, config: CoreConfig, now: datetime) -> int:
    """Archived signals are kept 5 years (DOMAIN: Lifetime): a signal archived on some day is
    purged on the same calendar day ``archive_years`` later."""
    today = local_date(now, config.tz)
    kept_since = today - relativedelta(years=config.covenant.region.archive_years)
    cutoff = start_of_local_day(kept_since + timedelta(days=1), config.tz)
    rows = session.exec(
        select(Signal.id, Signal.youth_id)
        .where(Signal.status == SignalStatus.ARCHIVED, col(Signal.archived_at) < cutoff)
        .order_by(col(Signal.youth_id), col(Signal.id))
    ).all()
    by_youth: dict[int, list[int]] = {}
    for signal_id, youth_id in rows:
        if signal_id is not None:
            by_youth.setdefault(youth_id, []).append(signal_id)
    purged = 0
    for youth_id, signal_ids in by_youth.items():
        if not _lock_youth_if_present(session, youth_id):
            continue
        still_archived = list(
            session.exec(
                select(Signal.id).where(
                    col(Signal.id).in_(signal_ids), Signal.status == SignalStatus.ARCHIVED
                )
            ).all()
        )
        if not still_archived:
            continue
        session.execute(delete(MatchMember).where(col(MatchMember.signal_id).in_(still_archived)))
        session.execute(delete(Signal).where(col(Signal.id).in_(still_archived)))
        audit.record(
            session,
            audit.SYSTEM,
            "archive-purged",
            f"youth:{youth_id}",
            details={"signals": [f"S-{i}" for i in still_archived]},
            at=now,
        )
        purged += len(still_archived)
    return purged


def purge_adults(session: Session, config: CoreConfig, now: datetime) -> int:
    """Jeugdwet 7.1.1.1: on the 23rd birthday everything about the youth goes.

    Only the month of that birthday is in clear: this month's youths are the candidates, and
    each one's decrypted birth date says whether the day has come."""
    today = local_date(now, config.tz)
    candidates = session.exec(
        select(Youth.id, Youth.birth_date_encrypted).where(col(Youth.purge_month) <= today)
    ).all()
    ids = [
        youth_id
        for youth_id, sealed in candidates
        if twenty_third_birthday(config.keys.decrypt_date(sealed)) <= today
    ]
    purged = 0
    for youth_id in ids:
        if youth_id is not None and purge_youth(
            session, config, youth_id, reason="23rd birthday", now=now
        ):
            purged += 1
    return purged


def purge_youth(
    session: Session, config: CoreConfig, youth_id: int, *, reason: str, now: datetime
) -> bool:
    """Delete the youth and all that hangs off it (also used on notice of death).

    Returns False when the youth was already gone. The youth's client match ends (it keeps no
    link to the youth); siblings' family matches are recomputed, as without this youth's
    signals a family match may have fewer than two left. Notifications about the youth's records
    not yet delivered, and the reply tokens that answer them, go too; a rights request about
    the youth stays as the record of how it was handled, without the link (and lapses if open).
    """
    if not _lock_youth_if_present(session, youth_id):
        return False
    parent_keys = list(
        session.exec(select(YouthParent.parent_key).where(YouthParent.youth_id == youth_id)).all()
    )
    signal_ids = list(session.exec(select(Signal.id).where(Signal.youth_id == youth_id)).all())
    registrations = session.exec(
        select(Registration.id).where(Registration.youth_id == youth_id)
    ).all()
    client_match_ids = list(session.exec(select(Match.id).where(Match.youth_id == youth_id)).all())
    if signal_ids:
        session.execute(delete(MatchMember).where(col(MatchMember.signal_id).in_(signal_ids)))
    session.execute(
        update(Match)
        .where(col(Match.youth_id) == youth_id)
        .values(youth_id=None, status=MatchStatus.ENDED.value, ended_at=now)
    )
    release_youth(session, youth_id, now)  # a family's coordination carries on for siblings
    coordination_ids = list(
        session.exec(select(Coordination.id).where(Coordination.youth_id == youth_id)).all()
    )
    forget_messages(
        session,
        {
            ReplyPurpose.SIGNAL_EXPIRY: signal_ids,
            ReplyPurpose.MATCH: client_match_ids,
            ReplyPurpose.COORDINATION: coordination_ids,
        },
        [f"R-{i}" for i in registrations],
    )
    _detach_rights_requests(session, youth_id, now)
    session.execute(delete(Coordination).where(col(Coordination.youth_id) == youth_id))
    session.execute(delete(Signal).where(col(Signal.youth_id) == youth_id))
    session.execute(delete(Registration).where(col(Registration.youth_id) == youth_id))
    session.execute(delete(YouthParent).where(col(YouthParent.youth_id) == youth_id))
    session.execute(delete(Youth).where(col(Youth.id) == youth_id))
    audit.record(
        session,
        audit.SYSTEM,
        "youth-purged",
        f"youth:{youth_id}",
        details={
            "reason": reason,
            "signals": len(signal_ids),
            "registrations": len(registrations),
        },
        at=now,
    )
    _reconcile_siblings(session, config, parent_keys, now)
    return True


_NUMBER_PREFIX = {
    ReplyPurpose.SIGNAL_EXPIRY: "S-",
    ReplyPurpose.MATCH: "M-",
    ReplyPurpose.COORDINATION: "C-",
}


def forget_messages(
    session: Session, subjects: dict[ReplyPurpose, list[int | None]], other_references: list[str]
) -> None:
    """Undelivered notifications (pending, or failed and so open to ``outbox retry``) about the
    purged records, and the reply tokens that would answer about them. What was delivered stays:
    it names numbers only, and the logboek records its sending."""
    references = list(other_references)
    for purpose, ids in subjects.items():
        wanted = [i for i in ids if i is not None]
        references += [f"{_NUMBER_PREFIX[purpose]}{i}" for i in wanted]
        if wanted:
            session.execute(
                delete(ReplyToken).where(
                    col(ReplyToken.purpose) == purpose.value,
                    col(ReplyToken.subject_id).in_(wanted),
                )
            )
    if references:
        session.execute(
            delete(OutboxMessage).where(
                col(OutboxMessage.reference).in_(references),
                col(OutboxMessage.status).in_(
                    [OutboxStatus.PENDING.value, OutboxStatus.FAILED.value]
                ),
            )
        )


def _detach_rights_requests(session: Session, youth_id: int, now: datetime) -> None:
    session.execute(
        update(RightsRequest)
        .where(
            col(RightsRequest.youth_id) == youth_id,
            col(RightsRequest.status) == RightsRequestStatus.OPEN.value,
        )
        .values(
            status=RightsRequestStatus.LAPSED.value,
            decided_at=now,
            outcome_note="vervallen: alle gegevens van de jongere zijn verwijderd",
        )
    )
    session.execute(
        update(RightsRequest).where(col(RightsRequest.youth_id) == youth_id).values(youth_id=None)
    )


def _reconcile_siblings(
    session: Session, config: CoreConfig, parent_keys: list[str], now: datetime
) -> None:
    if not parent_keys:
        return
    siblings = sorted(
        set(
            session.exec(
                select(YouthParent.youth_id).where(col(YouthParent.parent_key).in_(parent_keys))
            ).all()
        )
    )
    for sibling_id in siblings:
        reconcile_family_matches(session, config, sibling_id, now)
        reconcile_coordination(session, config, sibling_id, now)


__all__ = [
    "archive_ended_signals",
    "end_lapsed_registrations",
    "purge_adults",
    "purge_old_archive",
    "purge_youth",
    "warn_expiring_signals",
]


def erase_kept_mail(session: Session, config: CoreConfig, now: datetime) -> int:
    """Mail that was kept rather than processed (``failed``/``ignored``) keeps its sealed bytes
    only ``kept_mail_days``: long enough for an administrator, not a second archive of BSNs.
    The row itself (sender, Message-ID, status) stays, so a resend is still recognised."""
    cutoff = now - timedelta(days=config.covenant.region.kept_mail_days)
    result = session.execute(
        update(InboundMessage)
        .where(
            col(InboundMessage.status).in_(
                [InboundStatus.FAILED.value, InboundStatus.IGNORED.value]
            ),
            col(InboundMessage.received_at) < cutoff,
            col(InboundMessage.raw) != b"",
        )
        .values(raw=b"")
    )
    erased = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if erased:
        audit.record(
            session,
            audit.SYSTEM,
            "kept-mail-erased",
            "inbound",
            details={"messages": erased},
            at=now,
        )
    return erased
