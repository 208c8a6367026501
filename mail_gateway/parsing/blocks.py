"""Key–value bodies (CONTRACT §4): one block per youth, blocks separated by a line ``---``,
``Label: waarde`` or ``Label = waarde`` per line, labels case-insensitive, blank lines ignored.

What the sender wrote ends at a signature (``-- ``) or quoted history (``>`` lines, "Op ...
schreef ...:", Outlook's "Van:/Verzonden:"), so a registration sent as a reply, or forwarded,
reads cleanly. Within a part between separators, the block runs from its first to its last
known field:

* a line inside the block that is not a known field refuses the block, naming the line — a
  typo ("Geboortedatm: ...") or a missing colon must never be passed over silently;
* so does a field-like line (``Iets: waarde``, or a known label without ``:``) right above or
  below the block, without a blank line between: a misspelt first or last field;
* any other line outside the blocks (a greeting, "Met vriendelijke groet,", a signature without
  ``-- ``) is no field: it is listed in ``ignored`` with its line number, and refuses nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.errors import DomainError
from core.fields import (
    LABELS,
    canonical_label,
    collect_fields,
    parse_registration,
    parse_signal,
    quote_label,
)
from mail_gateway.parsing.quoting import own_text_end

log = logging.getLogger(__name__)

MAX_LINE = 1000  # a line longer than this is no field of ours
_FIELD = re.compile(r"^\s*([^:=\s][^:=]{0,39}?)\s*[:=](.*)$")
_SEPARATOR = re.compile(r"^\s*-{3,}\s*$")
KNOWN_LABELS = frozenset(LABELS)
_FIELD_LIKE = ("unknown-field", "label-without-colon")
_INVISIBLE = str.maketrans({"\xa0": " ", "\u200b": None, "\ufeff": None, "\t": " "})


@dataclass(frozen=True)
class Refusal:
    field: str  # the field as users write it ('BSN'), or '' for the block as a whole
    reason: str  # Dutch, safe to show
    line: int | None = None  # the line the refusal is about, when it is one line


@dataclass(frozen=True)
class BlockResult:
    line: int  # the block's first line, 1-based in the body
    command: Any = None  # RegisterYouth | DeregisterYouth | PlaceSignal
    refusal: Refusal | None = None
    own_reference: str = ""  # the block's Kenmerk as written, for the receipt to name it by


@dataclass(frozen=True)
class IgnoredLine:
    line: int
    text: str


@dataclass
class Block:
    line: int
    pairs: list[tuple[str, str]] = field(default_factory=list)
    field_lines: dict[str, int] = field(default_factory=dict)  # canonical label -> line
    problem: Refusal | None = None


@dataclass
class BodyBlocks:
    blocks: list[Block]
    ignored: list[IgnoredLine]


@dataclass(frozen=True)
class _Line:
    number: int
    text: str
    kind: str  # field | unknown-field | label-without-colon | text | blank
    label: str = ""
    value: str = ""


def _classify(number: int, raw: str) -> _Line:
    text = raw.translate(_INVISIBLE).rstrip()
    if not text.strip():
        return _Line(number, text, "blank")
    if len(text) > MAX_LINE:
        return _Line(number, text[:MAX_LINE], "text")
    match = _FIELD.match(text)
    if match is not None:
        label, value = match.group(1).strip(), match.group(2).strip()
        if canonical_label(label) in KNOWN_LABELS:
            return _Line(number, text, "field", label, value)
        if value:  # 'Hierbij de aanmelding:' is a sentence, 'Geboortedatm: 1-5-2016' a field
            return _Line(number, text, "unknown-field", label, value)
        return _Line(number, text, "text")
    words = text.split()
    for size in (2, 1):  # 'BSN ouder 123...', 'Geboortedatum 01-05-2016'
        if len(words) > size and canonical_label(" ".join(words[:size])) in KNOWN_LABELS:
            return _Line(number, text, "label-without-colon", " ".join(words[:size]))
    return _Line(number, text, "text")


def _at(line: int, block_line: int, reason: str) -> str:
    """The reason, naming its line when that is not the block's first (which the receipt
    shows already)."""
    return reason if line == block_line else f"regel {line}: {reason}"


def _problem(line: _Line, block_line: int) -> Refusal:
    """The refusal of a block for one of its lines. It names the line and, where safe, the
    label (``core.fields.quote_label``), never the value or the line's text: a line that is no
    field may hold anything, and a BSN or birth date mistyped is still one."""
    if line.kind == "unknown-field":
        label = quote_label(line.label)
        if label is not None:
            reason = f"{label} is geen veld dat wij kennen"
            return Refusal(label.strip("'"), _at(line.number, block_line, reason), line.number)
        reason = "deze regel is geen veld dat wij kennen"
        return Refusal("", f"regel {line.number}: {reason}", line.number)
    if line.kind == "label-without-colon":
        reason = f"mist een ':' of '=' tussen veld en waarde, bijvoorbeeld '{line.label}: ...'"
        return Refusal(line.label, _at(line.number, block_line, reason), line.number)
    reason = (
        "deze regel is geen veld; zet elk veld op een eigen regel als 'Veld: waarde' en "
        "scheid jongeren met een regel '---'"
    )
    return Refusal("", f"regel {line.number}: {reason}", line.number)


def _read_segment(lines: list[_Line], body: BodyBlocks) -> None:
    """One part between separators: at most one block, and the lines around it."""
    fields = [i for i, line in enumerate(lines) if line.kind == "field"]
    if not fields:
        body.ignored.extend(IgnoredLine(x.number, x.text) for x in lines if x.kind != "blank")
        return
    first, last = fields[0], fields[-1]
    # Field-like lines touching the block belong to it (a misspelt first or last field).
    while first > 0 and lines[first - 1].kind in _FIELD_LIKE:
        first -= 1
    while last + 1 < len(lines) and lines[last + 1].kind in _FIELD_LIKE:
        last += 1
    block = Block(lines[first].number)
    for line in lines[first : last + 1]:
        if line.kind == "field":
            block.pairs.append((line.label, line.value))
            block.field_lines.setdefault(canonical_label(line.label), line.number)
        elif line.kind != "blank" and block.problem is None:
            block.problem = _problem(line, block.line)
    body.blocks.append(block)
    outside = lines[:first] + lines[last + 1 :]
    body.ignored.extend(IgnoredLine(x.number, x.text) for x in outside if x.kind != "blank")


def read_blocks(text: str) -> BodyBlocks:
    """The blocks of a body and the lines that were not part of any."""
    raw_lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    own = raw_lines[: own_text_end(raw_lines)]
    body = BodyBlocks([], [])
    segment: list[_Line] = []
    for number, raw in enumerate(own, start=1):
        if _SEPARATOR.match(raw[:MAX_LINE]):
            _read_segment(segment, body)
            segment = []
        else:
            segment.append(_classify(number, raw))
    _read_segment(segment, body)
    return body


def _refusal(block: Block, error: DomainError) -> Refusal:
    name = error.field or ""
    line = block.field_lines.get(canonical_label(name), block.line) if name else block.line
    return Refusal(name, _at(line, block.line, error.message), line)


def _own_reference(block: Block) -> str:
    return next((v for label, v in block.pairs if canonical_label(label) == "kenmerk"), "")


def _parse(text: str, parse: Callable[[dict[str, str]], Any]) -> list[BlockResult]:
    results = []
    for block in read_blocks(text).blocks:
        reference = _own_reference(block)
        if block.problem is not None:
            results.append(BlockResult(block.line, refusal=block.problem, own_reference=reference))
            continue
        try:
            command = parse(collect_fields(block.pairs))
        except DomainError as error:
            refusal = _refusal(block, error)
            results.append(BlockResult(block.line, refusal=refusal, own_reference=reference))
        except Exception:  # a bug in reading one block must not cost the mail its other blocks
            log.exception("block at line %d could not be parsed", block.line)
            reason = "dit blok is niet te lezen; controleer de velden"
            refusal = Refusal("", reason, block.line)
            results.append(BlockResult(block.line, refusal=refusal, own_reference=reference))
        else:
            results.append(BlockResult(block.line, command=command, own_reference=reference))
    return results


def parse_registration_blocks(text: str) -> list[BlockResult]:
    """Each block as a :class:`RegisterYouth` / :class:`DeregisterYouth`, or its refusal."""
    return _parse(text, parse_registration)


def parse_signal_blocks(text: str) -> list[BlockResult]:
    """Each block as a :class:`PlaceSignal`, or its refusal."""
    return _parse(text, parse_signal)
