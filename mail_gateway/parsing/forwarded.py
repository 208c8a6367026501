"""A registration or signal forwarded by a colleague: read from the forwarded part.

A secretary forwards what a professional wrote; a team lead forwards a client system's mail
that went to the wrong address. The mail's own text is then a note ("Graag verwerken") above
the forwarded message, and the fields are below its header block. The forms we read (Dutch
and English), found within the first :data:`SCAN_LINES` lines:

* Gmail: "---------- Doorgestuurd bericht ---------" / "---------- Forwarded message ---------",
  then "Van:/From:", "Date:", "Subject:", "To:";
* Outlook (desktop and web): a subject "Doorst:", "FW:" or "Fwd:", then a line of underscores
  or "-----Oorspronkelijk bericht-----" / "-----Original Message-----" (or nothing), then
  "Van:/Verzonden:/Aan:/Onderwerp:" ("From:/Sent:/To:/Subject:");
* Apple Mail: "Begin doorgestuurd bericht:" / "Begin forwarded message:"; Thunderbird:
  "-------- Doorgestuurd bericht --------" with its header table;
* any client: the message attached whole (``message/rfc822``, Outlook's "Doorsturen als
  bijlage"), whose own text and attachments are read.

Who sent it stays who it came from: the forwarding person (the envelope and ``From`` of the mail
that arrived), whose right to send is decided as for any mail, unchanged; the forwarded
header's "Van:" is only named in the receipt. The forwarder's own text wins when it holds
fields itself. A forward inside a forward is followed (up to :data:`MAX_DEPTH` levels).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parseaddr

from core.free_text import quote
from mail_gateway.parsing.blocks import read_blocks
from mail_gateway.parsing.mime import Attachment, ParsedMail, read_mail

SCAN_LINES = 200  # the forwarded header is near the top: below a note, never below a novel
MAX_DEPTH = 3
MAX_HEADER_LINES = 20

_FORWARD_SUBJECT = re.compile(r"^\s*(fwd?|fw|doorst|doorgestuurd)\s*:", re.IGNORECASE)
# A separator that says "forwarded" itself; each may have a header block below it.
_FORWARD_SEPARATORS = [
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        r"^\s*-{2,}\s*(doorgestuurd bericht|forwarded message)\s*-{2,}\s*$",
        r"^\s*(begin doorgestuurd bericht|begin forwarded message)\s*:\s*$",
    )
]
# Separators Outlook writes above a forward and above quoted history alike: a forward only when
# the subject says so.
_OUTLOOK_SEPARATORS = [
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        r"^\s*-{2,}\s*(oorspronkelijk bericht|original message)\s*-{2,}\s*$",
        r"^\s*_{10,}\s*$",
    )
]
_HEADER_FIELD = re.compile(
    r"^\s*\*?(van|from|verzonden|sent|datum|date|aan|to|cc|bcc|onderwerp|subject"
    r"|beantwoorden aan|reply-to)\s*:\s*\*?\s*(.*)$",
    re.IGNORECASE,
)
_FROM_LABELS = frozenset({"van", "from"})
_KINDS = {"inline": "het doorgestuurde bericht", "attached": "het bijgevoegde bericht"}


@dataclass(frozen=True)
class _Forward:
    text: str
    sender: str  # the forwarded header's "Van:" as written, '' when it has none
    attachments: Sequence[Attachment] = ()
    not_read: int = 0  # further attached mails, not read


def read_forwarded(mail: ParsedMail) -> ParsedMail:
    """``mail`` itself, or — when it forwards a message and its own text holds no fields — a
    copy whose text (and attachments) are the forwarded message's, with ``read_part`` saying
    in Dutch which part was read. Headers, subject and sender stay the forwarding mail's."""
    current, explained, not_read = mail, [], 0
    for _ in range(MAX_DEPTH):
        found = _inline_forward(current) or _attached_forward(current)
        if found is None:
            break
        kind, forward = found
        sender = _shown_sender(forward.sender)
        explained.append(f"{_KINDS[kind]}{f' van {sender}' if sender else ''}")
        not_read += forward.not_read
        current = dataclasses.replace(
            current,
            text=forward.text,
            attachments=[*_own_files(current), *forward.attachments],
            read_part="",
        )
    if current is mail:
        return mail
    return dataclasses.replace(current, read_part=_explanation(explained, not_read))


