"""The rights of a youth and parents over what the index holds (AVG art. 16, 17, 21; Jeugdwet
7.1.4.6): a request to correct (correctie), delete (verwijdering) or object (verzet), and the
notice of a youth's death.

The region's functional administrator (role ``admin``) records a request as it came in — its
kind, the requester by role (ouder, jeugdige, wettelijk vertegenwoordiger; never by name) and the
date received — and decides it by 4 weeks after receipt. The issue asks for 4 weeks; AVG art.
12(3) allows one month, and 4 weeks is never later than that. The scheduler reminds the region's
administrators a week before the deadline and once it has passed.

Executing a request corrects fields of the youth's signals and registrations (with the checks
that hold when they are placed), or removes records. A signal removed on a justified request is
deleted, not archived (``core.signal_terms.archived_on_end``): those it was disclosed to hear it
ended, never why. A youth with nothing left is purged. On notice of death everything about the
youth goes at once (``core.retention.purge_youth``); the logboek keeps that it happened, without
identity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from core import audit
from core.actors import acting_professional, is_admin, professionals_by_id
from core.clock import as_utc, local_date, utcnow
from core.config import CoreConfig
from core.errors import Conflict, InvalidInput, NotAllowed
from core.fields import parse_date
from core.free_text import check_free_text, could_identify, quote
from core.identity import YouthIdentity
from core.models import (
    Informed,
    Professional,
    Registration,
    ReplyPurpose,
    RequesterRole,
    RightsRequest,
    RightsRequestKind,
    RightsRequestStatus,
    Role,
    Signal,
    SignalStatus,
    Youth,
)
from core.notifications.dispatch import notify
from core.notifications.recipients import Recipient, professional_recipient
from core.numbers import find_numbered
from core.reconcile import reconcile_youth
from core.retention import forget_messages, purge_youth
from core.signal_terms import REMOVED
from core.signals import check_informing, end_signal, find_signal, signal_end_date
from core.youths import canonical_municipality, lock_youth, require_youth, youth_by_reference

KIND = "rechtenverzoek-termijn"
# Issue 11.11: decided within 4 weeks of receipt (AVG art. 12(3): one month at the latest).
DECISION_TERM = timedelta(weeks=4)
REMINDER_LEAD = timedelta(days=7)
NUMBER_PREFIX = "V-"  # verzoek; R- already names registrations
MAX_NOTE_LENGTH = 1000

KIND_LABELS = {
    RightsRequestKind.CORRECTION: "correctie",
    RightsRequestKind.DELETION: "verwijdering",
    RightsRequestKind.OBJECTION: "verzet",
}
REQUESTER_LABELS = {
    RequesterRole.PARENT: "ouder",
    RequesterRole.YOUTH: "jeugdige",
    RequesterRole.LEGAL_REPRESENTATIVE: "wettelijk vertegenwoordiger",
}
STATUS_LABELS = {
    RightsRequestStatus.OPEN: "open",
    RightsRequestStatus.EXECUTED: "uitgevoerd",
    RightsRequestStatus.REJECTED: "afgewezen",
    RightsRequestStatus.LAPSED: "vervallen",
}
# What a correction may change, by the field names of CONTRACT §4. The municipality is the
# youth's (a registration or signal brings it); correcting it is no move (7.1.2.3 g): it was
# wrong, the youth did not leave.
SIGNAL_FIELDS = ("code", "einddatum", "geïnformeerd", "reden uitstel", "folder", "gemeente")
REGISTRATION_FIELDS = ("einddatum", "gemeente")

YouthSelector = YouthIdentity | str  # the identity, or the reference J-12


@dataclass(frozen=True)
class Correction:
    """One field of one record, as the requester says it should be: ``S-12``, ``code``,
    ``urgent``."""

    record: str
    field: str
    value: str


@dataclass(frozen=True)
class DeathOutcome:
    youth: str
    signals: int
    registrations: int


# -- who may act --------------------------------------------------------------------------------


def _acting_admin(session: Session, actor: audit.Actor) -> Professional:
    """Only the region's functional administrator handles rights requests: they reach every
    institution's records (Jeugdwet 7.1.3.3), an institution's own coordinator only its own."""
    professional = acting_professional(session, actor)
    if not is_admin(professional):
        raise NotAllowed(
            "alleen een functioneel beheerder van de regio kan verzoeken om correctie, "
            "verwijdering of verzet en het overlijden van een jongere verwerken"
        )
    return professional


def _youth(session: Session, config: CoreConfig, youth: YouthSelector) -> Youth:
    found = (
        youth_by_reference(session, youth)
        if isinstance(youth, str)
        else require_youth(session, config, youth)
    )
    return lock_youth(session, found.id or 0)


# -- recording ----------------------------------------------------------------------------------


def parse_kind(value: str) -> RightsRequestKind:
    text = (value or "").strip().lower()
    for kind in RightsRequestKind:
        if text == kind.value:
            return kind
    raise InvalidInput("moet correctie, verwijdering of verzet zijn", field="soort")


def parse_requester(value: str) -> RequesterRole:
    text = " ".join((value or "").strip().lower().replace("-", " ").split())
    for role, label in REQUESTER_LABELS.items():
        if text == label:
            return role
    raise InvalidInput(
        "moet ouder, jeugdige of wettelijk vertegenwoordiger zijn (de rol, nooit een naam)",
        field="verzoeker",
    )


def deadline_for(received_on: date) -> date:
    return received_on + DECISION_TERM


def record_request(
    youth: YouthSelector,
    kind: str,
    requester: str,
    received_on: date | None = None,
    *,
    session: Session,
    config: CoreConfig,
    actor: audit.Actor,
    now: datetime | None = None,
) -> RightsRequest:
    """Record a request as it came in; ``received_on`` defaults to today."""
    now = now or utcnow()
    admin = _acting_admin(session, actor)
    request_kind = parse_kind(kind)
    role = parse_requester(requester)
    today = local_date(now, config.tz)
    received = received_on or today
    if received > today:
        raise InvalidInput("ligt in de toekomst", field="ontvangen")
    subject = _youth(session, config, youth)
    request = RightsRequest(
        youth_id=subject.id,
        kind=request_kind.value,
        requester_role=role.value,
        received_on=received,
        deadline_on=deadline_for(received),
        recorded_by_id=admin.id or 0,
        recorded_at=now,
    )
    session.add(request)
    session.flush()
    audit.record(
        session,
        actor,
        "rights-request-recorded",
        f"youth:{subject.id}",
        details={
            "request": request.number,
            "kind": request.kind,
            "requester": request.requester_role,
            "received_on": received.isoformat(),
            "deadline_on": request.deadline_on.isoformat(),
        },
        at=now,
    )
    return request


def find_request(session: Session, number: str) -> RightsRequest:
    return find_numbered(
        session,
        RightsRequest,
        number,
        prefix=NUMBER_PREFIX,
        missing=f"verzoek {quote(number)} bestaat niet",
    )


def list_requests(
    *,
    session: Session,
    config: CoreConfig,
    actor: audit.Actor,
    status: str | None = None,
    limit: int = 100,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """The requests, newest first (``status``: open, executed, rejected or lapsed)."""
    _acting_admin(session, actor)
    query = select(RightsRequest)
    if status:
        wanted = status.strip().lower()
        if wanted not in {s.value for s in RightsRequestStatus}:
            raise InvalidInput("moet open, executed, rejected of lapsed zijn", field="status")
        query = query.where(RightsRequest.status == wanted)
    rows = session.exec(query.order_by(col(RightsRequest.id).desc()).limit(limit)).all()
    today = local_date(now or utcnow(), config.tz)
    people = professionals_by_id(
        session, [r.recorded_by_id for r in rows] + [r.decided_by_id for r in rows]
    )
    return [request_item(row, people, today) for row in rows]


def request_item(
    request: RightsRequest, people: dict[int, Professional], today: date
) -> dict[str, Any]:
    def email(professional_id: int | None) -> str | None:
        person = people.get(professional_id) if professional_id is not None else None
        return person.email if person else None

    open_ = request.status == RightsRequestStatus.OPEN
    return {
        "id": request.number,
        "youth": f"J-{request.youth_id}" if request.youth_id is not None else None,
        "kind": request.kind,
        "requester": request.requester_role,
        "received_on": request.received_on.isoformat(),
        "deadline_on": request.deadline_on.isoformat(),
        "overdue": open_ and today > request.deadline_on,
        "status": request.status,
        "recorded_by": email(request.recorded_by_id),
        "decided_by": email(request.decided_by_id),
        "decided_at": as_utc(request.decided_at).isoformat() if request.decided_at else None,
        "outcome_note": request.outcome_note,
        "changes": list(request.changes or []),
    }


# -- deciding -----------------------------------------------------------------------------------


def _open_request(session: Session, number: str) -> RightsRequest:
    request = find_request(session, number)
    if request.youth_id is not None:
        lock_youth(session, request.youth_id)
        session.refresh(request)
    if request.status != RightsRequestStatus.OPEN:
        raise Conflict(
            f"{request.number} is al {STATUS_LABELS[RightsRequestStatus(request.status)]}"
        )
    return request


def _check_note(note: str | None, field: str, *, required: bool) -> str | None:
    text = (note or "").strip() or None
    if text is None:
        if required:
            raise InvalidInput("ontbreekt: de reden die de verzoeker krijgt", field=field)
        return None
    check_free_text(text, field, multiline=True)
    if len(text) > MAX_NOTE_LENGTH:
        raise InvalidInput(f"is langer dan {MAX_NOTE_LENGTH} tekens", field=field)
    if could_identify(text, dates=True):
        raise InvalidInput(
            "lijkt een BSN te bevatten; noteer nooit de identiteit van de jongere", field=field
        )
    return text


def execute_request(
    number: str,
    *,
    corrections: Sequence[Correction] = (),
    removals: Sequence[str] = (),
    note: str | None = None,
    session: Session,
    config: CoreConfig,
    actor: audit.Actor,
    now: datetime | None = None,
) -> RightsRequest:
    """Grant the request: correct the ``corrections`` and remove the ``removals`` (S-12, R-40)
    of the request's youth. A correction request may also remove what cannot be corrected;
    deletion and objection only remove."""
    now = now or utcnow()
    admin = _acting_admin(session, actor)
    request = _open_request(session, number)
    if request.youth_id is None:  # a purge lapses open requests; this is a safeguard
        raise Conflict(f"{request.number}: de gegevens van de jongere zijn al verwijderd")
    youth_id = request.youth_id
    text = _check_note(note, "toelichting", required=False)
    if request.kind != RightsRequestKind.CORRECTION and corrections:
        raise InvalidInput(
            f"bij een verzoek om {request.kind} wordt niets gecorrigeerd; noem wat er wordt "
            "verwijderd",
            field="wijzigen",
        )
    if not corrections and not removals:
        what = (
            "wat er wordt gecorrigeerd of verwijderd"
            if request.kind == RightsRequestKind.CORRECTION
            else "wat er wordt verwijderd"
        )
        raise InvalidInput(
            f"ontbreekt: noem {what}; wijs het verzoek anders af met een reden", field="verwijderen"
        )
    removed = _records(session, youth_id, removals, "verwijderen")
    corrected = _records(session, youth_id, [c.record for c in corrections], "wijzigen")
    both = sorted(set(removed) & set(corrected))
    if both:
        raise InvalidInput(f"{both[0]} kan niet tegelijk worden gecorrigeerd en verwijderd")
    changes = _correct(session, config, youth_id, corrections, corrected, actor, now)
    changes += _remove(session, config, youth_id, removed, actor, now)
    request.status = RightsRequestStatus.EXECUTED
    request.decided_by_id = admin.id
    request.decided_at = now
    request.outcome_note = text
    request.changes = changes
    session.add(request)
    session.flush()
    audit.record(
        session,
        actor,
        "rights-request-executed",
        f"youth:{youth_id}",
        details={"request": request.number, "kind": request.kind, "changes": changes},
        at=now,
    )
    reconcile_youth(session, config, youth_id, now)
    if _holds_nothing(session, youth_id):
        # Nothing left to match or report on: the youth's identity goes too (AVG art. 5 lid 1 c).
        purge_youth(session, config, youth_id, reason="rights request", now=now)
    return request


def reject_request(
    number: str,
    reason: str,
    *,
    session: Session,
    actor: audit.Actor,
    now: datetime | None = None,
) -> RightsRequest:
    """Refuse the request with the reason the requester is given (AVG art. 12(4))."""
    now = now or utcnow()
    admin = _acting_admin(session, actor)
    request = _open_request(session, number)
    text = _check_note(reason, "reden", required=True)
    request.status = RightsRequestStatus.REJECTED
    request.decided_by_id = admin.id
    request.decided_at = now
    request.outcome_note = text
    session.add(request)
    audit.record(
        session,
        actor,
        "rights-request-rejected",
        f"youth:{request.youth_id}",
        details={"request": request.number, "kind": request.kind},
        at=now,
    )
    return request


_Record = Signal | Registration


def _records(
    session: Session, youth_id: int, numbers: Sequence[str], field: str
) -> dict[str, _Record]:
    """The youth's signals and registrations by number; any other number is refused."""
    found: dict[str, _Record] = {}
    for number in numbers:
        text = (number or "").strip().upper()
        record: _Record | None
        if text.startswith("S-"):
            record = find_signal(session, text)
        elif text.startswith("R-"):
            record = _find_registration(session, text)
        else:
            raise InvalidInput(
                f"{quote(number)} is geen signaal (S-12) of registratie (R-40)", field=field
            )
        if record.youth_id != youth_id:
            raise InvalidInput(
                f"{record.number} gaat niet over de jongere van dit verzoek", field=field
            )
        found[record.number] = record
    return found


