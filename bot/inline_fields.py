"""Signal fields on one line: ``/signaal code=laag gemeente=Groningen``, and a direct message
that looks like a signal (whose identity fields :mod:`bot.typed_signal` then leaves out).

Labels are those of CONTRACT §4 (``core.fields.LABELS``), case-insensitive, with ``=`` or ``:``;
two-word labels may be written with a space (``reden uitstel=...``, ``bsn ouder=...``). A value
runs until the next label, so it may contain spaces; surrounding quotes are dropped. ``word=``
always starts a field (an unknown one is reported, so a typo is never read as part of the
previous value); ``word:`` only when the word is a known label, so a colon inside a value
(``reden uitstel: dreiging: vader``) stays text.

The fields themselves are checked by ``core.fields`` (shared with the mail gateway).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from core.fields import LABELS, canonical_label, quote_label

_LABEL_AT = re.compile(r"(?<![^\s,;])([^\W\d_][\w\-]*)\s*([=:])")
# Read backwards from where a label begins: white space, then the word before it.
_SPACE_THEN_WORD_REVERSED = re.compile(r"\s+([\w\-]*)")
_FROM_FIRST_LETTER = re.compile(r"[^\W\d_][\w\-]*")
_QUOTES = (('"', '"'), ("'", "'"), ("“", "”"), ("‘", "’"), ("„", "”"))


@dataclass
class InlineFields:
    pairs: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # Dutch, one per line the user can fix
    unknown_labels: list[str] = field(default_factory=list)  # ``word=`` that is no field of ours


@dataclass(frozen=True)
class _Start:
    at: int  # where the label begins
    value_at: int  # just after the separator
    label: str
    known: bool


def _word_before(text: str, end: int) -> tuple[int, str] | None:
    """The word that white space separates from ``end`` (where it starts, and the word): the
    first word of a two-word label. Read backwards, in time linear in that word and space; a
    search forwards for "a word, then space, then the end" tried every position before it and
    took seconds on a long value."""
    window = 64
    while True:  # the text just before ``end``, reversed; more of it while the match fills it
        head = text[max(0, end - window) : end][::-1]
        found = _SPACE_THEN_WORD_REVERSED.match(head)
        if found is None or found.end() < len(head) or window >= end:
            break
        window *= 2
    if found is None:
        return None
    word = _FROM_FIRST_LETTER.search(found.group(1)[::-1])
    if word is None:
        return None
    return end - found.end() + word.start(), word.group()


def _starts(text: str) -> list[_Start]:
    starts: list[_Start] = []
    for match in _LABEL_AT.finditer(text):
        word, separator = match.group(1), match.group(2)
        before = _word_before(text, match.start(1))
        if before is not None and canonical_label(f"{before[1]} {word}") in LABELS:
            at = before[0]
            if starts and at < starts[-1].value_at:
                continue
            starts.append(_Start(at, match.end(), f"{before[1]} {word}", True))
        elif canonical_label(word) in LABELS:
            starts.append(_Start(match.start(1), match.end(), word, True))
        elif separator == "=":
            starts.append(_Start(match.start(1), match.end(), word, False))
    return starts


def _unquote(value: str) -> str:
    value = value.strip().rstrip(",;").strip()
    for opening, closing in _QUOTES:
        if len(value) >= 2 and value[0] == opening and value[-1] == closing:
            return value[1:-1].strip()
    return value


def split_fields(text: str) -> InlineFields:
    """(label, value) pairs in the order written, and what could not be read."""
    result = InlineFields()
    starts = _starts(text)
    leading = text[: starts[0].at] if starts else text
    if leading.strip():
        # Never repeated: text that is no field may be anything, a BSN or a name included.
        result.problems.append(
            "de tekst vóór het eerste veld is geen veld; schrijf velden als veld=waarde, "
            "bijvoorbeeld code=laag"
        )
    for index, start in enumerate(starts):
        end = starts[index + 1].at if index + 1 < len(starts) else len(text)
        value = _unquote(text[start.value_at : end])
        if not start.known:
            shown = quote_label(start.label) or "een van de velden"
            result.problems.append(f"{shown} is geen veld dat wij kennen")
            result.unknown_labels.append(start.label)
            continue
        result.pairs.append((start.label, value))
    return result
