"""A mail as the gateway needs it, from whatever bytes arrived.

Real mail is messy: missing or lying charsets, Windows-1252 declared as ISO-8859-1, broken
base64, missing boundaries, 8-bit bytes in headers, HTML-only bodies, headers the strict parser
rejects. :func:`read_mail` never raises: what it could not make sense of is listed in
``defects`` (English, for an administrator) and the text is the best it could get. Every string
it returns is valid Unicode without NUL characters, safe to store and to quote in a reply.

The modern parser (``policy=default``, each header parsed once per mail) reads the mail; a
header it cannot parse is decoded by hand (RFC 2047), and a MIME tree it cannot walk is walked
again with ``compat32``.
"""

from __future__ import annotations

import base64
import contextvars
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import errors as email_errors
from email.header import decode_header
from email.headerregistry import HeaderRegistry
from email.message import Message
from email.parser import BytesParser
from email.policy import EmailPolicy, Policy, compat32
from typing import Any, TextIO, TypeVar

from core.bulk_import import XLSX_SUFFIXES, csv_encoding, open_csv_text
from mail_gateway.address_syntax import ADDR_SPEC, ATOM
from mail_gateway.parsing.charsets import (
    c1_as_windows_1252,
    decode_text,
    decode_windows_1252,
    is_utf8,
)
from mail_gateway.parsing.flowed import unflow
from mail_gateway.parsing.html_text import html_to_text