def _find_registration(session: Session, number: str) -> Registration:
    return find_numbered(
        session,
        Registration,
        number,
        prefix="R-",
        missing=f"registratie {number} bestaat niet (meer)",
    )


def _field_name(raw: str, allowed: tuple[str, ...], record: str) -> str:
    text = " ".join((raw or "").strip().lower().replace("_", " ").replace("-", " ").split())
    text = text.replace("geinformeerd", "geïnformeerd")
    if text not in allowed:
        raise InvalidInput(
            f"{quote(raw)} kan bij {record} niet worden gecorrigeerd (wel: {', '.join(allowed)})",
            field="wijzigen",
        )
    return text


def _correct(
    session: Session,
    config: CoreConfig,
    youth_id: int,
    corrections: Sequence[Correction],
    records: dict[str, _Record],
    actor: audit.Actor,
    now: datetime,
) -> list[dict[str, str]]:
    by_record: dict[str, dict[str, str]] = {}
    for item in corrections:
        record = records[item.record.strip().upper()]
        allowed = SIGNAL_FIELDS if isinstance(record, Signal) else REGISTRATION_FIELDS
        name = _field_name(item.field, allowed, record.number)
        fields = by_record.setdefault(record.number, {})
        if name in fields:
            raise InvalidInput(f"{record.number}: {name} staat er twee keer in", field="wijzigen")
        fields[name] = item.value.strip()
    changes: list[dict[str, str]] = []
    today = local_date(now, config.tz)
    for number, fields in by_record.items():
        record = records[number]
        if "gemeente" in fields:
            changes += _correct_municipality(session, config, youth_id, number, fields, actor, now)
        if isinstance(record, Signal):
            own = _correct_signal(config, record, fields, today)
            action = "signal-corrected"
        else:
            own = _correct_registration(record, fields, today)
            action = "registration-corrected"
        session.add(record)
        for change in own:
            audit.record(session, actor, action, f"youth:{youth_id}", details=change, at=now)
        changes += own
    session.flush()
    return changes


