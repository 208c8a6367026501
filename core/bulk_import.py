"""Batch registrations from a client system (CSV), tens of thousands a night.

The one registration rule (:mod:`core.registration_plan`, applied set-wise by
:mod:`core.registration_apply`), as for a single :func:`core.registration.register_youth`: the
import reads and checks the rows, and hands them over a batch at a time.

Each batch is one transaction; a refused row never stops the others. Rows are planned in file
order, each against the state the earlier ones left, so a youth that occurs twice in a file
(``aanmelden`` then ``afmelden``) comes out as it would one by one, whatever the batch size.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import BinaryIO, TextIO

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
BSN_COLUMNS = ("bsn", "bsn_ouder")

# One file, CSV or workbook, holds at most this many rows: a client system's nightly export is
# a few hundred thousand; more is a mistake (or an attack) that would hold the worker for hours.
MAX_FILE_ROWS = 1_000_000
XLSX_SUFFIXES = (".xlsx", ".xlsm")
UNREADABLE_SPREADSHEETS = (".xls", ".xlsb", ".ods", ".numbers")
SEND_CSV_OR_XLSX = (
    "stuur de registraties als CSV-bestand (in Excel: Opslaan als 'CSV (gescheiden door "
    "lijstscheidingsteken)') of als Excel-werkmap (.xlsx)"
)
# A real workbook unpacks to 5–20 times its size (XML compresses well); a zip bomb to
# thousands of times. 1,000,000 rows of nine short columns unpack to some 600 MB.
XLSX_MAX_UNPACKED = 1024 * 2**20
XLSX_MAX_SHARED_STRINGS = 256 * 2**20
XLSX_MAX_RATIO = 100
_MAX_COLUMNS = 64  # the fields and a margin; a sheet's claimed width (XFD = 16,384) is not read
_DECODE_CHUNK = 1 << 16
WORKBOOK_MAGIC = b"PK\x03\x04"  # .xlsx is a zip archive
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls, and any password-protected workbook


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
    """Rows of a registration CSV (CONTRACT §4): header row, ``;`` or ``,``, streamed. Bytes
    are decoded by :func:`open_csv_text`.

    Line numbers are physical lines of the file (the header is line 1), so a refusal can point
    at the line the sender's client system wrote. Blank lines are skipped. An unknown column
    refuses the whole file: guessing what it means could register the wrong youth.
    """
    header_line = stream.readline().lstrip("\ufeff")  # Excel's byte-order mark
    if not header_line.strip():
        raise InvalidInput("het CSV-bestand is leeg of heeft geen kopregel", field="kopregel")
    delimiter = ";" if header_line.count(";") >= header_line.count(",") else ","
    reader = csv.reader(itertools.chain([header_line], stream), delimiter=delimiter)
    header = _check_header(next(reader))
    numbered = ((reader.line_num, values) for values in reader)
    yield from _table_rows(header, numbered, f"scheidingsteken '{delimiter}'")


def _table_rows(
    header: list[str], numbered: Iterable[tuple[int, list[str]]], layout: str
) -> Iterator[ImportRow]:
    """The rows below a checked header, of a CSV file or a worksheet alike (``layout`` names
    the file's separator or sheet in a refusal)."""
    width = len(header)
    repeated = [i for i, name in enumerate(header) if name in REPEATABLE_COLUMNS]
    simple = len(repeated) <= 1
    count = 0
    for line, values in numbered:
        if not "".join(values).strip():  # blank, or only separators and spaces
            continue
        count += 1
        if count > MAX_FILE_ROWS:
            limit = f"{MAX_FILE_ROWS:_}".replace("_", ".")  # Dutch thousands: 1.000.000
            reason = (
                f"het bestand heeft meer dan {limit} regels (de grens per bestand); deze regel "
                "en de regels daarna zijn niet verwerkt: splits het bestand"
            )
            yield ImportRow(line, {}, RefusedRow(line, "bestand", reason))
            return
        if len(values) > width and any(v.strip() for v in values[width:]):
            yield ImportRow(
                line,
                {},
                RefusedRow(
                    line,
                    "kopregel",
                    f"de regel heeft {len(values)} waarden, de kopregel {width} kolommen "
                    f"({layout})",
                ),
            )
            continue
        fields = dict(zip(header, values, strict=False))
        if not simple:
            fields["bsn_ouder"] = ",".join(values[i] for i in repeated if i < len(values))
        fields.pop("", None)
        yield ImportRow(line, fields)


# --- files: bytes as a client system or a spreadsheet program saved them ------------------------


def csv_encoding(data: BinaryIO) -> str:
    """How a CSV file's bytes are decoded: a byte-order mark decides, then UTF-8 when every
    byte is valid UTF-8, else Windows-1252 — what Dutch Excel's "CSV (gescheiden door
    lijstscheidingsteken)" writes, and older client systems (ISO-8859-1 is a subset). Reads
    the stream once in chunks and leaves it where it was."""
    start = data.tell()
    head = data.read(4)
    data.seek(start)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        while chunk := data.read(_DECODE_CHUNK):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "cp1252"
    finally:
        data.seek(start)
    return "utf-8"


def open_csv_text(data: BinaryIO) -> TextIO:
    """A CSV file's bytes as text, decoded as it is read (:func:`csv_encoding`): the one
    decoding of registration CSVs, for a mail attachment and ``verwijsindex import`` alike.
    Bytes Windows-1252 leaves undefined read as U+FFFD rather than failing halfway through."""
    return io.TextIOWrapper(data, encoding=csv_encoding(data), errors="replace", newline="")


def read_registration_file(data: BinaryIO, filename: str) -> Iterator[ImportRow]:
    """The rows of a registration file, CSV or Excel workbook (``.xlsx``), by its content (a
    workbook is a zip archive) and else its name. Any other spreadsheet is refused with
    :class:`InvalidInput` (field ``bestand``) naming what to send instead."""
    start = data.tell()
    magic = data.read(len(_OLE2_MAGIC))
    data.seek(start)
    if magic.startswith(WORKBOOK_MAGIC) or filename.lower().endswith(XLSX_SUFFIXES):
        yield from read_registration_xlsx(data)
    elif magic == _OLE2_MAGIC or filename.lower().endswith(UNREADABLE_SPREADSHEETS):
        raise InvalidInput(
            "dit soort bestand lezen wij niet (Excel 97-2003 .xls, .ods, .xlsb, of een werkmap "
            f"met een wachtwoord); {SEND_CSV_OR_XLSX}",
            field="bestand",
        )
    else:
        with open_csv_text(data) as stream:
            yield from read_registration_csv(stream)


def read_registration_xlsx(data: BinaryIO) -> Iterator[ImportRow]:
    """Rows of the first worksheet of an ``.xlsx`` workbook, with the same header row as the
    CSV (the first row that is not empty). Read in openpyxl's read-only mode (streamed, as the
    CSV), after a look at the archive: a workbook that unpacks to far more than it weighs is a
    zip bomb, refused before any of it is unpacked. Cells come as Excel stores them: a date as
    ``DD-MM-JJJJ``; a number as its digits, and in a BSN column with the leading zero Excel
    drops put back (nine digits)."""
    # Imported here, not above: openpyxl takes a third of a second to import, and every
    # process that imports the bulk import (each CLI command, each worker) would pay it.
    import openpyxl

    _check_archive(data)
    try:
        workbook = openpyxl.load_workbook(data, read_only=True, data_only=True)
    except Exception as exc:  # zipfile, XML or openpyxl's own errors: one answer for all
        raise InvalidInput(
            f"het bestand is geen leesbaar xlsx-werkboek; {SEND_CSV_OR_XLSX}", field="bestand"
        ) from exc
    try:
        if not workbook.worksheets:
            raise InvalidInput("het werkboek heeft geen werkblad", field="kopregel")
        sheet = workbook.worksheets[0]
        rows = enumerate(sheet.iter_rows(max_col=_MAX_COLUMNS, values_only=True), start=1)
        for _, values in rows:
            if any(_cell_text(value) for value in values):
                break
        else:
            raise InvalidInput("het werkblad is leeg of heeft geen kopregel", field="kopregel")
        header = _check_header([_cell_text(value) for value in values])
        numbered = (
            (line, [_cell_text(v, header[i] if i < len(header) else "") for i, v in enumerate(row)])
            for line, row in rows
        )
        # The sheet is not named: its title may be anything, a youth's name too.
        yield from _table_rows(header, numbered, "eerste werkblad")
    finally:
        workbook.close()


def _check_archive(data: BinaryIO) -> None:
    start = data.tell()
    try:
        with zipfile.ZipFile(data) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InvalidInput(
            f"het bestand is geen leesbaar xlsx-werkboek; {SEND_CSV_OR_XLSX}", field="bestand"
        ) from exc
    finally:
        data.seek(start)
    unpacked = sum(member.file_size for member in members)
    packed = sum(member.compress_size for member in members)
    # openpyxl holds the shared strings (every distinct text of the workbook) in memory.
    strings = sum(m.file_size for m in members if m.filename.endswith("sharedStrings.xml"))
    size = f"het werkboek pakt uit tot {unpacked // 2**20} MB"
    if unpacked > XLSX_MAX_RATIO * max(packed, 1):
        reason = f"{size}, meer dan {XLSX_MAX_RATIO} keer zijn eigen grootte (een zipbom)"
    elif unpacked > XLSX_MAX_UNPACKED or strings > XLSX_MAX_SHARED_STRINGS:
        reason = f"{size}; dat is meer dan wij lezen"
    else:
        return
    raise InvalidInput(f"{reason}. Stuur het als CSV, of in delen", field="bestand")


def _cell_text(value: object, column: str = "") -> str:
    """A cell's value as the text a CSV would hold."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return value.strftime("%d-%m-%Y")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        digits = str(value)
        # A BSN typed into Excel becomes a number, and 012345678 loses its leading zero (or
        # two). Shorter numbers are left for the BSN check to refuse: no BSN was typed there.
        if column in BSN_COLUMNS and 7 <= len(digits) < 9:
            return digits.zfill(9)
        return digits
    return str(value).strip()


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
