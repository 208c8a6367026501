"""Short absence: a stand-in receives the absent professional's notifications, and
correspondents are shown the stand-in (DOMAIN: Transfer on absence)."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Session, col, select

from core import audit
from core.actors import acting_professional, may_administer, require_professional
from core.clock import local_date, utcnow
from core.config import CoreConfig
from core.errors import InvalidInput, NotAllowed, NotFound
from core.events import AbsenceDeclaredEvent
from core.models import Absence, Professional
from core.notifications import publish

MAX_ABSENCE_DAYS = 366


def _check_may_act_for(actor_professional: Professional, absent: Professional) -> None:
    if actor_professional.id == absent.id:
        return
    if may_administer(actor_professional, absent.institution_id):
        return
    raise NotAllowed("u kunt alleen uw eigen afwezigheid melden (of als instellingsbeheerder)")


def declare_absence(
    absent_email: str,
    starts_on: date,
    ends_on: date,
    stand_in_email: str | None,
    *,
    session: Session,
    config: CoreConfig,
    actor: audit.Actor,
    now: datetime | None = None,
) -> Absence:
    now = now or utcnow()
    today = local_date(now, config.tz)
    me = acting_professional(session, actor)
    absent = require_professional(session, absent_email, field="hulpverlener")
    _check_may_act_for(me, absent)
    if ends_on < starts_on:
        raise InvalidInput("de einddatum ligt voor de begindatum", field="tot")
    if ends_on < today:
        raise InvalidInput("de afwezigheid ligt helemaal in het verleden", field="tot")
    if (ends_on - starts_on).days > MAX_ABSENCE_DAYS:
        raise InvalidInput(
            "langer dan een jaar afwezig: vraag een overdracht van uw signalen aan", field="tot"
        )
    stand_in = None
    if stand_in_email:
        stand_in = require_professional(session, stand_in_email, field="vervanger")
        if stand_in.id == absent.id:
            raise InvalidInput("u kunt niet uw eigen vervanger zijn", field="vervanger")
        if stand_in.institution_id != absent.institution_id:
            raise InvalidInput("de vervanger moet van dezelfde instelling zijn", field="vervanger")
    _end_overlapping(session, absent.id or 0, starts_on, ends_on, now)
    absence = Absence(
        professional_id=absent.id or 0,
        starts_on=starts_on,
        ends_on=ends_on,
        stand_in_id=stand_in.id if stand_in else None,
        created_at=now,
    )
    session.add(absence)
    session.flush()
    audit.record(
        session,
        actor,
        "absence-declared",
        f"professional:{absent.id}",
        details={
            "from": starts_on.isoformat(),
            "to": ends_on.isoformat(),
            "stand_in": stand_in.email if stand_in else None,
        },
        at=now,
    )
    publish(session, config, AbsenceDeclaredEvent(at=now, absence_id=absence.id or 0))
    return absence


def _end_overlapping(
    session: Session, professional_id: int, starts_on: date, ends_on: date, now: datetime
) -> None:
    """A new absence replaces any open one whose dates overlap it; one planned for another
    period stays (at most one absence, and so one stand-in, applies on any day)."""
    for absence in session.exec(
        select(Absence).where(
            Absence.professional_id == professional_id,
            col(Absence.ended_at).is_(None),
            col(Absence.ends_on) >= starts_on,
            col(Absence.starts_on) <= ends_on,
        )
    ).all():
        absence.ended_at = now
        session.add(absence)


def end_absence(
    absent_email: str,
    *,
    session: Session,
    config: CoreConfig,
    actor: audit.Actor,
    now: datetime | None = None,
) -> Absence:
    """Back ('terug') before the planned end: the stand-in stops receiving notifications.
    Without a running absence, the next planned one is called off."""
    now = now or utcnow()
    today = local_date(now, config.tz)
    me = acting_professional(session, actor)
    absent = require_professional(session, absent_email, field="hulpverlener")
    _check_may_act_for(me, absent)
    absence = session.exec(
        select(Absence)
        .where(
            Absence.professional_id == absent.id,
            col(Absence.ended_at).is_(None),
            col(Absence.ends_on) >= today,
        )
        .order_by(col(Absence.starts_on))
    ).first()
    if absence is None:
        raise NotFound("er is geen lopende of geplande afwezigheid om te beëindigen")
    absence.ended_at = now
    session.add(absence)
    audit.record(
        session,
        actor,
        "absence-ended",
        f"professional:{absent.id}",
        details={"absence": absence.id},
        at=now,
    )
    return absence
