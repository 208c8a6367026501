"""A professional who leaves (issue 11.3): the covenant no longer lists them, or marks them
inactive, while they still hold active signals.

The signals stay theirs until someone transfers them (``verwijsindex transfer --from``, which
accepts a departed professional), so the institution's admins (role ``institution-admin``) and
its notification mailbox are asked at once — the scheduler's next sweep after the covenant sync
that deactivated them — by mail and Slack, once per departure. Meanwhile the departed person
gets no more mail: what would have reached them goes to their stand-in or to their institution
(``core.notifications.recipients.professional_recipients``).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from core.actors import active_professionals_with_role
from core.config import CoreConfig
from core.models import Institution, Professional, Role, Signal, SignalStatus
from core.notifications.dispatch import notify
from core.notifications.recipients import institution_recipient, professional_recipient

KIND = "hulpverlener-vertrokken"


def departed_with_signals(session: Session) -> list[tuple[Professional, list[Signal]]]:
    """Inactive professionals who still hold active signals, with those signals."""
    signals = session.exec(
        select(Signal)
        .join(Professional, col(Professional.id) == col(Signal.professional_id))
        .where(Signal.status == SignalStatus.ACTIVE, col(Professional.active).is_(False))
        .order_by(col(Signal.professional_id), col(Signal.id))
    ).all()
    held: dict[int, list[Signal]] = {}
    for signal in signals:
        held.setdefault(signal.professional_id, []).append(signal)
    return [(_professional(session, pid), list(group)) for pid, group in held.items()]


def ask_for_transfers(session: Session, config: CoreConfig, now: datetime) -> int:
    """Scheduler job: one transfer request per departure; returns the notifications added."""
    added = 0
    for departed, signals in departed_with_signals(session):
        institution = session.get(Institution, departed.institution_id)
        if institution is None:
            continue
        admins = active_professionals_with_role(session, institution.id, Role.INSTITUTION_ADMIN)
        recipients = [institution_recipient(institution)] + [
            professional_recipient(admin) for admin in admins
        ]
        added += notify(
            session,
            config,
            kind=KIND,
            recipients=recipients,
            reference=f"P-{departed.id}",
            context={
                "departed": {"name": departed.name, "email": departed.email},
                "institution": {"id": institution.id, "name": institution.name},
                "signals": [
                    {"number": s.number, "code": s.code, "ends_on": s.ends_on.isoformat()}
                    for s in signals
                ],
            },
            key=f"P-{departed.id}",
            now=now,
        )
    return added


def _professional(session: Session, professional_id: int) -> Professional:
    professional = session.get(Professional, professional_id)
    assert professional is not None
    return professional