def _change(record: str, field: str, old: object, new: object) -> dict[str, str]:
    def shown(value: object) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "ja" if value else "nee"
        return value.isoformat() if isinstance(value, date) else str(value)

    return {
        "record": record,
        "action": "corrected",
        "field": field,
        "from": shown(old),
        "to": shown(new),
    }


def _correct_signal(
    config: CoreConfig, signal: Signal, fields: dict[str, str], today: date
) -> list[dict[str, str]]:
    """The checks of placing (core.signals), applied to the corrected values."""
    number = signal.number
    changes = []
    if "code" in fields:
        config.response_working_days(fields["code"])  # unknown codes are refused, named
        code = config.covenant.signal_code(fields["code"])
        assert code is not None
        changes.append(_change(number, "code", signal.code, code.code))
        signal.code = code.code
    if "einddatum" in fields:
        wanted = parse_date(fields["einddatum"], "Einddatum")
        if signal.status == SignalStatus.ACTIVE and wanted < today:
            raise InvalidInput(
                f"{number}: ligt in het verleden; verwijder het signaal als het had moeten "
                "eindigen",
                field="Einddatum",
            )
        placed_on = local_date(signal.placed_at, config.tz)
        ends_on = signal_end_date(
            placed_on,
            ends_on=wanted,
            term_months=None,
            default_months=config.covenant.region.default_signal_term_months,
        )
        changes.append(_change(number, "einddatum", signal.ends_on, ends_on))
        signal.ends_on = ends_on
        signal.expiry_warned_at = None  # the new end date is warned of again
    if "geïnformeerd" in fields or "reden uitstel" in fields:
        informed, reason = check_informing(
            fields.get("geïnformeerd", signal.informed),
            fields.get("reden uitstel", signal.postpone_reason),
        )
        changes.append(_change(number, "geïnformeerd", signal.informed, informed))
        if informed != Informed.YES:
            signal.informed_at = None
        elif signal.informed != Informed.YES:
            signal.informed_at = as_utc(signal.placed_at)  # it was so from the start
        signal.informed = informed
        signal.postpone_reason = reason
    if "folder" in fields:
        given = _yes_no(fields["folder"], "Folder")
        changes.append(_change(number, "folder", signal.leaflet_given, given))
        signal.leaflet_given = given
    return changes


