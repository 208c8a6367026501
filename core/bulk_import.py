"""Batch registrations from a client system (CSV), tens of thousands a night.

The same rules as :func:`core.registration.register_youth`, done set-wise per batch: one look-up
of the batch's youths, bulk inserts of new youths, registrations, audit events and chain
notifications (nieuwe-betrokkenheid). Only youths that have an active signal go through the
per-youth derivation (their matches and coordination must be derived again); they are few.

Each batch is one transaction; a refused row never stops the others. Rows are applied in file
order: when a youth occurs twice in one batch (``aanmelden`` then ``afmelden``), the batch is
cut into segments with each youth at most once, applied one after the other, so the outcome
does not depend on the batch size.
"""

from __future__ import annotations

import csv
import itertools
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TextIO, TypeVar

from sqlalchemy import Table, bindparam, func, insert, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlmodel import Session, col, select

from core import audit, outbox
from core.actors import acting_institution
from core.clock import as_utc, local_date, utcnow
from core.config import CoreConfig
from core.db import run_in_transaction
from core.errors import DomainError, InvalidInput, NotAllowed
from core.fields import canonical_label, parse_registration, quote_label
from core.identity import IdentityKeys, check_youth_age, purge_month, substitute_identity
from core.models import (
    Institution,
    Professional,
    Registration,
    RegistrationStatus,
    Signal,
    SignalStatus,
    Youth,
)
from core.notifications.dispatch import channels, common_context, idempotency_key
from core.notifications.recipients import institution_card, institution_recipient
from core.notifications.subscribers import involvement_occasion, new_involvement_context
from core.reconcile import reconcile_youth
from core.registration import (
    DeregisterYouth,
    InvolvedInstitution,
    RegisterYouth,
    check_reference,
    not_a_professional_of,
)
from core.youths import active_municipality_names, add_parents, resolve_municipality

# Rows per transaction. Each commit of a batch costs a WAL write and checkpoint of the pages it
# touched in the (large, randomly keyed) youth indexes, much the same pages every batch; on a
# 10^6-youth SQLite index (tests/benchmarks/bench_import.py) 20 000 rows a batch import ~7 %
# faster than 10 000 and ~20 % faster than 5000; larger batches gain little more. The price:
# SQLite's single writer lock is held ~1.8 s per batch, while inbound mail and Slack commands
# wait (busy timeout 60 s); PostgreSQL only locks the batch's youths.
BATCH_SIZE = 20_000
IN_CHUNK = 900  # bound parameters per IN (...) list: SQLite's limit is 999 on old builds

# CONTRACT §4: the registration fields; a youth without BSN has Achternaam and Geslacht.
REGISTRATION_COLUMNS = (
    "bsn",
    "achternaam",
    "geslacht",
    "naam",
    "geboortedatum",
    "gemeente",
    "kenmerk",
    "hulpverlener",
    "bsn_ouder",
    "einddatum",
    "actie",
)
REPEATABLE_COLUMNS = ("bsn_ouder",)
EXPECTED_HEADER = "bsn;naam;geboortedatum;gemeente;kenmerk;hulpverlener;bsn_ouder;einddatum;actie"

T = TypeVar("T")

_youth: Table = Youth.__table__  # type: ignore[attr-defined]
_registration: Table = Registration.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RefusedRow:
    line: int
    field: str
    reason: str


@dataclass(frozen=True)
class ImportRow:
    line: int
    fields: dict[str, str]
    # Set by the reader when the row cannot be read as the header says (too many values).
    refusal: RefusedRow | None = None


@dataclass(frozen=True)
class RowResult:
    """What one accepted row came to, as :func:`core.registration.register_youth` tells it."""

    line: int
    action: str  # register | deregister
    registration_number: str
    others_involved: tuple[InvolvedInstitution, ...] = ()