def _explanation(parts: list[str], not_read: int) -> str:
    read = " in ".join(reversed(parts))
    if not_read == 1:
        note = " Er was nog 1 bericht bijgevoegd; dat is niet gelezen: stuur het apart door."
    elif not_read:
        note = (
            f" Er waren nog {not_read} berichten bijgevoegd; die zijn niet gelezen: stuur elk "
            "apart door."
        )
    else:
        note = ""
    return (
        f"Wij hebben {read} gelezen, niet de tekst erboven; regelnummers tellen vanaf het begin "
        "van dat bericht. Als afzender geldt wie het doorstuurde: u." + note
    )


def _own_files(mail: ParsedMail) -> list[Attachment]:
    """The forwarding mail's attachments that stay with what is read: not the attached mail
    that is read itself."""
    return [a for a in mail.attachments if not a.content_type.startswith("message/")]


def _has_fields(lines: Sequence[str]) -> bool:
    return bool(read_blocks("\n".join(lines)).blocks)


def _inline_forward(mail: ParsedMail) -> tuple[str, _Forward] | None:
    lines = mail.text.split("\n")
    says_forward = bool(_FORWARD_SUBJECT.match(mail.subject))
    for index, line in enumerate(lines[:SCAN_LINES]):
        explicit = any(pattern.match(line) for pattern in _FORWARD_SEPARATORS)
        outlook = says_forward and any(pattern.match(line) for pattern in _OUTLOOK_SEPARATORS)
        header_here = says_forward and _is_from_line(line, lines[index + 1 : index + 4])
        if not (explicit or outlook or header_here):
            continue
        if _has_fields(lines[:index]):
            return None  # the forwarder wrote fields of their own: those are the message
        start = index if header_here else index + 1
        header, body_start = _header_block(lines, start)
        if not (explicit or header):
            continue
        return "inline", _Forward(_unquoted(lines[body_start:]), header.get("from", ""))
    return None


def _is_from_line(line: str, following: Sequence[str]) -> bool:
    field = _HEADER_FIELD.match(line)
    if field is None or field.group(1).lower() not in _FROM_LABELS:
        return False
    return any(_HEADER_FIELD.match(next_line) for next_line in following)


def _header_block(lines: Sequence[str], start: int) -> tuple[dict[str, str], int]:
    """The forwarded header's fields ("from" among them when it has one) and the index of
    the first line of the forwarded body."""
    index = start
    while index < len(lines) and not lines[index].strip():
        index += 1
    fields: dict[str, str] = {}
    first = index
    while index < len(lines) and index - first < MAX_HEADER_LINES:
        line = lines[index]
        field = _HEADER_FIELD.match(line)
        if field is not None:
            label = field.group(1).lower()
            fields.setdefault("from" if label in _FROM_LABELS else label, field.group(2).strip())
        elif not line.strip() or not fields or _has_fields([line]):
            break  # a blank line ends the header; so does a registration field right below it
        index += 1  # a header field, or a long one wrapped onto the next line
    return fields, index


def _unquoted(lines: Sequence[str]) -> str:
    """The forwarded body; quoted once more (``> ``) as a whole by some clients, then not."""
    written = [line for line in lines if line.strip()]
    if written and all(line.lstrip().startswith(">") for line in written):
        lines = [re.sub(r"^\s*> ?", "", line) for line in lines]
    return _from_first_line("\n".join(lines))


def _from_first_line(text: str) -> str:
    """Without the blank lines above the first written line: line 1 of what is read is the
    first line a reader sees in the forwarded message."""
    lines = text.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), 0)
    return "\n".join(lines[first:])


def _attached_forward(mail: ParsedMail) -> tuple[str, _Forward] | None:
    attached = [a for a in mail.attachments if a.content_type == "message/rfc822"]
    if not attached or _has_fields(mail.text.split("\n")) or mail.registration_files:
        return None
    inner = read_mail(attached[0].payload)
    text = _from_first_line(inner.text)
    forward = _Forward(text, inner.header("from"), inner.attachments, len(attached) - 1)
    return "attached", forward


def _shown_sender(written: str) -> str:
    """The forwarded message's sender as the receipt names it: the address when there is one,
    else the name, never something that could be a youth's BSN or date of birth."""
    name, address = parseaddr(written)
    shown = address if "@" in address else (name or written)
    return quote(shown, limit=80).strip("'") if shown.strip() else ""