def _correct_registration(
    registration: Registration, fields: dict[str, str], today: date
) -> list[dict[str, str]]:
    if "einddatum" not in fields:
        return []
    text = fields["einddatum"]
    ends_on = parse_date(text, "Einddatum") if text else None
    if ends_on is not None and ends_on < today:
        raise InvalidInput(
            f"{registration.number}: ligt in het verleden; verwijder de registratie als ze had "
            "moeten eindigen",
            field="Einddatum",
        )
    change = _change(registration.number, "einddatum", registration.ends_on, ends_on)
    registration.ends_on = ends_on
    return [change]


def _correct_municipality(
    session: Session,
    config: CoreConfig,
    youth_id: int,
    number: str,
    fields: dict[str, str],
    actor: audit.Actor,
    now: datetime,
) -> list[dict[str, str]]:
    youth = session.get(Youth, youth_id)
    assert youth is not None
    municipality = canonical_municipality(session, config, fields["gemeente"])
    change = _change(number, "gemeente", youth.municipality, municipality)
    if municipality != youth.municipality:
        youth.municipality = municipality  # the coordination rules follow at reconcile
        session.add(youth)
        audit.record(
            session,
            actor,
            "youth-municipality-corrected",
            f"youth:{youth_id}",
            details={"from": change["from"], "to": municipality, "record": number},
            at=now,
        )
    return [change]


