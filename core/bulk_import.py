"""Batch registrations from a client system (CSV), tens of thousands a night.

The same rules as :func:`core.registration.register_youth`, done set-wise per batch: one look-up
of the batch's youths, bulk inserts of new youths, registrations, audit events and chain
notifications (nieuwe-betrokkenheid). Only youths that have an active signal go through the
per-youth path (their matches and coordination must be derived again); they are few.
Each batch is one transaction; a refused row never stops the others.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TextIO

from sqlalchemy import bindparam, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core import audit
from core.actors import acting_institution
from core.clock import local_date, utcnow
from core.config import CoreConfig
from core.errors import DomainError, InvalidInput
from core.fields import LABELS, canonical_label, parse_registration
from core.identity import check_youth_age, twenty_third_birthday
from core.models import (
    Institution,
    Municipality,
    OutboxMessage,
    Professional,
    Registration,
    RegistrationStatus,
    Signal,
    SignalStatus,
    Youth,
    YouthParent,
)
from core.notifications.dispatch import channels, common_context, idempotency_key
from core.notifications.recipients import institution_card, institution_recipient
from core.notifications.subscribers import new_involvement_context
from core.reconcile import reconcile_youth
from core.registration import DeregisterYouth, RegisterYouth, check_reference
from core.db import run_in_transaction

BATCH_SIZE = 2000
IN_CHUNK = 900  # bound parameters per IN (...) list


@dataclass(frozen=True)
class ImportRow:
    line: int
    fields: dict[str, str]


@dataclass(frozen=True)
class RefusedRow:
    line: int
    field: str
    reason: str


@dataclass
class ImportReport:
    accepted: int = 0
    deregistered: int = 0
    refused: list[RefusedRow] = field(default_factory=list)
    new_involvements: int = 0
    notifications: int = 0


def read_registration_csv(stream: TextIO) -> Iterator[ImportRow]:
    """Rows of a registration CSV (CONTRACT §4): header row, ``;`` or ``,``, streamed."""
    header_line = stream.readline()
    if not header_line.strip():
        raise InvalidInput("het CSV-bestand is leeg of heeft geen kopregel", field="kopregel")
    delimiter = ";" if header_line.count(";") >= header_line.count(",") else ","
    reader = csv.reader(itertools.chain([header_line], stream), delimiter=delimiter)
    header = [canonical_label(h) for h in next(reader)]
    header[0] = header[0].lstrip("\ufeff")  # Excel's byte-order mark
    unknown = [h for h in header if h and h not in LABELS]
    if unknown:
        raise InvalidInput(
            f"onbekende kolom(men): {', '.join(unknown)}; verwacht: "
            "bsn;naam;geboortedatum;gemeente;kenmerk;hulpverlener;bsn_ouder;einddatum;actie",
            field="kopregel",
        )
    for values in reader:
        if not any(v.strip() for v in values):
            continue
        yield ImportRow(reader.line_num, dict(zip(header, values, strict=False)))


@dataclass
class _Prepared:
    line: int
    action: str  # register | deregister
    key: str
    values: dict[str, Any]  # youth columns for a new youth
    municipality: str = ""
    reference: str = ""
    professional_id: int | None = None
    ends_on: date | None = None
    parent_keys: tuple[str, ...] = ()


class _Batch:
    """What one batch needs to know beyond its rows, looked up once per import."""

    def __init__(self, session: Session, config: CoreConfig, institution: Institution):
        self.config = config
        self.institution = institution
        active = {m.name for m in session.exec(select(Municipality).where(col(Municipality.active))).all()}
        self.municipalities = {
            m.name.casefold(): m.name for m in config.covenant.municipalities if m.name in active
        }
        self.professionals = {
            p.email: p.id
            for p in session.exec(
                select(Professional).where(Professional.institution_id == institution.id)
            ).all()
        }
        self.institutions = {i.id: i for i in session.exec(select(Institution)).all()}


def import_registrations(
    engine: Engine,
    config: CoreConfig,
    institution_id: str,
    rows: Iterable[ImportRow],
    *,
    actor: audit.Actor,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> ImportReport:
    report = ImportReport()
    with Session(engine) as session:
        institution = acting_institution(session, actor)
        if institution.id != institution_id:
            raise InvalidInput("u kunt alleen voor uw eigen instelling registreren", field="instelling")
        context = _Batch(session, config, institution)
    iterator = iter(rows)
    while batch := list(itertools.islice(iterator, batch_size)):
        moment = now or utcnow()
        prepared = _prepare(batch, context, moment, report)
        run_in_transaction(
            engine, lambda session, p=prepared, m=moment: _apply(session, context, p, actor, m, report)
        )
        if progress:
            progress(len(batch))
    return report


def _prepare(batch: list[ImportRow], ctx: _Batch, now: datetime, report: ImportReport) -> list[_Prepared]:
    keys = ctx.config.keys
    today = local_date(now, ctx.config.tz)
    by_key: dict[str, _Prepared] = {}
    for row in batch:
        try:
            request = parse_registration(row.fields)
            identity = request.identity
            check_youth_age(identity.birth_date, today)
            key = keys.identity_key(identity)
            if isinstance(request, DeregisterYouth):
                by_key[key] = _Prepared(row.line, "deregister", key, {})
                continue
            municipality = ctx.municipalities.get(request.municipality.casefold())
            if municipality is None:
                raise InvalidInput(f"onbekende gemeente '{request.municipality}'", field="Gemeente")
            professional_id = None
            if request.professional_email:
                professional_id = ctx.professionals.get(request.professional_email)
                if professional_id is None:
                    raise InvalidInput(
                        f"{request.professional_email} is geen hulpverlener van {ctx.institution.name}",
                        field="Hulpverlener",
                    )
            by_key[key] = _Prepared(
                line=row.line,
                action="register",
                key=key,
                values=_youth_values(ctx, request, key),
                municipality=municipality,
                reference=check_reference(request.reference),
                professional_id=professional_id,
                ends_on=request.ends_on,
                parent_keys=tuple(keys.bsn_digest(b) for b in request.parent_bsns),
            )
        except DomainError as error:
            report.refused.append(RefusedRow(row.line, error.field or "", error.message))
    return list(by_key.values())


def _youth_values(ctx: _Batch, request: RegisterYouth, key: str) -> dict[str, Any]:
    # Encryption is deferred to insert time: most rows are for youths the index already holds.
    identity = request.identity
    return {
        "identity_key": key,
        "has_bsn": identity.bsn is not None,
        "_bsn": identity.bsn,
        "_name": identity.name or identity.surname,
        "birth_date": identity.birth_date,
        "purge_on": twenty_third_birthday(identity.birth_date),
    }


def _in_chunks(values: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(values), IN_CHUNK):
        yield values[start : start + IN_CHUNK]


def _insert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def _apply(
    session: Session, ctx: _Batch, prepared: list[_Prepared], actor: audit.Actor, now: datetime,
    report: ImportReport,
) -> None:
    youth_ids = _ensure_youths(session, ctx, prepared, now, report)
    ids = sorted(set(youth_ids.values()))
    if session.get_bind().dialect.name == "postgresql":
        for chunk in _in_chunks(ids):  # same lock order as single commands: by youth id
            session.exec(select(Youth.id).where(col(Youth.id).in_(chunk)).order_by(col(Youth.id)).with_for_update()).all()
    existing = _registrations(session, ctx.institution.id, ids)
    others = _other_involvements(session, ctx.institution.id, ids)
    signalled = _youths_with_active_signals(session, ids)
    new_regs: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    reactivations: list[dict[str, Any]] = []
    ended: list[dict[str, Any]] = []
    ended_youths: set[int] = set()
    for item in prepared:
        youth_id = youth_ids.get(item.key)
        if youth_id is None:
            continue  # refused in _ensure_youths
        reg = existing.get(youth_id)
        if item.action == "deregister":
            if reg is None or reg["status"] != RegistrationStatus.ACTIVE:
                report.refused.append(RefusedRow(item.line, "Actie",
                                                 "uw instelling heeft geen actieve registratie voor deze jongere"))
                continue
            ended.append({"b_id": reg["id"]})
            ended_youths.add(youth_id)
            report.deregistered += 1
            audit.record(session, actor, "registration-ended", f"youth:{youth_id}",
                         details={"registration": f"R-{reg['id']}"}, at=now)
            continue
        fields = {"reference": item.reference, "professional_id": item.professional_id, "ends_on": item.ends_on}
        if reg is None:
            new_regs.append({"youth_id": youth_id, "institution_id": ctx.institution.id,
                             "registered_at": now, "status": RegistrationStatus.ACTIVE.value, **fields})
        elif reg["status"] != RegistrationStatus.ACTIVE:
            reactivations.append({"b_id": reg["id"], "registered_at": now, **fields})
        else:
            updates.append({"b_id": reg["id"], **fields})
            audit.record(session, actor, "registration-updated", f"youth:{youth_id}",
                         details={"registration": f"R-{reg['id']}"}, at=now)
        report.accepted += 1
    _write_registrations(session, new_regs, updates, reactivations, ended, now)
    involved_now = _new_involvements(session, ctx.institution.id, new_regs, reactivations, existing)
    for youth_id, reg_id in involved_now:
        audit.record(session, actor, "registration-created", f"youth:{youth_id}",
                     details={"registration": f"R-{reg_id}"}, at=now)
        if others.get(youth_id):
            report.notifications += _notify_involved(session, ctx, youth_id, reg_id, others[youth_id], now)
    report.new_involvements += len(involved_now)
    changed = {y for y, _ in involved_now} | ended_youths
    for youth_id in sorted(changed & signalled):
        reconcile_youth(session, ctx.config, youth_id, now)


def _ensure_youths(
    session: Session, ctx: _Batch, prepared: list[_Prepared], now: datetime, report: ImportReport
) -> dict[str, int]:
    found: dict[str, tuple[int, str]] = {}
    keys = [p.key for p in prepared]
    for chunk in _in_chunks(keys):
        for youth_id, key, municipality in session.exec(
            select(Youth.id, Youth.identity_key, Youth.municipality).where(col(Youth.identity_key).in_(chunk))
        ).all():
            found[key] = (youth_id, municipality)
    new_rows = []
    for item in prepared:
        if item.key in found:
            continue
        if item.action == "deregister":
            report.refused.append(RefusedRow(item.line, "BSN", "deze jongere staat niet in de verwijsindex"))
            continue
        values = dict(item.values)
        bsn, name = values.pop("_bsn"), values.pop("_name")
        values["bsn_encrypted"] = ctx.config.keys.encrypt(bsn) if bsn else None
        values["name_encrypted"] = ctx.config.keys.encrypt(name) if name else None
        values["municipality"] = item.municipality
        values["created_at"] = now
        new_rows.append(values)
    if new_rows:
        insert_ = _insert(session)
        session.execute(insert_(Youth).on_conflict_do_nothing(index_elements=["identity_key"]), new_rows)
        for chunk in _in_chunks([r["identity_key"] for r in new_rows]):
            for youth_id, key, municipality in session.exec(
                select(Youth.id, Youth.identity_key, Youth.municipality).where(col(Youth.identity_key).in_(chunk))
            ).all():
                found[key] = (youth_id, municipality)
    moved = [
        {"b_id": found[p.key][0], "municipality": p.municipality}
        for p in prepared
        if p.action == "register" and p.key in found and found[p.key][1] != p.municipality
    ]
    if moved:
        session.connection().execute(
            update(Youth).where(Youth.id == bindparam("b_id")).values(municipality=bindparam("municipality")),
            moved,
        )
    parents = [
        {"youth_id": found[p.key][0], "parent_key": parent}
        for p in prepared
        if p.key in found
        for parent in p.parent_keys
    ]
    if parents:
        session.execute(
            _insert(session)(YouthParent).on_conflict_do_nothing(index_elements=["youth_id", "parent_key"]),
            parents,
        )
    return {key: value[0] for key, value in found.items()}


def _registrations(session: Session, institution_id: str, youth_ids: list[int]) -> dict[int, dict[str, Any]]:
    result = {}
    for chunk in _in_chunks(youth_ids):
        for reg_id, youth_id, status in session.exec(
            select(Registration.id, Registration.youth_id, Registration.status).where(
                Registration.institution_id == institution_id, col(Registration.youth_id).in_(chunk)
            )
        ).all():
            result[youth_id] = {"id": reg_id, "status": status}
    return result


def _other_involvements(session: Session, institution_id: str, youth_ids: list[int]) -> dict[int, dict[str, str]]:
    """youth id -> {other involved institution id: its own reference (or '')}."""
    result: dict[int, dict[str, str]] = {}
    for chunk in _in_chunks(youth_ids):
        for youth_id, other, reference in session.exec(
            select(Registration.youth_id, Registration.institution_id, Registration.reference).where(
                col(Registration.youth_id).in_(chunk),
                Registration.status == RegistrationStatus.ACTIVE,
                Registration.institution_id != institution_id,
            )
        ).all():
            result.setdefault(youth_id, {})[other] = reference
        for youth_id, other in session.exec(
            select(Signal.youth_id, Signal.institution_id).where(
                col(Signal.youth_id).in_(chunk),
                Signal.status == SignalStatus.ACTIVE,
                Signal.institution_id != institution_id,
            )
        ).all():
            result.setdefault(youth_id, {}).setdefault(other, "")
    return result


def _youths_with_active_signals(session: Session, youth_ids: list[int]) -> set[int]:
    found: set[int] = set()
    for chunk in _in_chunks(youth_ids):
        found.update(
            session.exec(
                select(Signal.youth_id).where(col(Signal.youth_id).in_(chunk), Signal.status == SignalStatus.ACTIVE)
            ).all()
        )
    return found


def _write_registrations(
    session: Session, new_regs: list[dict[str, Any]], updates: list[dict[str, Any]],
    reactivations: list[dict[str, Any]], ended: list[dict[str, Any]], now: datetime,
) -> None:
    connection = session.connection()
    if new_regs:
        returned = connection.execute(
            insert(Registration).returning(Registration.id, Registration.youth_id, sort_by_parameter_order=True),
            new_regs,
        ).all()
        for values, (reg_id, _youth_id) in zip(new_regs, returned, strict=True):
            values["id"] = reg_id
    by_id = Registration.id == bindparam("b_id")
    changeable = {
        "reference": bindparam("reference"),
        "professional_id": bindparam("professional_id"),
        "ends_on": bindparam("ends_on"),
    }
    if updates:
        connection.execute(update(Registration).where(by_id).values(**changeable), updates)
    if reactivations:
        connection.execute(
            update(Registration).where(by_id).values(
                status=RegistrationStatus.ACTIVE.value, registered_at=bindparam("registered_at"),
                ended_at=None, **changeable,
            ),
            reactivations,
        )
    if ended:
        connection.execute(
            update(Registration).where(by_id).values(status=RegistrationStatus.ENDED.value, ended_at=now),
            ended,
        )


def _new_involvements(
    session: Session, institution_id: str, new_regs: list[dict[str, Any]],
    reactivations: list[dict[str, Any]], existing: dict[int, dict[str, Any]],
) -> list[tuple[int, int]]:
    """(youth id, registration id) of the youths this institution was not involved with yet."""
    reactivated = {r["b_id"] for r in reactivations}
    pairs = [(r["youth_id"], r["id"]) for r in new_regs]
    pairs += [(youth_id, reg["id"]) for youth_id, reg in existing.items() if reg["id"] in reactivated]
    if not pairs:
        return []
    # An institution that signalled the youth was involved already, registered or not.
    signalled = set()
    youth_ids = [y for y, _ in pairs]
    for chunk in _in_chunks(youth_ids):
        signalled.update(
            session.exec(
                select(Signal.youth_id).where(
                    col(Signal.youth_id).in_(chunk), Signal.institution_id == institution_id,
                    Signal.status == SignalStatus.ACTIVE,
                )
            ).all()
        )
    return [(y, r) for y, r in pairs if y not in signalled]


def _notify_involved(
    session: Session, ctx: _Batch, youth_id: int, reg_id: int, others: dict[str, str], now: datetime
) -> int:
    """The chain registration (DOMAIN step 1), in bulk: same rows as the subscriber makes."""
    kind = "nieuwe-betrokkenheid"
    reference = f"R-{reg_id}"
    newcomer = institution_card(ctx.institution)
    rows = []
    for other_id, own_reference in others.items():
        other = ctx.institutions.get(other_id)
        if other is None:
            continue
        recipient = institution_recipient(other)
        context = {
            **new_involvement_context(own_reference, newcomer, len(others) + 1),
            **common_context(ctx.config, kind, reference, recipient, asks_reply=False),
        }
        for channel, address in channels(recipient):
            rows.append({
                "idempotency_key": idempotency_key(kind, reference, recipient, channel, address),
                "kind": kind, "channel": channel, "recipient": address,
                "recipient_role": recipient.role, "institution_id": other.id,
                "reference": reference, "context": context, "status": "pending",
                "attempts": 0, "created_at": now, "next_attempt_at": now,
            })
    if rows:
        session.execute(
            _insert(session)(OutboxMessage).on_conflict_do_nothing(index_elements=["idempotency_key"]), rows
        )
    return len(rows)