CSV_TYPES = frozenset({"text/csv", "application/csv", "text/comma-separated-values", "text/x-csv"})
# Types a client sends a .csv file as when it does not know better: a CSV by its filename.
CSV_BY_FILENAME_TYPES = frozenset(
    {"application/octet-stream", "text/plain", "application/x-csv", "application/vnd.ms-excel"}
)
MAX_HEADER_LINE = 8192  # RFC 5322 §2.1.1 allows 998; longer lines only cost parse time
MAX_HEADER_VALUE = 16384
MAX_DEPTH = 40  # nested multiparts; deeper is an attack or a loop, not a mail
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_MSGID = re.compile(r"<[^<>\s]{1,900}>")
_BARE_MSGID = re.compile(r"^[^<>\s@]{1,500}@[^<>\s@]{1,400}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_EXCEL_FILENAMES = (".xls", ".xlsx", ".xlsm", ".ods")
XLSX_TYPES = frozenset(
    {
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.ms-excel.sheet.macroenabled.12",
    }
)
# Parts that come with a mail but are never meant as its content: pictures in a signature, an
# S/MIME or PGP signature, a calendar invitation, a business card; an attached mail is read as
# a forward (``forwarded``).
_INCIDENTAL_TYPES = frozenset(
    {
        "application/pkcs7-signature",
        "application/x-pkcs7-signature",
        "application/pgp-signature",
        "application/pgp-keys",
        "text/calendar",
        "text/vcard",
        "text/x-vcard",
        "text/directory",
    }
)

T = TypeVar("T")


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    payload: bytes

    @property
    def is_csv(self) -> bool:
        """A CSV by its type (``text/csv``, Excel's ``application/vnd.ms-excel`` unless the
        filename says it is a real spreadsheet) or by a ``.csv`` filename on a generic type."""
        name = self.filename.lower()
        if self.content_type in CSV_TYPES:
            return True
        if self.content_type == "application/vnd.ms-excel" and not name.endswith(_EXCEL_FILENAMES):
            return True
        return name.endswith(".csv") and self.content_type in CSV_BY_FILENAME_TYPES

    @property
    def is_xlsx(self) -> bool:
        """An Excel workbook (``.xlsx``) by its type or its name (clients also send it as
        ``application/octet-stream`` or Excel's old ``application/vnd.ms-excel``)."""
        if self.is_csv:
            return False
        return self.content_type in XLSX_TYPES or self.filename.lower().endswith(XLSX_SUFFIXES)

    @property
    def is_registration_file(self) -> bool:
        return self.is_csv or self.is_xlsx

    @property
    def is_incidental(self) -> bool:
        """A part no one sends as the mail's content (a signature's logo, an S/MIME signature,
        an attached mail read as a forward)."""
        kind = self.content_type
        return kind.startswith(("image/", "message/")) or kind in _INCIDENTAL_TYPES

    @property
    def encoding(self) -> str:
        """How :meth:`open_text` decodes (:func:`core.bulk_import.csv_encoding`)."""
        return csv_encoding(io.BytesIO(self.payload))

    def open_text(self) -> TextIO:
        """The content as a text stream, decoded as every registration CSV is
        (:func:`core.bulk_import.open_csv_text`: byte-order mark, UTF-8, else Windows-1252)."""
        return open_csv_text(io.BytesIO(self.payload))


@dataclass
class ParsedMail:
    message_id: str | None = None  # '<...>', or None when the mail has none we can read
    from_address: str | None = None  # lower-cased addr-spec; None if absent or ambiguous
    subject: str = ""
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    auto_submitted: str = ""  # RFC 3834 §5 keyword, lower case ('' when absent)
    headers: dict[str, list[str]] = field(default_factory=dict)  # lower-case name -> values
    content_type: str = "text/plain"
    text: str = ""  # text/plain preferred; an HTML-only body as readable text
    attachments: list[Attachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    # Which part was read when it is not the mail's own text (a forward: ``forwarded``), in
    # Dutch for the receipt; '' when it is.
    read_part: str = ""

    def header(self, name: str) -> str:
        """The first value of a header, decoded ('' when absent)."""
        values = self.headers.get(name.lower())
        return values[0] if values else ""

    def header_all(self, name: str) -> list[str]:
        return list(self.headers.get(name.lower(), []))

    @property
    def csv_attachments(self) -> list[Attachment]:
        return [attachment for attachment in self.attachments if attachment.is_csv]

    @property
    def registration_files(self) -> list[Attachment]:
        """The attachments read as registrations: CSV files and Excel workbooks."""
        return [attachment for attachment in self.attachments if attachment.is_registration_file]

    @property
    def unreadable_files(self) -> list[Attachment]:
        """Attachments that may be meant as registrations but that we cannot read (``.xls``,
        ``.ods``, a PDF, Outlook's ``winmail.dat``): the answer names them."""
        return [a for a in self.attachments if not (a.is_registration_file or a.is_incidental)]

    def note(self, defect: str) -> None:
        if defect not in self.defects and len(self.defects) < 100:
            self.defects.append(defect)


def clean_text(text: str) -> str:
    """Valid Unicode without NUL and other C0 controls (tabs and line ends are kept)."""
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates -> '?'
    return _CONTROL.sub("", text)


def _clean_header(value: str) -> str:
    return " ".join(c1_as_windows_1252(clean_text(value)).split())[:MAX_HEADER_VALUE]


# The header objects of the mail being read, by name and raw value (see _OncePerMail).
_parsed_headers: contextvars.ContextVar[dict[tuple[str, str], Any] | None] = (
    contextvars.ContextVar("parsed_headers", default=None)
)


class _OncePerMail(EmailPolicy):
    """The default policy, parsing each header once per mail: walking the body asks a part's
    Content-Type for its type, charset, filename and disposition, and the modern parser parses
    it again each time (the most costly step of reading a plain registration mail)."""

    def header_fetch_parse(self, name: str, value: str) -> Any:
        parsed = _parsed_headers.get()
        if parsed is None or not isinstance(value, str):
            return super().header_fetch_parse(name, value)
        key = (name.lower(), value)
        header = parsed.get(key)
        if header is None:  # a header object is immutable: one serves every lookup
            header = parsed[key] = super().header_fetch_parse(name, value)
        return header


class _HeaderClasses(HeaderRegistry):
    """The standard registry, making each header's class once: the standard one builds a new
    class (``type(...)``) on every header it parses, a sixth of reading a plain mail."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        name = name.lower()
        made = self._made.get(name)
        if made is None:
            made = self._made[name] = super().__getitem__(name)
        return made


_modern_policy = _OncePerMail(header_factory=_HeaderClasses())


def read_mail(raw: bytes) -> ParsedMail:
    mail = ParsedMail()
    # Kept for this mail only: nothing of one mail's headers outlives its reading.
    memo = _parsed_headers.set({})
    try:
        _read(bytes(raw), mail)
    except Exception as exc:  # a last resort: whatever was read so far stands
        mail.note(f"unreadable message ({type(exc).__name__})")
    finally:
        _parsed_headers.reset(memo)
    return mail


def _read(raw: bytes, mail: ParsedMail) -> None:
    prepared = _repair_header_section(raw, mail)
    try:
        message: Message = BytesParser(policy=_modern_policy).parsebytes(prepared)
        policy: Policy = _modern_policy
    except Exception as exc:
        mail.note(f"message not parseable with the default policy ({type(exc).__name__})")
        message = BytesParser(policy=compat32).parsebytes(prepared)
        policy = compat32
    _read_headers(message, mail)
    try:
        _read_body(message, mail)
    except Exception as exc:  # the modern policy choked on a part: walk it the old way
        if policy is compat32:
            raise
        mail.note(f"MIME structure read again with compat32 ({type(exc).__name__})")
        mail.attachments.clear()
        _read_body(BytesParser(policy=compat32).parsebytes(prepared), mail)


def _repair_header_section(raw: bytes, mail: ParsedMail) -> bytes:
    """Undeclared 8-bit header text (RFC 6532 allows UTF-8; old clients send Windows-1252)
    re-encoded as UTF-8, which the parser reads; over-long header lines cut (parse time)."""
    end = _HEADER_END.search(raw)
    split = end.start() if end else len(raw)
    head = raw[:split]
    if head.isascii() and all(len(line) <= MAX_HEADER_LINE for line in head.split(b"\n")):
        return raw
    lines = []
    for line in head.split(b"\n"):
        if len(line) > MAX_HEADER_LINE:
            line = line[:MAX_HEADER_LINE]
            mail.note("header line longer than 8192 bytes; cut")
        if not line.isascii() and not is_utf8(line):
            line = decode_windows_1252(line).encode("utf-8")
            mail.note("8-bit header text that is not UTF-8; read as Windows-1252")
        lines.append(line)
    return b"\n".join(lines) + raw[split:]


def _safely(read: Callable[[], T], fallback: T, mail: ParsedMail, what: str) -> T:
    try:
        return read()
    except Exception as exc:
        mail.note(f"{what}: {type(exc).__name__}")
        return fallback


# --- headers -----------------------------------------------------------------------------------


def _decode_header_by_hand(value: str) -> str:
    """RFC 2047 encoded-words decoded without the modern parser, for headers it rejects."""
    try:
        chunks = decode_header(value)
    except Exception:
        return value
    decoded = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            decoded.append(chunk)
        elif charset is None:
            decoded.append(chunk.decode("raw-unicode-escape", "replace"))
        else:
            decoded.append(decode_text(chunk, charset)[0])
    return "".join(decoded)


def _header_values(message: Message, mail: ParsedMail) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    policy = message.policy
    for name, raw_value in message.raw_items():
        try:
            if _plain(name, raw_value) or _plain_addresses(name, raw_value):
                text = raw_value  # nothing to decode: the parser's header objects cost more
            elif policy is compat32:  # it leaves encoded-words as they are
                text = _decode_header_by_hand(str(raw_value))
            else:
                text = str(policy.header_fetch_parse(name, raw_value))
            if "\ufffd" in text and "\ufffd" not in raw_value:  # an unknown encoded-word charset
                text = _decode_header_by_hand(str(raw_value))
        except Exception as exc:
            mail.note(f"header {name[:40]!r} decoded by hand ({type(exc).__name__})")
            text = _decode_header_by_hand(str(raw_value))
        headers.setdefault(clean_text(str(name)).strip().lower(), []).append(_clean_header(text))
    return headers


# Headers whose parsed form is not their text (addresses re-rendered, parameters re-quoted).
_STRUCTURED = frozenset(
    {"from", "to", "cc", "bcc", "reply-to", "sender", "resent-from", "resent-to", "resent-cc",
     "resent-bcc", "resent-sender", "content-type", "content-disposition"}
)  # fmt: skip


def _plain(name: str, raw_value: str) -> bool:
    """A header whose decoded text is its raw text: ASCII, no encoded-words, not structured."""
    return (
        isinstance(raw_value, str)
        and raw_value.isascii()
        and "=?" not in raw_value
        and name.lower() not in _STRUCTURED
    )


_ADDRESS_HEADERS = _STRUCTURED - {"content-type", "content-disposition"}
_ONE_ADDRESS = rf"(?:{ATOM}(?: {ATOM})* <{ADDR_SPEC}>|{ADDR_SPEC})"
_SIMPLE_ADDRESSES = re.compile(rf"{_ONE_ADDRESS}(?:, {_ONE_ADDRESS})*")


def _plain_addresses(name: str, raw_value: str) -> bool:
    """An address header the parser would give back as it is: ``Name <local@domain>`` or
    ``local@domain``, comma-separated, in plain ASCII words (nothing to quote, decode or fold).
    Most senders write From and To so; a test holds this to the parser's own rendering."""
    return (
        isinstance(raw_value, str)
        and name.lower() in _ADDRESS_HEADERS
        and "=?" not in raw_value  # an encoded-word is atext too
        and _SIMPLE_ADDRESSES.fullmatch(raw_value) is not None
    )


def _message_ids(value: str) -> list[str]:
    found = _MSGID.findall(value)
    if not found and _BARE_MSGID.match(value.strip()):  # 'id@host' without the angle brackets
        found = [f"<{value.strip()}>"]
    return found


def _from_address(mail: ParsedMail) -> str | None:
    values = mail.header_all("from")
    if len(values) != 1:
        if values:
            mail.note("more than one From header")
        return None
    try:
        header = _modern_policy.header_fetch_parse("from", values[0])  # parsed once per mail
        found = {
            address.addr_spec.lower()
            for address in header.addresses
            if address.username and address.domain
        }
    except Exception as exc:
        mail.note(f"From not parseable ({type(exc).__name__})")
        return None
    if len(found) != 1:  # none, or several: which one sent it is not ours to guess
        if len(found) > 1:
            mail.note("more than one address in From")
        return None
    address = found.pop()
    return address if " " not in address and len(address) <= 320 else None


def _read_headers(message: Message, mail: ParsedMail) -> None:
    mail.headers = _safely(lambda: _header_values(message, mail), {}, mail, "headers")
    ids = _message_ids(mail.header("message-id"))
    mail.message_id = ids[0] if ids else None
    mail.subject = mail.header("subject")[:1000]
    mail.from_address = _from_address(mail)
    replied = _message_ids(mail.header("in-reply-to"))
    mail.in_reply_to = replied[0] if replied else None
    mail.references = _message_ids(" ".join(mail.header_all("references")))[:100]
    mail.auto_submitted = mail.header("auto-submitted").split(";")[0].strip().lower()
    _note_defects(message, mail)


def _note_defects(message: Message, mail: ParsedMail) -> None:
    for defect in getattr(message, "defects", []):
        mail.note(_describe(defect))


def _describe(defect: object) -> str:
    """The email package's defect as a sentence: its message, or its class's docstring."""
    if isinstance(defect, email_errors.MessageDefect) and defect.args and defect.args[0]:
        return clean_text(str(defect.args[0]))[:200]
    doc = (type(defect).__doc__ or type(defect).__name__).strip().split("\n")[0]
    return f"{type(defect).__name__}: {doc}"[:200]


# --- body --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Part:
    message: Message
    content_type: str
    filename: str
    disposition: str


_RAW_TYPE = re.compile(r"^\s*([\w.+-]+/[\w.+-]+)")
_VALID_TYPE = re.compile(r"^[\w.+-]+/[\w.+-]+$")
_RAW_PARAMETER = r"""(?:^|;)\s*{name}\*?(?:\*\d+\*?)?\s*=\s*"?(?:[\w-]*'[\w-]*')?([^";]*)"""


def _raw_header(part: Message, name: str) -> str:
    for key, value in part.raw_items():
        if key.lower() == name:
            return clean_text(str(value))
    return ""


def _raw_parameter(part: Message, header: str, name: str) -> str:
    found = re.search(_RAW_PARAMETER.format(name=name), _raw_header(part, header), re.I)
    return found.group(1).strip() if found else ""


def _raw_content_type(part: Message) -> str:
    """The type when the parser cannot read the header: its first word, else text/plain
    (RFC 2045 §5.2: the default for a Content-Type that cannot be understood)."""
    found = _RAW_TYPE.match(_raw_header(part, "content-type"))
    return found.group(1).lower() if found else "text/plain"


def _part(part: Message, mail: ParsedMail) -> _Part:
    content_type = _safely(part.get_content_type, None, mail, "Content-Type")
    filename = _safely(part.get_filename, None, mail, "filename")
    disposition = _safely(part.get_content_disposition, None, mail, "Content-Disposition")
    if content_type is None or not _VALID_TYPE.match(content_type):
        content_type = _raw_content_type(part)
    return _Part(
        part,
        content_type,
        _clean_header(str(filename if filename is not None else _raw_filename(part))),
        disposition or _raw_header(part, "content-disposition").split(";")[0].strip().lower(),
    )


def _raw_filename(part: Message) -> str:
    return _raw_parameter(part, "content-disposition", "filename") or _raw_parameter(
        part, "content-type", "name"
    )


def _leaves(message: Message, mail: ParsedMail, depth: int = 0) -> Iterator[_Part]:
    """The leaf parts in order; an attached mail (message/rfc822) is one leaf, not its text."""
    part = _part(message, mail)
    if depth:
        _note_defects(message, mail)
    payload = message.get_payload()
    if depth >= MAX_DEPTH:
        mail.note(f"multipart nested deeper than {MAX_DEPTH} levels; the rest is skipped")
        return
    if part.content_type.startswith("multipart/") and isinstance(payload, str):
        yield from _broken_multipart(payload, mail, depth)
    elif part.content_type.startswith("message/") or not isinstance(payload, list):
        yield part
    else:
        for child in payload:
            if isinstance(child, Message):
                yield from _leaves(child, mail, depth + 1)


_DELIMITER = re.compile(r"^--([^\s]{1,70})[ \t\r]*$", re.MULTILINE)


def _broken_multipart(payload: str, mail: ParsedMail, depth: int) -> Iterator[_Part]:
    """A multipart whose boundary is missing or wrong: the delimiter its body does use, if any
    (RFC 2046 §5.1.1: a line '--boundary'), else the whole body as plain text."""
    data = payload.encode("utf-8", "surrogateescape")
    found = _DELIMITER.search(payload)
    if found is not None:
        boundary = found.group(1).removesuffix("--")
        mail.note(f"multipart boundary missing or wrong; read with {boundary[:70]!r} from the body")
        head = f'Content-Type: multipart/mixed; boundary="{boundary}"\n\n'.encode()
        repaired = BytesParser(policy=compat32).parsebytes(head + data)
        if isinstance(repaired.get_payload(), list):
            yield from _leaves(repaired, mail, depth + 1)
            return
    mail.note("multipart without readable parts; its body read as text")
    yield _Part(BytesParser(policy=compat32).parsebytes(b"\n" + data), "text/plain", "", "")


def _payload(part: _Part, mail: ParsedMail) -> bytes:
    message = part.message
    if part.content_type.startswith("message/"):
        inner = message.get_payload()
        first = inner[0] if isinstance(inner, list) and inner else None
        if isinstance(first, Message):
            return _safely(first.as_bytes, b"", mail, "attached message")
    data = _safely(lambda: message.get_payload(decode=True), None, mail, "payload")
    if any(isinstance(d, email_errors.InvalidBase64LengthDefect) for d in message.defects):
        return _cut_short_base64(message.get_payload())  # the email package gave up on it
    if isinstance(data, bytes):
        return data
    raw = message.get_payload()
    return raw.encode("ascii", "surrogateescape") if isinstance(raw, str) else b""


def _cut_short_base64(payload: object) -> bytes:
    """What a truncated base64 body still holds: every complete group of 6-bit characters."""
    text = re.sub(r"[^A-Za-z0-9+/]", "", payload if isinstance(payload, str) else "")
    text = text[: len(text) - 1] if len(text) % 4 == 1 else text + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text)
    except ValueError:
        return b""


def _charset(part: _Part, mail: ParsedMail) -> str | None:
    charset = _safely(part.message.get_content_charset, None, mail, "charset")
    if charset is None:
        charset = _raw_parameter(part.message, "content-type", "charset") or None
    return str(charset) if charset else None


def _unflowed(part: _Part, text: str, mail: ParsedMail) -> str:
    """RFC 3676: ``format=flowed`` text with its soft line breaks undone."""
    flowed = _raw_parameter(part.message, "content-type", "format").strip().lower()
    if flowed != "flowed":
        return text
    delsp = _raw_parameter(part.message, "content-type", "delsp").strip().lower() == "yes"
    return _safely(lambda: unflow(text, delsp=delsp), text, mail, "format=flowed")


def _read_body(message: Message, mail: ParsedMail) -> None:
    mail.content_type = _part(message, mail).content_type
    plain: list[str] = []
    htmls: list[str] = []
    for part in _leaves(message, mail):
        is_body = (
            part.content_type in ("text/plain", "text/html")
            and not part.filename
            and part.disposition != "attachment"
        )
        if not is_body:
            if part.filename or part.content_type.startswith(("text/", "application/", "message/")):
                mail.attachments.append(
                    Attachment(part.filename, part.content_type, _payload(part, mail))
                )
                _note_defects(part.message, mail)
            continue
        payload = _payload(part, mail)
        _note_defects(part.message, mail)  # decoding the payload may have found some
        text, note = decode_text(payload, _charset(part, mail))
        if note:
            mail.note(note)
        if part.content_type == "text/plain":
            plain.append(_unflowed(part, text, mail))
        else:
            htmls.append(html_to_text(text))
    # text/plain preferred; an empty one (some clients send it beside the HTML) does not count.
    body = "\n".join(plain) if any(p.strip() for p in plain) else "\n".join(htmls)
    mail.text = clean_text(body.replace("\r\n", "\n").replace("\r", "\n"))
