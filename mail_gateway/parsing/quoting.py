"""Where the sender's own text ends: the header a mail client writes above quoted history, ``>``
quoting, a ``-- `` signature, or a "sent from my phone" line.

The headers, in Dutch and English, of the clients our users have:

* Gmail: "Op ma 23 nov. 2026 om 10:12 schreef Naam <a@b>:" / "On Mon, Nov 23, 2026 at 10:12 AM
  Name <a@b> wrote:", often wrapped over two lines;
* Thunderbird: "Op 23-11-2026 om 10:12 schreef Naam:" / "On 11/23/26 10:12, Name wrote:";
* Apple Mail: "Op 23 nov 2026, om 10:12 heeft Naam <a@b> het volgende geschreven:" /
  "On 23 Nov 2026, at 10:12, Name <a@b> wrote:";
* Outlook: "-----Oorspronkelijk bericht-----" / "-----Original Message-----", a line of
  underscores, or the header block itself: "Van: ... / Verzonden: ... / Aan: ... /
  Onderwerp: ..." ("From: / Sent: / To: / Subject:"), also bold ("*Van:*") as Gmail renders it;
* forwards: "---------- Doorgestuurd bericht ---------", "Begin doorgestuurd bericht:".

Used by the reply reader (the answer is above this point) and by the key–value block reader
(a registration sent as a reply must not read the quoted notification as fields).

These patterns are the first pass; ``quotequail`` (maintained, knows the Dutch headers too, and
German, French, Spanish, Swedish, Portuguese and Russian ones) is the fallback for what they do
not know. Of ten Dutch reply samples, ``mail-parser-reply`` (used before) cut two cleanly and
took seconds on long lines; ``quotequail`` cut all ten. It is given a bounded prefix only
(:data:`LIBRARY_LINES` lines of at most :data:`LIBRARY_LINE_LENGTH` characters): quoted history
starts near the top, and no pattern library should see an attacker's megabyte line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import quotequail
from quotequail import _internal as quotequail_internal
from quotequail import _patterns as quotequail_patterns

MAX_LINE = 1000  # longer lines are never a quote header; the patterns look at no more
LIBRARY_LINES = 100
LIBRARY_LINE_LENGTH = 500

_HEADERS = [
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        # Gmail, Thunderbird, Apple Mail (en): "Op|On <date and name> schreef|wrote ...:"
        r"^\s*(op|on)\s.{0,160}\b(schreef|wrote)\b.{0,240}:\s*$",
        # Apple Mail (nl): "Op <date>, om <time> heeft <name> het volgende geschreven:"
        r"^\s*op\s.{0,240}\bhet volgende geschreven\s*:\s*$",
        r"^\s*-{2,}\s*(oorspronkelijk bericht|original message|doorgestuurd bericht"
        r"|forwarded message)\s*-{2,}\s*$",
        r"^\s*(begin doorgestuurd bericht|begin forwarded message)\s*:\s*$",
        r"^\s*_{10,}\s*$",  # Outlook's rule above the quoted header block
    )
]
_OUTLOOK_FROM = re.compile(r"^\s*\*?(van|from)\s*:\s*\*?\s*\S", re.IGNORECASE)
_OUTLOOK_FIELD = re.compile(
    r"^\s*\*?(verzonden|sent|datum|date|aan|to|onderwerp|subject|cc)\s*:", re.IGNORECASE
)
_PHONE_SIGNATURE = re.compile(
    r"^\s*((verstuurd|verzonden|gestuurd)\s+(vanaf|van|met|via|from)\s+\S"
    r"|sent\s+(from|with|via)\s+\S|get outlook for\b|download outlook voor\b)",
    re.IGNORECASE,
)
_SIGNATURE = re.compile(r"^--\s*$")  # RFC 3676 §4.3: "-- " (some clients drop the space)


def _clean(line: str) -> str:
    return line[:MAX_LINE].replace("\xa0", " ").replace("\u200b", "").replace("\ufeff", "")


def is_quote_header(line: str, next_lines: Sequence[str] = ()) -> bool:
    """Does ``line`` start quoted history? Outlook's "Van:" counts only when one of the next
    three lines is another of its header fields, so a body line "Van: ..." is not cut."""
    text = _clean(line)
    if any(pattern.match(text) for pattern in _HEADERS):
        return True
    return bool(_OUTLOOK_FROM.match(text)) and any(
        _OUTLOOK_FIELD.match(_clean(following)) for following in next_lines[:3]
    )


def is_signature_start(line: str) -> bool:
    text = _clean(line)
    if _SIGNATURE.match(text.rstrip()):
        return True
    return len(text) < 80 and bool(_PHONE_SIGNATURE.match(text))


def is_quoted(line: str) -> bool:
    return _clean(line).lstrip().startswith(">")


def own_text_end(lines: Sequence[str]) -> int:
    """The index of the first line that is no longer the sender's own text (``len(lines)``
    when all of it is): our own patterns first, then ``quotequail`` on what they left."""
    end = _own_patterns_end(lines)
    return min(end, _library_end(lines[:end]))


# Every pattern of quotequail's in one: it matches a line exactly when one of them does.
# quotequail tries its 43 patterns one by one in Python, each on the line joined afresh with the
# next (some 170 µs a line); asking this first, once a line, leaves the library's own pass for
# the mails that have a quote header at all. tests/mail_gateway/test_parsing_reply.py holds it
# to the library's answer.
_ANY_LIBRARY_PATTERN = re.compile(
    "|".join(
        f"(?:{pattern.pattern})"
        for patterns in quotequail_internal.COMPILED_PATTERN_MAP.values()
        for pattern in patterns
    )
)


def library_may_find_quote(lines: Sequence[str]) -> bool:
    """Whether ``quotequail.quote`` can find a quote header in ``lines``: the lines it would
    try (each alone and joined with the next ones, a leading ``>`` dropped) against all its
    patterns at once."""
    for index in range(len(lines)):
        for wrapped in range(quotequail_patterns.MAX_WRAP_LINES):
            line = quotequail_internal.join_wrapped_lines(list(lines[index : index + 1 + wrapped]))
            if line.startswith(">"):
                line = line[1:].strip()
            if not line:
                break
            if _ANY_LIBRARY_PATTERN.match(line.strip()):
                return True
    return False


def _library_end(lines: Sequence[str]) -> int:
    """Where ``quotequail`` sees quoted history start within the first :data:`LIBRARY_LINES`
    lines (``len(lines)`` when it sees none there, or fails on odd input)."""
    probe = [_clean(line)[:LIBRARY_LINE_LENGTH] for line in lines[:LIBRARY_LINES]]
    if not probe or not library_may_find_quote(probe):
        return len(lines)
    try:
        # limit beyond the probe: quotequail would otherwise call everything after it quoted
        parts = quotequail.quote("\n".join(probe), limit=len(probe) + 1, quote_intro_line=True)
    except Exception:  # the library on odd input: our own cut stands
        return len(lines)
    if len(parts) < 2:
        return len(lines)
    own = parts[0][1]
    return len(own.split("\n")) if own else 0


def _own_patterns_end(lines: Sequence[str]) -> int:
    for index, line in enumerate(lines):
        following = lines[index + 1 : index + 4]
        if is_quoted(line) or is_signature_start(line) or is_quote_header(line, following):
            return index
        # A header wrapped over two lines ("... schreef Naam <" / "a@b>:"); the second line on
        # its own would have matched at the next index.
        if (
            following
            and len(line) < MAX_LINE
            and not is_quote_header(following[0], lines[index + 2 : index + 5])
            and is_quote_header(_clean(line).rstrip() + " " + _clean(following[0]).lstrip())
        ):
            return index
    return len(lines)