def _yes_no(value: str, field: str) -> bool:
    text = value.strip().lower()
    if text in ("ja", "j"):
        return True
    if text in ("nee", "n"):
        return False
    raise InvalidInput("moet ja of nee zijn", field=field)


def _remove(
    session: Session,
    config: CoreConfig,
    youth_id: int,
    records: dict[str, _Record],
    actor: audit.Actor,
    now: datetime,
) -> list[dict[str, str]]:
    changes = []
    signal_ids = [r.id for r in records.values() if isinstance(r, Signal)]
    for number, record in records.items():
        if isinstance(record, Signal):
            if record.status == SignalStatus.ACTIVE:
                # Deleted, not archived (Jeugdwet 7.1.4.6); partners hear it ended, not why.
                end_signal(session, config, record, REMOVED, actor, now)
            else:
                session.delete(record)  # from the archive: already told it ended
                audit.record(
                    session,
                    actor,
                    "signal-deleted",
                    f"youth:{youth_id}",
                    details={"signal": number, "reason": REMOVED},
                    at=now,
                )
        else:
            session.delete(record)
            audit.record(
                session,
                actor,
                "registration-deleted",
                f"youth:{youth_id}",
                details={"registration": number, "reason": REMOVED},
                at=now,
            )
        session.flush()
        changes.append({"record": number, "action": "removed"})
    # Nothing more goes out about what was removed (their end notices follow at the commit).
    forget_messages(
        session,
        {ReplyPurpose.SIGNAL_EXPIRY: signal_ids},
        [number for number in records if number.startswith("R-")],
    )
    return changes


