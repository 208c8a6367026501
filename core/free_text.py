"""Free text a user gives (a kenmerk, the reason of a WEIGER or a postponed informing, a name),
and what of anything a user typed a refusal may repeat.

Two rules, each with its home here, below every command module (``core.registration``,
``core.signals``, ``core.coordination`` check their free-text fields with
:func:`check_free_text`; ``core.fields`` builds its quoting of fields on :func:`quote`):

* **No invisible or control characters.** Bidirectional controls (Unicode's ``Bidi_Control``
  property: U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069) reorder what a reader sees
  without changing what is stored — a kenmerk ``GGD-‮2400`` reads as another one in the next
  institution's mail (the "Trojan Source" trick, CVE-2021-42574). C0/C1 controls (other than tab
  and, in a multi-line field, the line break) are never meant and corrupt receipts and logs.
  Both are refused, naming the field and the code point, never guessed away.
* **No identity in a refusal.** A refusal goes back by mail or Slack and into logs; what a user
  typed is repeated only when it cannot be a youth's BSN or birth date. :data:`OMITTED` stands
  in for anything that could.
"""

from __future__ import annotations

import re
import unicodedata

from core.errors import InvalidInput

OMITTED = "(waarde weggelaten)"
MAX_QUOTED = 40

# Unicode Bidi_Control (UAX #9, table 4): the explicit embeddings, overrides and isolates, and the
# implicit marks.
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_ALLOWED_CONTROLS = frozenset("\t")
_ALLOWED_MULTILINE = frozenset("\t\n\r")

# A BSN as people write it: 9 digits (or 8, the legacy form), or three groups of three.
_BSN_LIKE = re.compile(r"(?<!\d)(?:\d{8,9}|\d{3}[ .\-]\d{3}[ .\-]\d{3})(?!\d)")
# A date as people write it: 1-5-2016, 01.05.2016, 2016/05/01, 1 5 2016.
_DATE_LIKE = re.compile(
    r"(?<!\d)(?:\d{1,2}[-/. ]\d{1,2}[-/. ]\d{2,4}|\d{4}[-/. ]\d{1,2}[-/. ]\d{1,2})(?!\d)"
)


def forbidden_character(text: str, *, multiline: bool = False) -> str | None:
    """The first bidirectional or control character in ``text``, if any."""
    allowed = _ALLOWED_MULTILINE if multiline else _ALLOWED_CONTROLS
    for char in text:
        if char in BIDI_CONTROLS:
            return char
        if char not in allowed and unicodedata.category(char) == "Cc":
            return char
    return None


def check_free_text(value: str | None, field: str, *, multiline: bool = False) -> None:
    """Refuse ``value`` when it holds a bidirectional or control character (see the module)."""
    if not value:
        return
    char = forbidden_character(value, multiline=multiline)
    if char is not None:
        raise InvalidInput(f"bevat onzichtbare of stuurtekens (U+{ord(char):04X})", field=field)


def could_identify(text: str, *, dates: bool = False) -> bool:
    """Whether ``text`` holds something that may be a youth's BSN or (unless ``dates``: a date
    field, whose value is a date by its nature) a birth date."""
    if _BSN_LIKE.search(text):
        return True
    return not dates and _DATE_LIKE.search(text) is not None


def quote(text: str, *, dates: bool = False, limit: int = MAX_QUOTED) -> str:
    """``'text'`` (shortened to ``limit``) for a refusal, or :data:`OMITTED` when it could
    identify a youth (:func:`could_identify`) or holds characters that would garble the answer."""
    shown = " ".join(text.split())
    if could_identify(shown, dates=dates) or forbidden_character(shown) is not None:
        return OMITTED
    if len(shown) > limit:
        shown = shown[: limit - 3] + "..."
    return f"'{shown}'"
