"""Informing the youth or parents of a signal (Jeugdwet 7.1.5, AVG art. 14; DOMAIN: Informing).

When placing a signal the reporter records whether the youth or parents were informed: ``ja``,
not yet (``nee``) or postponed (``uitgesteld``), the last two with a reason
(:func:`core.signals.check_informing`). A signal not yet informed earns its reporter (and their
stand-in) one reminder, ``VERWIJSINDEX_INFORMING_REMINDER_DAYS`` working days after placing,
naming who must be informed at the youth's age that day (:func:`core.signals.informed_party_for`).
The reporter records informing later with :func:`record_informed` — from the reminder (a button,
a ``GEINFORMEERD`` reply), ``/verwijsindex geinformeerd S-12`` or ``verwijsindex signal
informed`` — and ``Signal.informed_at`` keeps when, for the region's figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlmodel import Session, col, select

from core import audit
from core.actors import acting_professional
from core.clock import as_utc, local_date, utcnow
from core.config import CoreConfig
from core.errors import Conflict
from core.events import InformingReminderDueEvent, SignalInformedEvent
from core.models import Informed, Signal, SignalStatus, Youth
from core.notifications import publish
from core.signals import check_owner_or_stand_in, find_signal, informed_party_for
from core.youths import age_of, lock_youth

NOT_INFORMED = (Informed.NO.value, Informed.POSTPONED.value)


@dataclass(frozen=True)
class InformingOutcome:
    number: str
    informed_at: datetime
    informed_party: str  # ouders | jongere en ouders | jongere
    already: bool  # it had been recorded before: nothing changed


def record_informed(
    number: str,
    *,
    session: Session,
    config: CoreConfig,
    actor: audit.Actor,
    now: datetime | None = None,
) -> InformingOutcome:
    """The youth or parents of signal ``number`` have now been informed. Its reporter, their
    stand-in or the institution's coordinator may say so; saying it twice changes nothing."""
    now = now or utcnow()
    professional = acting_professional(session, actor)
    signal = find_signal(session, number)
    youth = lock_youth(session, signal.youth_id)
    session.refresh(signal)
    check_owner_or_stand_in(session, config, signal, professional, now)
    if signal.informed == Informed.YES:
        return InformingOutcome(
            signal.number,
            as_utc(signal.informed_at or signal.placed_at),
            signal.informed_party,
            already=True,
        )
    if signal.status != SignalStatus.ACTIVE:
        raise Conflict(
            f"{signal.number} is niet meer actief; informeren kan niet meer worden vastgelegd"
        )
    before = signal.informed
    signal.informed = Informed.YES.value
    signal.informed_at = now
    # Who was informed, at the youth's age today (a child may have turned 12 since placing).
    signal.informed_party = informed_party_for(age_of(config, youth, local_date(now, config.tz)))
    session.add(signal)
    audit.record(
        session,
        actor,
        "signal-informed",
        f"youth:{signal.youth_id}",
        details={"signal": signal.number, "before": before, "party": signal.informed_party},
        at=now,
    )
    publish(
        session,
        config,
        SignalInformedEvent(at=now, signal_id=signal.id or 0, professional_id=professional.id or 0),
    )
    return InformingOutcome(signal.number, now, signal.informed_party, already=False)


def reminder_due_on(config: CoreConfig, signal: Signal) -> date:
    """The day a not-informed signal's reporter is reminded: the configured number of working
    days after the day it was placed."""
    placed_on = local_date(signal.placed_at, config.tz)
    return config.calendar.add_working_days(placed_on, config.informing_reminder_days)


def remind_uninformed(session: Session, config: CoreConfig, now: datetime) -> int:
    """Scheduler job: one reminder per active signal not yet informed, once it is due. Returns
    how many were reminded.

    Two sweepers at once write the same outbox idempotency key, so one transaction fails on the
    unique index and its retry finds the signal reminded (as for expiry warnings)."""
    today = local_date(now, config.tz)
    # N working days are at least N calendar days: older signals only are candidates.
    placed_before = now - timedelta(days=config.informing_reminder_days)
    candidates = session.exec(
        select(Signal)
        .where(
            Signal.status == SignalStatus.ACTIVE,
            col(Signal.informed).in_(NOT_INFORMED),
            col(Signal.informing_reminded_at).is_(None),
            col(Signal.placed_at) <= placed_before,
        )
        .order_by(col(Signal.id))
    ).all()
    reminded = 0
    for signal in candidates:
        if reminder_due_on(config, signal) > today:
            continue
        youth = session.get(Youth, signal.youth_id)
        if youth is None:
            continue  # purged meanwhile
        signal.informing_reminded_at = now
        session.add(signal)
        publish(
            session,
            config,
            InformingReminderDueEvent(
                at=now,
                signal_id=signal.id or 0,
                informed_party=informed_party_for(age_of(config, youth, today)),
            ),
        )
        reminded += 1
    return reminded
