"""Looking at one youth: the operator's overview (``youth show``) and the subject-access report
(inzage, AVG art. 15) for the youth or parents, via the municipality. Both are audited views."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from core import audit
from core.access_trail import disclosures, views, youth_references
from core.clock import as_utc, local_date, utcnow
from core.config import CoreConfig
from core.coordination import explanation, open_coordination
from core.identity import YouthIdentity
from core.models import (
    Institution,
    Match,
    MatchMember,
    MatchStatus,
    Professional,
    Registration,
    RegistrationStatus,
    Signal,
    SignalStatus,
)
from core.youths import require_youth


def _institution_name(session: Session, institution_id: str | None) -> str:
    institution = session.get(Institution, institution_id) if institution_id else None
    return institution.name if institution else (institution_id or "")


def _iso(moment: datetime | None) -> str | None:
    # Aware UTC on both databases (SQLite hands back naive values).
    return as_utc(moment).isoformat() if moment else None


def _involvements(
    session: Session, registrations: list[Registration], signals: list[Signal]
) -> list[dict[str, Any]]:
    """DOMAIN: an institution is involved through an active registration or an active signal."""
    rows = [
        {
            "institution": r.institution_id,
            "institution_name": _institution_name(session, r.institution_id),
            "reference": r.reference,
            "since": _iso(r.registered_at),
            "via": "registratie",
        }
        for r in registrations
    ]
    registered = {r.institution_id for r in registrations}
    first_signal: dict[str, Signal] = {}
    for signal in signals:
        if signal.status == SignalStatus.ACTIVE and signal.institution_id not in registered:
            first_signal.setdefault(signal.institution_id, signal)
    rows += [
        {
            "institution": institution_id,
            "institution_name": _institution_name(session, institution_id),
            "reference": signal.reference,
            "since": _iso(signal.placed_at),
            "via": "signaal",
        }
        for institution_id, signal in first_signal.items()
    ]
    return rows


def youth_overview(
    identity: YouthIdentity,
    *,
    session: Session,
    config: CoreConfig,
    actor: audit.Actor,
    now: datetime | None = None,
) -> dict[str, Any]:
    """CONTRACT §6 ``youth show --json``: involvements, signals, matches, coordination."""
    now = now or utcnow()
    youth = require_youth(session, config, identity)
    registrations = list(
        session.exec(
            select(Registration)
            .where(
                Registration.youth_id == youth.id, Registration.status == RegistrationStatus.ACTIVE
            )
            .order_by(col(Registration.registered_at), col(Registration.id))
        ).all()
    )
    signals = list(
        session.exec(
            select(Signal)
            .where(Signal.youth_id == youth.id)
            .order_by(col(Signal.placed_at), col(Signal.id))
        ).all()
    )
    signal_ids = [s.id for s in signals]
    matches = session.exec(
        select(Match)
        .where(
            Match.status == MatchStatus.ACTIVE,
            col(Match.id).in_(
                select(MatchMember.match_id).where(
                    col(MatchMember.signal_id).in_(signal_ids), col(MatchMember.left_at).is_(None)
                )
            ),
        )
        .order_by(col(Match.id))
    ).all()
    coordination = open_coordination(session, youth.id or 0)
    # A sibling who joined the family's coordination is in it because of the family.
    rule, reason = explanation(session, coordination, youth.id or 0) if coordination else ("", "")
    audit.record(session, actor, "youth-viewed", f"youth:{youth.id}", at=now)
    return {
        "youth": {"reference": f"J-{youth.id}", "municipality": youth.municipality},
        "involvements": _involvements(session, registrations, signals),
        "signals": [
            {
                "id": s.number,
                "institution": s.institution_id,
                "professional": _professional_email(session, s.professional_id),
                "code": s.code,
                "status": s.status,
                "placed_at": _iso(s.placed_at),
                "ends_on": s.ends_on.isoformat(),
            }
            for s in signals
        ],
        "matches": [
            {
                "id": m.number,
                "signals": [
                    f"S-{sid}"
                    for sid in session.exec(
                        select(MatchMember.signal_id)
                        .where(MatchMember.match_id == m.id, col(MatchMember.left_at).is_(None))
                        .order_by(col(MatchMember.signal_id))
                    ).all()
                ],
                "family": m.kind == "family",
            }
            for m in matches
        ],
        "coordination": None
        if coordination is None
        else {
            "id": coordination.number,
            "institution": coordination.institution_id,
            "status": coordination.status,
            "due": _iso(coordination.due_at),
            "rule": rule,
            "reason": reason,
        },
    }


def _professional_email(session: Session, professional_id: int) -> str:
    professional = session.get(Professional, professional_id)
    return professional.email if professional else ""


@dataclass(frozen=True)
class AccessReportLine:
    kind: str  # registratie | signaal
    institution: str
    date: str
    status: str
    ends_on: str | None = None


def access_report(
    identity: YouthIdentity,
    *,
    session: Session,
    config: CoreConfig,
    actor: audit.Actor,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Which institutions registered or signalled the youth, when, and the status; who received
    a notification about the youth (institution and person) and who looked at the youth's data,
    with dates (AVG art. 15: the recipients to whom the data were disclosed)."""
    now = now or utcnow()
    youth = require_youth(session, config, identity)
    lines = [
        AccessReportLine(
            kind="registratie",
            institution=_institution_name(session, r.institution_id),
            date=local_date(r.registered_at, config.tz).isoformat(),
            status="actief" if r.status == RegistrationStatus.ACTIVE else "beëindigd",
        )
        for r in session.exec(select(Registration).where(Registration.youth_id == youth.id)).all()
    ] + [
        AccessReportLine(
            kind="signaal",
            institution=_institution_name(session, s.institution_id),
            date=local_date(s.placed_at, config.tz).isoformat(),
            status="actief" if s.status == SignalStatus.ACTIVE else "gearchiveerd",
            ends_on=s.ends_on.isoformat(),
        )
        for s in session.exec(select(Signal).where(Signal.youth_id == youth.id)).all()
    ]
    lines.sort(key=lambda line: (line.date, line.kind, line.institution))
    references = youth_references(session, youth.id or 0)
    told = disclosures(session, references, config.tz)
    looked = views(session, youth.id or 0, references, config.tz)  # before this report's own
    audit.record(session, actor, "access-report", f"youth:{youth.id}", at=now)
    return {
        "youth": {"reference": f"J-{youth.id}", "municipality": youth.municipality},
        "generated_at": now.isoformat(),
        "region": config.covenant.region.name,
        "lines": [asdict(line) for line in lines],
        "notifications": [asdict(item) for item in told],
        "views": [asdict(item) for item in looked],
    }
