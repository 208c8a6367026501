"""Batch registrations from a client system (CSV), tens of thousands a night.

The one registration rule (:mod:`core.registration_plan`, applied set-wise by
:mod:`core.registration_apply`), as for a single :func:`core.registration.register_youth`: the
import reads and checks the rows, and hands them over a batch at a time.

Each batch is one transaction; a refused row never stops the others. Rows are planned in file
order, each against the state the earlier ones left, so a youth that occurs twice in a file
(``aanmelden`` then ``afmelden``) comes out as it would one by one, whatever the batch size.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core import audit
from core.actors import acting_institution
from core.bulk_writes import collector_paused
from core.clock import as_utc, local_date, utcnow
from core.config import CoreConfig
from core.db import run_in_transaction
from core.errors import InvalidInput, NotAllowed
from core.fields import canonical_label, parse_registration, quote_label
from core.registration_apply import Applied, apply_checked, load_context
from core.registration_plan import DEREGISTER, Refusal, RegistrationContext, check_requests
from core.registration_requests import DeregisterYouth, InvolvedInstitution, RegisterYouth

# Rows per transaction. Each commit of a batch costs a WAL write and checkpoint of the pages it
# touched in the (large, randomly keyed) youth indexes, much the same pages every batch; on a
# 10^6-youth SQLite index (tests/benchmarks/bench_import.py) 20 000 rows a batch import ~7 %
# faster than 10 000 and ~20 % faster than 5000; larger batches gain little more. The price:
# SQLite's single writer lock is held ~1.8 s per batch, while inbound mail and Slack commands
# wait (busy timeout 60 s); PostgreSQL only locks the batch's youths.
BATCH_SIZE = 20_000

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
        context = load_context(session, config, institution)
    iterator = iter(rows)
    while True:
        # The batch's rows are let go inside the pause, so the collector has nothing of
        # theirs to walk when it runs again.
        with collector_paused():
            read, outcome = _import_batch(engine, context, iterator, batch_size, actor, now)
        if not read:
            break
        report.add(outcome)
        if progress:
            progress(read)
    report.refused.sort(key=lambda refused: refused.line)
    return report


def _import_batch(
    engine: Engine,
    context: RegistrationContext,
    rows: Iterator[ImportRow],
    batch_size: int,
    actor: audit.Actor,
    now: datetime | None,
) -> tuple[int, ImportReport]:
    """The next ``batch_size`` rows in one transaction: how many were read, and their report."""
    batch = list(itertools.islice(rows, batch_size))
    if not batch:
        return 0, ImportReport()
    moment = as_utc(now) if now is not None else utcnow()
    # Checked before the transaction: a row's own faults need no database.
    today = local_date(moment, context.config.tz)
    checked, refused = check_requests(((row.line, row) for row in batch), _read_row, context, today)

    def work(session: Session) -> ImportReport:
        # A fresh report per attempt: run_in_transaction may run this again after a race.
        return _report(apply_checked(session, context, checked, actor=actor, now=moment))

    report = run_in_transaction(engine, work)
    report.refused.extend(_refused(refused))
    return len(batch), report


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
    emails = [r.professional_email for _, r in requests if isinstance(r, RegisterYouth)]
    context = load_context(session, config, institution, professional_emails=emails)
    moment = as_utc(now) if now is not None else utcnow()
    checked, refused = check_requests(requests, _as_is, context, local_date(moment, config.tz))
    applied = apply_checked(session, context, checked, actor=actor, now=moment)
    report = _report(applied, results=True)
    report.refused.extend(_refused(refused))
    report.refused.sort(key=lambda refused: refused.line)
    return report


def _read_row(row: ImportRow) -> RegisterYouth | DeregisterYouth:
    if row.refusal is not None:
        raise InvalidInput(row.refusal.reason, field=row.refusal.field)
    # Empty is the same as absent for every field; leaving them out saves work per row.
    return parse_registration({label: value for label, value in row.fields.items() if value})


def _as_is(request: RegisterYouth | DeregisterYouth) -> RegisterYouth | DeregisterYouth:
    return request


def _refused(refusals: Iterable[Refusal]) -> list[RefusedRow]:
    return [RefusedRow(refusal.line, refusal.field, refusal.reason) for refusal in refusals]


def _report(applied: Applied, *, results: bool = False) -> ImportReport:
    plan = applied.plan
    deregistered = sum(outcome.action == DEREGISTER for outcome in plan.outcomes)
    report = ImportReport(
        accepted=len(plan.outcomes) - deregistered,
        deregistered=deregistered,
        refused=_refused(plan.refusals),
        new_involvements=plan.new_involvements,
        notifications=applied.notifications,
    )
    if results:  # in request order already
        report.results = [
            RowResult(
                outcome.line,
                outcome.action,
                applied.registration_number(outcome.key),
                applied.others_involved(outcome),
            )
            for outcome in plan.outcomes
        ]
    return report
