"""Registration files attached to a mail: an Excel workbook (``.xlsx``, what most institutions
send) or a CSV, as rows for the bulk import, and the answer for a file we cannot read.

The workbook is read by the core (:func:`core.bulk_import.read_registration_xlsx`: the first
sheet, the CSV's header row, openpyxl in read-only mode behind a zip-bomb check, the CSV's row
limit), so a workbook mailed to ``registratie@`` and one given to ``verwijsindex import`` read
alike. An ``.xls``, ``.ods``, PDF or any other file that may be meant as registrations gets a
refusal naming it and saying what to send instead; nothing in it is guessed at.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

from core.bulk_import import (
    SEND_CSV_OR_XLSX,
    WORKBOOK_MAGIC,
    ImportRow,
    read_registration_xlsx,
)
from core.free_text import quote
from mail_gateway.parsing import csv_attachment
from mail_gateway.parsing.mime import Attachment

NOTED_REFERENCES = 100_000  # a few MB at most; the receipt lists no more than 500 refusals


def workbook_rows(attachment: Attachment) -> Iterator[ImportRow]:
    """The rows of an ``.xlsx`` attachment, read as they are consumed."""
    yield from read_registration_xlsx(io.BytesIO(attachment.payload))


def registration_file_rows(
    attachment: Attachment, references: dict[int, str] | None = None
) -> Iterator[ImportRow]:
    """The rows of a registration attachment, workbook or CSV. ``references`` collects each
    row's Kenmerk by line (for the first :data:`NOTED_REFERENCES` rows), so that the receipt can
    name a refused row by the sender's own reference."""
    # A workbook sent under a CSV's name or type is still a workbook (a zip archive).
    workbook = attachment.is_xlsx or attachment.payload.startswith(WORKBOOK_MAGIC)
    rows = workbook_rows(attachment) if workbook else csv_attachment.registration_rows(attachment)
    for row in rows:
        reference = row.fields.get("kenmerk")
        if references is not None and reference and len(references) < NOTED_REFERENCES:
            references[row.line] = reference
        yield row


def file_name(attachment: Attachment) -> str:
    """The attachment's name as a receipt may show it: not when it could hold a BSN or a date
    of birth (``aanmelding 123456782.xls``)."""
    return quote(attachment.filename, limit=80) if attachment.filename else "(zonder naam)"


def unreadable_file_reason(attachment: Attachment) -> str:
    """Why an attachment was not read, and what to send instead (Dutch, safe to show)."""
    return f"de bijlage {file_name(attachment)} kunnen wij niet lezen; {SEND_CSV_OR_XLSX}"