def _holds_nothing(session: Session, youth_id: int) -> bool:
    signal = session.exec(select(Signal.id).where(Signal.youth_id == youth_id)).first()
    registration = session.exec(
        select(Registration.id).where(Registration.youth_id == youth_id)
    ).first()
    return signal is None and registration is None


# -- death --------------------------------------------------------------------------------------


def record_death(
    youth: YouthSelector,
    *,
    session: Session,
    config: CoreConfig,
    actor: audit.Actor,
    now: datetime | None = None,
) -> DeathOutcome:
    """DOMAIN, Age: after death all the youth's data go, at once. Those told of an active
    signal hear that it ended, never why; the logboek keeps the fact, without identity."""
    now = now or utcnow()
    _acting_admin(session, actor)
    subject = _youth(session, config, youth)
    youth_id = subject.id or 0
    reference = f"J-{youth_id}"
    active = session.exec(
        select(Signal)
        .where(Signal.youth_id == youth_id, Signal.status == SignalStatus.ACTIVE)
        .order_by(col(Signal.id))
    ).all()
    ended = [signal.id for signal in active]
    for signal in active:
        end_signal(session, config, signal, REMOVED, actor, now)
    signals = len(session.exec(select(Signal.id).where(Signal.youth_id == youth_id)).all())
    registrations = len(
        session.exec(select(Registration.id).where(Registration.youth_id == youth_id)).all()
    )
    audit.record(session, actor, "youth-deceased", f"youth:{youth_id}", at=now)
    purge_youth(session, config, youth_id, reason="death", now=now)
    # The signals ended above are no longer the youth's for the purge to find: what was still
    # to be sent about them goes too (their end notices are written when this commits).
    forget_messages(session, {ReplyPurpose.SIGNAL_EXPIRY: ended}, [])
    return DeathOutcome(youth=reference, signals=signals + len(active), registrations=registrations)


# -- the deadline -------------------------------------------------------------------------------


def remind_request_deadlines(session: Session, config: CoreConfig, now: datetime) -> int:
    """Scheduler job: the region's administrators hear of an open request a week before its
    deadline and once it has passed; once each (the outbox key names the stage)."""
    today = local_date(now, config.tz)
    due = session.exec(
        select(RightsRequest)
        .where(
            RightsRequest.status == RightsRequestStatus.OPEN,
            col(RightsRequest.deadline_on) <= today + REMINDER_LEAD,
        )
        .order_by(col(RightsRequest.id))
    ).all()
    if not due:
        return 0
    recipients = region_administrators(session, config)
    added = 0
    for request in due:
        stage = "verlopen" if today > request.deadline_on else "bijna"
        added += notify(
            session,
            config,
            kind=KIND,
            recipients=recipients,
            reference=request.number,
            context={
                "stage": stage,
                "request_kind": request.kind,
                "request_kind_label": KIND_LABELS[RightsRequestKind(request.kind)],
                "requester": REQUESTER_LABELS[RequesterRole(request.requester_role)],
                "youth_reference": f"J-{request.youth_id}" if request.youth_id else "",
                "received_on": request.received_on.isoformat(),
                "deadline_on": request.deadline_on.isoformat(),
                "days": abs((request.deadline_on - today).days),
            },
            key=f"{request.number}:{stage}",
            now=now,
        )
    return added


def region_administrators(session: Session, config: CoreConfig) -> list[Recipient]:
    """The region's functional administrators (role ``admin``, any institution), and the
    region's administrator mailbox (covenant ``admin_email``) when it is not one of theirs."""
    people = session.exec(
        select(Professional).where(col(Professional.active)).order_by(col(Professional.id))
    ).all()
    recipients = [professional_recipient(p) for p in people if p.has_role(Role.ADMIN)]
    mailbox = config.covenant.region.admin_email
    if mailbox and mailbox.lower() not in {r.address.lower() for r in recipients}:
        recipients.append(
            Recipient(address=mailbox, role="administrator", name="beheerder van de verwijsindex")
        )
    return recipients
