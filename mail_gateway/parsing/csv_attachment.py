"""A CSV attachment as registration rows, streamed: the decoded text is read line by line by
the core's CSV reader (:func:`core.bulk_import.read_registration_csv`) and handed to the bulk
import batch by batch, so a 100,000-row file is never a list of rows in memory (only its bytes,
which arrived in the mail).

The charset is sniffed (:meth:`Attachment.open_text`: byte-order mark, UTF-8, else
Windows-1252), so a file in the "wrong" charset still reads. A file the ``csv`` module gives up
on halfway (a field over its size limit) ends with one refused row naming the line, after the
rows before it: what was read stands, nothing crashes.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from typing import TextIO, cast

from core.bulk_import import ImportRow, RefusedRow, read_registration_csv
from mail_gateway.parsing.mime import Attachment

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class _WithoutControls:
    """The stream's lines without NUL and other control characters: they are never meant, and
    PostgreSQL refuses NUL in text. Only what the CSV reader uses: ``readline`` and iteration.
    """

    def __init__(self, stream: TextIO):
        self._stream = stream

    def readline(self, size: int = -1) -> str:
        return _CONTROL.sub("", self._stream.readline(size))

    def __iter__(self) -> _WithoutControls:
        return self

    def __next__(self) -> str:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


def read_csv_rows(stream: TextIO) -> Iterator[ImportRow]:
    """The rows of a decoded CSV stream. Raises :class:`core.errors.InvalidInput` (field
    ``kopregel``) when the header row cannot be read — the whole file is refused then."""
    rows = read_registration_csv(cast(TextIO, _WithoutControls(stream)))
    line = 1
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as error:
            reason = (
                f"het bestand is vanaf regel {line + 1} niet te lezen als CSV ({error}); "
                "de regels daarna zijn niet verwerkt"
            )
            yield ImportRow(line + 1, {}, RefusedRow(line + 1, "bestand", reason))
            return
        line = row.line
        yield row


def registration_rows(attachment: Attachment) -> Iterator[ImportRow]:
    """The rows of a CSV attachment, read as they are consumed."""
    with attachment.open_text() as stream:
        yield from read_csv_rows(stream)


def registration_rows_from_bytes(data: bytes) -> Iterator[ImportRow]:
    """The rows of CSV bytes from any transport, charset sniffed as for an attachment."""
    yield from registration_rows(Attachment("", "text/csv", data))