@dataclass
class ImportReport:
    accepted: int = 0
    deregistered: int = 0
    refused: list[RefusedRow] = field(default_factory=list)
    new_involvements: int = 0
    notifications: int = 0
    results: list[RowResult] = field(default_factory=list)  # per accepted row, in file order

    def add(self, other: ImportReport) -> None:
        self.accepted += other.accepted
        self.deregistered += other.deregistered
        self.refused.extend(other.refused)
        self.new_involvements += other.new_involvements
        self.notifications += other.notifications


# --- reading -----------------------------------------------------------------------------------


def read_registration_csv(stream: TextIO) -> Iterator[ImportRow]:
    """Rows of a registration CSV (CONTRACT §4): header row, ``;`` or ``,``, streamed.

    Line numbers are physical lines of the file (the header is line 1), so a refusal can point
    at the line the sender's client system wrote. Blank lines are skipped. An unknown column
    refuses the whole file: guessing what it means could register the wrong youth.
    """
    header_line = stream.readline().lstrip("\ufeff")  # Excel's byte-order mark
    if not header_line.strip():
        raise InvalidInput("het CSV-bestand is leeg of heeft geen kopregel", field="kopregel")
    delimiter = ";" if header_line.count(";") >= header_line.count(",") else ","
    reader = csv.reader(itertools.chain([header_line], stream), delimiter=delimiter)
    labels = next(reader)
    header = _check_header(labels)
    width = len(header)
    repeated = [i for i, name in enumerate(header) if name in REPEATABLE_COLUMNS]
    simple = len(repeated) <= 1
    for values in reader:
        if not "".join(values).strip():  # blank, or only separators and spaces
            continue
        line = reader.line_num
        if len(values) > width and any(v.strip() for v in values[width:]):
            yield ImportRow(
                line,
                {},
                RefusedRow(
                    line,
                    "kopregel",
                    f"de regel heeft {len(values)} waarden, de kopregel {width} kolommen "
                    f"(scheidingsteken '{delimiter}')",
                ),
            )
            continue
        fields = dict(zip(header, values, strict=False))
        if not simple:
            fields["bsn_ouder"] = ",".join(values[i] for i in repeated if i < len(values))
        fields.pop("", None)
        yield ImportRow(line, fields)


def _check_header(labels: list[str]) -> list[str]:
    header = [canonical_label(label) for label in labels]
    unknown = [
        label.strip()
        for label, name in zip(labels, header, strict=True)
        if name and name not in REGISTRATION_COLUMNS
    ]
    if unknown and not any(name in REGISTRATION_COLUMNS for name in header):
        # No known column at all: most likely a file without a header, whose first row is a
        # youth's data; it is not repeated.
        raise InvalidInput(
            f"de eerste regel is geen kopregel (geen bekende kolomnamen); verwacht: "
            f"{EXPECTED_HEADER}",
            field="kopregel",
        )
    if unknown:
        shown = [quote_label(label) or "(kolomnaam weggelaten)" for label in unknown]
        raise InvalidInput(
            f"onbekende kolom(men): {', '.join(shown)}; verwacht: {EXPECTED_HEADER}",
            field="kopregel",
        )
    twice = sorted(
        {
            name
            for name in header
            if name and name not in REPEATABLE_COLUMNS and header.count(name) > 1
        }
    )
    if twice:
        raise InvalidInput(f"kolom(men) staan er dubbel in: {', '.join(twice)}", field="kopregel")
    return header


# --- importing ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Prepared:
    line: int
    action: str  # register | deregister
    key: str  # under the current key
    # The digests under the ring's previous keys: a youth not yet rotated is found by them.
    older_keys: tuple[str, ...] = ()
    bsn: str | None = None
    name: str | None = None
    birth_date: date | None = None
    substitute: str | None = None
    municipality: str = ""
    reference: str = ""
    professional_id: int | None = None
    ends_on: date | None = None
    parent_bsns: tuple[str, ...] = ()


@dataclass(frozen=True)
class _PreparedBatch:
    """One batch, checked: segments to write in order, and the rows refused."""

    moment: datetime
    segments: list[list[_Prepared]]
    refused: list[RefusedRow]


class _Context:
    """What every batch needs beyond its rows, looked up once per import."""

    def __init__(self, session: Session, config: CoreConfig, institution: Institution):
        self.config = config
        self.institution = institution
        self.municipalities = active_municipality_names(session)
        self.professionals = {
            email: professional_id
            for email, professional_id in session.exec(
                select(Professional.email, Professional.id).where(
                    Professional.institution_id == institution.id, col(Professional.active)
                )
            ).all()
        }
        self.institutions = {i.id: i for i in session.exec(select(Institution)).all()}
        self.dialect = session.get_bind().dialect.name
        self._resolved: dict[str, str] = {}
        self._plans: dict[tuple[str, tuple[str, ...]], _InsertPlan] = {}

    def municipality(self, name: str) -> str:
        # Few distinct names in a file: resolve each once.
        known = self._resolved.get(name)
        if known is None:
            known = resolve_municipality(self.config, name, active_names=self.municipalities)
            self._resolved[name] = known
        return known

    def insert(self, table: Table) -> Any:
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    def insert_rows(self, connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
        """``INSERT INTO table`` of ``rows`` (dicts with the same keys), one executemany.

        On SQLite straight through the DBAPI cursor, with the statement and the bind processing
        SQLAlchemy compiles for these columns: the values stored are the same, without its
        per-row parameter handling, which costs more than SQLite's own insert of the row."""
        if self.dialect != "sqlite":
            connection.execute(insert(table), rows)
            return
        keys = tuple(rows[0])
        plan = self._plans.get((table.name, keys))
        if plan is None:
            plan = self._plans[(table.name, keys)] = _InsertPlan(table, keys, connection.dialect)
        connection.exec_driver_sql(plan.sql, plan.parameters(rows))


class _InsertPlan:
    """A compiled positional INSERT and, per parameter, its key and SQLAlchemy bind processor."""

    def __init__(self, table: Table, keys: tuple[str, ...], dialect: Dialect):
        compiled = insert(table).compile(dialect=dialect, column_keys=list(keys))
        order = tuple(compiled.positiontup or ())
        if sorted(order) != sorted(keys):  # a column default SQLAlchemy would fill in
            raise AssertionError(f"INSERT INTO {table.name}: parameters {order}, rows {keys}")
        self.sql = compiled.string
        values = operator.itemgetter(*order)
        self._values = values if len(order) > 1 else lambda row: (values(row),)
        self._processed = [
            (position, processor)
            for position, key in enumerate(order)
            if (processor := table.c[key].type.dialect_impl(dialect).bind_processor(dialect))
        ]

    def parameters(self, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        values = list(map(self._values, rows))
        if not self._processed:
            return values
        # Column by column: one processor call per value, or per column when every row holds
        # the very same object (the batch's moment).
        columns = list(zip(*values, strict=True))
        for position, processor in self._processed:
            column = columns[position]
            if len(set(map(id, column))) == 1:
                columns[position] = (processor(column[0]),) * len(column)
            else:
                columns[position] = tuple(map(processor, column))
        return list(zip(*columns, strict=True))


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
    """Register (and deregister) ``rows`` for the actor's institution, ``batch_size`` rows per
    transaction. The institution is always the authenticated actor's (CONTRACT §4)."""
    report = ImportReport()
    with Session(engine) as session:
        institution = acting_institution(session, actor)
        if institution.id != institution_id:
            raise NotAllowed("u kunt alleen voor uw eigen instelling registreren")
        context = _Context(session, config, institution)
    iterator = iter(rows)
    while batch := list(itertools.islice(iterator, batch_size)):
        prepared = _prepare(batch, context, as_utc(now) if now is not None else utcnow())
        report.refused.extend(prepared.refused)

        def work(session: Session, prepared: _PreparedBatch = prepared) -> ImportReport:
            # A fresh report per attempt: run_in_transaction may run this again after a race.
            outcome = ImportReport()
            for segment in prepared.segments:
                _apply(session, context, segment, actor, prepared.moment, outcome)
            return outcome

        report.add(run_in_transaction(engine, work))
        if progress:
            progress(len(batch))
    report.refused.sort(key=lambda refused: refused.line)
    return report


def apply_requests(
    session: Session,
    config: CoreConfig,
    requests: Sequence[tuple[int, RegisterYouth | DeregisterYouth]],
    *,
    actor: audit.Actor,
    now: datetime | None = None,
) -> ImportReport:
    """Requests already read (``(line, request)``, in order) for the actor's institution,
    set-wise, in the caller's transaction: the mail gateway's registration mails, many at once
    when a client system sends a burst. The report lists each accepted row's registration
    number and the other institutions involved (as ``register_youth`` returns them); the line
    numbers are the caller's own."""
    institution = acting_institution(session, actor)
    context = _Context(session, config, institution)
    moment = as_utc(now) if now is not None else utcnow()
    keys = config.keys
    today = local_date(moment, config.tz)

    prepared = _segments(
        requests,
        lambda line, request: _prepare_request(line, request, context, keys, today),
        moment,
    )
    report = ImportReport(refused=prepared.refused)
    for segment in prepared.segments:
        _apply(session, context, segment, actor, moment, report, keep_results=True)
    report.refused.sort(key=lambda refused: refused.line)
    report.results.sort(key=lambda result: result.line)
    return report


def _prepare(batch: list[ImportRow], ctx: _Context, now: datetime) -> _PreparedBatch:
    """Check every row (the same checks as the single-row path) and cut the batch into
    segments in which each youth occurs at most once. Touches no database."""
    keys = ctx.config.keys
    today = local_date(now, ctx.config.tz)
    rows = ((row.line, row) for row in batch)
    return _segments(rows, lambda _line, row: _prepare_row(row, ctx, keys, today), now)


def _segments(
    items: Iterable[tuple[int, T]], prepare: Callable[[int, T], _Prepared], now: datetime
) -> _PreparedBatch:
    """Each ``(line, item)`` checked by ``prepare`` (a refusal is a :class:`DomainError`
    naming the field); the rest cut into segments in which each youth occurs at most once."""
    segments: list[list[_Prepared]] = []
    refused: list[RefusedRow] = []
    current: dict[str, _Prepared] = {}
    for line, row in items:
        try:
            item = prepare(line, row)
        except DomainError as error:
            refused.append(RefusedRow(line, error.field or "", error.message))
            continue
        if item.key in current:
            segments.append(list(current.values()))
            current = {}
        current[item.key] = item
    if current:
        segments.append(list(current.values()))
    return _PreparedBatch(now, segments, refused)


def _prepare_row(row: ImportRow, ctx: _Context, keys: IdentityKeys, today: date) -> _Prepared:
    if row.refusal is not None:
        raise InvalidInput(row.refusal.reason, field=row.refusal.field)
    # Empty is the same as absent for every field; leaving them out saves work per row.
    request = parse_registration({label: value for label, value in row.fields.items() if value})
    return _prepare_request(row.line, request, ctx, keys, today)


def _prepare_request(
    line: int,
    request: RegisterYouth | DeregisterYouth,
    ctx: _Context,
    keys: IdentityKeys,
    today: date,
) -> _Prepared:
    identity = request.identity
    check_youth_age(identity.birth_date, today)
    key, *older = keys.identity_keys(identity)
    if isinstance(request, DeregisterYouth):
        return _Prepared(line, "deregister", key, tuple(older))
    municipality = ctx.municipality(request.municipality)
    professional_id = None
    if request.professional_email:
        professional_id = ctx.professionals.get(request.professional_email)
        if professional_id is None:
            raise not_a_professional_of(request.professional_email, ctx.institution)
    reference = check_reference(request.reference, request)
    return _Prepared(
        line=line,
        action="register",
        key=key,
        older_keys=tuple(older),
        bsn=identity.bsn,
        name=identity.name or identity.surname,
        birth_date=identity.birth_date,
        substitute=substitute_identity(identity),
        municipality=municipality,
        reference=reference,
        professional_id=professional_id,
        ends_on=request.ends_on,
        # parse_registration normalised (and checked) the parents' BSNs already.
        parent_bsns=tuple(dict.fromkeys(request.parent_bsns)),
    )


def _in_chunks(values: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(values), IN_CHUNK):
        yield values[start : start + IN_CHUNK]


@dataclass
class _Involvement:
    """What the batch's youths look like before this segment's changes."""

    own: dict[int, tuple[int, str]]  # youth id -> (registration id, status) of this institution
    others: dict[int, dict[str, str]]  # youth id -> {other involved institution: its reference}
    signalled: set[int]  # youths with any active signal
    signalled_by_us: set[int]  # youths this institution has an active signal for


def _apply(
    session: Session,
    ctx: _Context,
    prepared: list[_Prepared],
    actor: audit.Actor,
    now: datetime,
    report: ImportReport,
    *,
    keep_results: bool = False,
) -> None:
    youth_ids, created_youths = _ensure_youths(session, ctx, prepared, now, report)
    # A youth created just now has no registrations or signals yet: nothing to look up.
    state = _involvement(
        session, ctx.institution.id, sorted(set(youth_ids.values()) - created_youths)
    )
    new_regs: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    reactivations: list[dict[str, Any]] = []
    ended: list[dict[str, Any]] = []
    touched: set[int] = set()
    for item in prepared:
        youth_id = youth_ids.get(item.key)
        if youth_id is None:
            continue  # refused in _ensure_youths
        reg = state.own.get(youth_id)
        active = reg is not None and reg[1] == RegistrationStatus.ACTIVE
        if item.action == "deregister":
            if reg is None or not active:
                report.refused.append(
                    RefusedRow(
                        item.line,
                        "Actie",
                        "uw instelling heeft geen actieve registratie voor deze jongere",
                    )
                )
                continue
            ended.append({"b_id": reg[0]})
            touched.add(youth_id)
            report.deregistered += 1
            audit.record(
                session,
                actor,
                "registration-ended",
                f"youth:{youth_id}",
                details={"registration": f"R-{reg[0]}"},
                at=now,
            )
            continue
        values = {
            "reference": item.reference,
            "professional_id": item.professional_id,
            "ends_on": item.ends_on,
        }
        touched.add(youth_id)
        report.accepted += 1
        if reg is None:
            new_regs.append(
                {
                    "youth_id": youth_id,
                    "institution_id": ctx.institution.id,
                    "registered_at": now,
                    "status": RegistrationStatus.ACTIVE.value,
                    **values,
                }
            )
        elif not active:
            reactivations.append(
                {"b_id": reg[0], "youth_id": youth_id, "registered_at": now, **values}
            )
        else:
            updates.append({"b_id": reg[0], **values})
            audit.record(
                session,
                actor,
                "registration-updated",
                f"youth:{youth_id}",
                details={"registration": f"R-{reg[0]}"},
                at=now,
            )
    _write_registrations(session, ctx, new_regs, updates, reactivations, ended, now)
    if keep_results:
        report.results += _results(ctx, prepared, youth_ids, state, new_regs, ended)
    created = [(r["youth_id"], r["id"]) for r in new_regs]
    created += [(r["youth_id"], r["b_id"]) for r in reactivations]
    for youth_id, reg_id in created:
        audit.record(
            session,
            actor,
            "registration-created",
            f"youth:{youth_id}",
            details={"registration": f"R-{reg_id}"},
            at=now,
        )
    # An institution that signalled the youth was involved already, registered or not.
    involved_now = [(y, r) for y, r in created if y not in state.signalled_by_us]
    report.new_involvements += len(involved_now)
    report.notifications += _notify_involved(session, ctx, involved_now, state.others, now)
    # Matches and coordination follow registrations only where a signal is active (few).
    to_reconcile = sorted(touched & state.signalled)
    if to_reconcile:
        session.expire_all()  # rows were changed underneath the ORM
        for youth_id in to_reconcile:
            reconcile_youth(session, ctx.config, youth_id, now)


def _results(
    ctx: _Context,
    prepared: list[_Prepared],
    youth_ids: dict[str, int],
    state: _Involvement,
    new_regs: list[dict[str, Any]],
    ended: list[dict[str, Any]],
) -> list[RowResult]:
    """Per accepted row: its registration and, for an aanmelding, the other institutions
    involved before it (a youth is in a segment once, so ``state`` is the state before)."""
    registration_of = {youth_id: reg_id for youth_id, (reg_id, _status) in state.own.items()}
    registration_of.update((r["youth_id"], r["id"]) for r in new_regs)
    ended_ids = {r["b_id"] for r in ended}
    results = []
    for item in prepared:
        youth_id = youth_ids.get(item.key)
        reg_id = registration_of.get(youth_id) if youth_id is not None else None
        if youth_id is None or reg_id is None:
            continue  # refused
        if item.action == "deregister":
            if reg_id in ended_ids:
                results.append(RowResult(item.line, item.action, f"R-{reg_id}"))
            continue
        others = tuple(
            InvolvedInstitution(other.id, other.name, other.notification_email)
            for other_id in sorted(state.others.get(youth_id, {}))
            if (other := ctx.institutions.get(other_id)) is not None
        )
        results.append(RowResult(item.line, item.action, f"R-{reg_id}", others))
    return results


def _ensure_youths(
    session: Session, ctx: _Context, prepared: list[_Prepared], now: datetime, report: ImportReport
) -> tuple[dict[str, int], set[int]]:
    """identity key -> youth id for the segment: existing youths found, new ones inserted,
    locked (PostgreSQL: in id order, as single commands lock them), moved, parents linked.
    Also the ids of the youths inserted here (SQLite; empty on PostgreSQL)."""
    connection = session.connection()
    created: set[int] = set()
    if ctx.dialect == "sqlite":
        # BEGIN IMMEDIATE made this transaction the only writer: look the segment's youths up,
        # then insert just the unknown ones with the ids SQLite would give them (AUTOINCREMENT:
        # past the highest ever given). No second look-up of 10^4 youths just inserted.
        found = _find_youths(session, prepared)
        new_rows = []
        next_id = _next_sqlite_id(connection, _youth)
        for item in prepared:
            if item.action == "register" and item.key not in found:
                row = _new_youth(ctx, item, now)
                row["id"] = next_id
                found[item.key] = (next_id, item.municipality, row["name_encrypted"] is not None)
                created.add(next_id)
                new_rows.append(row)
                next_id += 1
        if new_rows:
            ctx.insert_rows(connection, _youth, new_rows)
    else:
        # Insert first (a youth already known, also one a concurrent command has just inserted,
        # is left alone by ON CONFLICT DO NOTHING), then one look-up for the whole segment.
        # During a key rotation a youth may be stored under a previous key's digest, which
        # ON CONFLICT (identity_key) cannot see: those are looked up first.
        rotating = bool(ctx.config.keys.ring.previous)
        known = _find_youths(session, prepared) if rotating else {}
        new_rows = [
            _new_youth(ctx, item, now)
            for item in prepared
            if item.action == "register" and item.key not in known
        ]
        if new_rows:
            connection.execute(
                ctx.insert(_youth).on_conflict_do_nothing(index_elements=["identity_key"]),
                new_rows,
            )
        found = _find_youths(session, prepared)
    for item in prepared:
        if item.key not in found:  # only a deregistration can name an unknown youth
            report.refused.append(
                RefusedRow(item.line, "BSN", "deze jongere staat niet in de verwijsindex")
            )
    if ctx.dialect == "postgresql":
        ids = sorted({youth_id for youth_id, _, _ in found.values()})
        for chunk in _in_chunks(ids):
            session.exec(
                select(Youth.id)
                .where(col(Youth.id).in_(chunk))
                .order_by(col(Youth.id))
                .with_for_update()
            ).all()
    moved = []
    named = []
    parents: list[tuple[int, str]] = []
    for item in prepared:
        if item.action != "register" or item.key not in found:
            continue
        youth_id, municipality, has_name = found[item.key]
        if municipality != item.municipality:  # the youth moved: coordination rules follow
            moved.append({"b_id": youth_id, "municipality": item.municipality})
        if not has_name and item.name:
            named.append({"b_id": youth_id, "name_encrypted": ctx.config.keys.encrypt(item.name)})
        parents += [(youth_id, bsn) for bsn in item.parent_bsns]
    by_id = _youth.c.id == bindparam("b_id")
    if moved:
        connection.execute(
            update(_youth).where(by_id).values(municipality=bindparam("municipality")), moved
        )
    if named:
        connection.execute(
            update(_youth).where(by_id).values(name_encrypted=bindparam("name_encrypted")), named
        )
    add_parents(session, ctx.config, parents)
    return {key: value[0] for key, value in found.items()}, created


def _next_sqlite_id(connection: Connection, table: Table) -> int:
    """The id SQLite gives the next row of an AUTOINCREMENT table: past the highest ever given
    (``sqlite_sequence``) and the highest present. Only while this transaction holds the write
    lock (BEGIN IMMEDIATE) is it still free when the insert comes."""
    given = connection.exec_driver_sql(
        "SELECT seq FROM sqlite_sequence WHERE name = ?", (table.name,)
    ).scalar()
    present = connection.execute(sa_select(func.max(table.c.id))).scalar()
    return max(given or 0, present or 0) + 1


def _new_youth(ctx: _Context, item: _Prepared, now: datetime) -> dict[str, Any]:
    assert item.birth_date is not None
    keys = ctx.config.keys
    return {
        "identity_key": item.key,
        "key_id": keys.key_id,
        "has_bsn": item.bsn is not None,
        # Never in clear (DOMAIN: Security): encrypted only for the subject-access report.
        "bsn_encrypted": keys.encrypt(item.bsn) if item.bsn else None,
        "name_encrypted": keys.encrypt(item.name) if item.name else None,
        "birth_date_encrypted": keys.encrypt_date(item.birth_date),
        "substitute_encrypted": keys.encrypt(item.substitute) if item.substitute else None,
        "municipality": item.municipality,
        "purge_month": purge_month(item.birth_date),
        "created_at": now,
    }


def _find_youths(session: Session, prepared: list[_Prepared]) -> dict[str, tuple[int, str, bool]]:
    """identity key (under the current key) -> (youth id, municipality, has a name) for the
    youths already known, also those still under a previous key (a rotation under way)."""
    current = {older: item.key for item in prepared for older in item.older_keys}
    current.update((item.key, item.key) for item in prepared)
    found: dict[str, tuple[int, str, bool]] = {}
    c = _youth.c
    for chunk in _in_chunks(list(current)):
        for youth_id, key, municipality, has_name in (
            session.connection()
            .execute(
                select(c.id, c.identity_key, c.municipality, c.name_encrypted.is_not(None)).where(
                    c.identity_key.in_(chunk)
                )
            )
            .all()
        ):
            found[current[key]] = (youth_id, municipality, bool(has_name))
    return found


def _involvement(session: Session, institution_id: str, youth_ids: list[int]) -> _Involvement:
    state = _Involvement(own={}, others={}, signalled=set(), signalled_by_us=set())
    connection = session.connection()
    references: dict[tuple[int, str], str] = {}
    for chunk in _in_chunks(youth_ids):
        r = _registration.c
        for reg_id, youth_id, other, reference, status in connection.execute(
            sa_select(r.id, r.youth_id, r.institution_id, r.reference, r.status).where(
                r.youth_id.in_(chunk)
            )
        ).all():
            if other == institution_id:
                state.own[youth_id] = (reg_id, status)
                continue
            references[(youth_id, other)] = reference
            if status == RegistrationStatus.ACTIVE:
                state.others.setdefault(youth_id, {})[other] = reference
        for youth_id, other in connection.execute(
            select(Signal.youth_id, Signal.institution_id).where(
                col(Signal.youth_id).in_(chunk), Signal.status == SignalStatus.ACTIVE
            )
        ).all():
            state.signalled.add(youth_id)
            if other == institution_id:
                state.signalled_by_us.add(youth_id)
            else:
                # As core.involvement.institution_reference: its reference if it ever
                # registered the youth, else nothing.
                state.others.setdefault(youth_id, {}).setdefault(
                    other, references.get((youth_id, other), "")
                )
    return state


def _write_registrations(
    session: Session,
    ctx: _Context,
    new_regs: list[dict[str, Any]],
    updates: list[dict[str, Any]],
    reactivations: list[dict[str, Any]],
    ended: list[dict[str, Any]],
    now: datetime,
) -> None:
    connection = session.connection()
    if new_regs and ctx.dialect == "sqlite":
        # The only writer (BEGIN IMMEDIATE): the ids are known before the insert.
        next_id = _next_sqlite_id(connection, _registration)
        for number, values in enumerate(new_regs, start=next_id):
            values["id"] = number
        ctx.insert_rows(connection, _registration, new_regs)
    elif new_regs:
        # A plain executemany, then the ids by (youth, institution), the unique key.
        connection.execute(insert(_registration), new_regs)
        c = _registration.c
        ids: dict[int, int] = {}
        for chunk in _in_chunks([r["youth_id"] for r in new_regs]):
            ids.update(
                (youth_id, reg_id)
                for reg_id, youth_id in connection.execute(
                    sa_select(c.id, c.youth_id).where(
                        c.institution_id == new_regs[0]["institution_id"], c.youth_id.in_(chunk)
                    )
                )
            )
        for values in new_regs:
            values["id"] = ids[values["youth_id"]]
    by_id = _registration.c.id == bindparam("b_id")
    changeable: dict[str, Any] = {
        "reference": bindparam("reference"),
        "professional_id": bindparam("professional_id"),
        "ends_on": bindparam("ends_on"),
    }
    if updates:
        connection.execute(update(_registration).where(by_id).values(**changeable), updates)
    if reactivations:
        connection.execute(
            update(_registration)
            .where(by_id)
            .values(
                status=RegistrationStatus.ACTIVE.value,
                registered_at=bindparam("registered_at"),
                ended_at=None,
                **changeable,
            ),
            [{k: v for k, v in r.items() if k != "youth_id"} for r in reactivations],
        )
    if ended:
        connection.execute(
            update(_registration)
            .where(by_id)
            .values(status=RegistrationStatus.ENDED.value, ended_at=now),
            ended,
        )


def _notify_involved(
    session: Session,
    ctx: _Context,
    involved_now: list[tuple[int, int]],
    others: dict[int, dict[str, str]],
    now: datetime,
) -> int:
    """The chain registration (DOMAIN step 1), in bulk: exactly the rows that
    ``core.notifications.subscribers.on_involvement_added`` writes through ``notify`` for the
    single-row path — same idempotency key (:func:`involvement_occasion`), context and columns."""
    kind = "nieuwe-betrokkenheid"
    newcomer = institution_card(ctx.institution)
    rows = []
    for youth_id, reg_id in involved_now:
        involved = others.get(youth_id)
        if not involved:
            continue
        reference = f"R-{reg_id}"
        for other_id in sorted(involved):
            other = ctx.institutions.get(other_id)
            if other is None:
                continue
            recipient = institution_recipient(other)
            context = {
                **new_involvement_context(involved[other_id], newcomer, len(involved) + 1),
                **common_context(ctx.config, kind, reference, recipient, asks_reply=False),
            }
            for channel, address in channels(recipient):
                rows.append(
                    outbox.NewNotification(
                        kind=kind,
                        channel=channel,
                        recipient=address,
                        recipient_role=recipient.role,
                        reference=reference,
                        context=context,
                        idempotency_key=idempotency_key(
                            kind, involvement_occasion(reg_id, now), recipient, channel, address
                        ),
                        institution_id=recipient.institution_id,
                    )
                )
    return outbox.enqueue_many(session, rows, now=now)
