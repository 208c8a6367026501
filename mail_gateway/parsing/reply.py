"""The answer in a reply mail (CONTRACT §4, Replies): the text the sender wrote above the quoted
notification and the signature, and the keyword on its first line.

Why our own patterns first and a library second: of the quote-stripping libraries we tried on
the replies our users send, ``mail-parser-reply`` (kept up, pure Python) and
``email-reply-parser`` handle the English Gmail, Thunderbird, Apple Mail and Outlook headers but
none of the Dutch ones ("Op ... schreef Naam <a@b>:", "... het volgende geschreven:", Outlook's
"Van:/Verzonden:" block; ``mail-parser-reply`` only knows "Op ... schreef:" with nothing between
"schreef" and the colon), nor "-- " signatures or "Sent from my iPhone" in every position;
``talon`` gets more Dutch forms but misses wrapped Gmail headers, "Oorspronkelijk bericht" and
phone signatures, and pulls in scikit-learn and lxml. So :mod:`quoting` cuts the Dutch and
English formats we know (tested with samples of each client), and ``mail-parser-reply`` then
cuts what it knows beyond them (other languages, disclaimers). The library is only given a
bounded prefix: its patterns take quadratic time on long lines (16 kB: seconds).
"""

from __future__ import annotations

import re

from mailparser_reply import EmailReplyParser

from core.errors import InvalidInput
from core.replies import ReplyAction
from mail_gateway.parsing.quoting import own_text_end

_LIBRARY_LINES = 100
_LIBRARY_LINE_LENGTH = 500
# A closing on a line of its own ends the answer: what follows is name, function, phone.
_CLOSING = re.compile(
    r"^\s*((met\s+)?(vriendelijke|hartelijke|beste|collegiale)\s+groet(en)?|groet(en|jes)?|mvg"
    r"|m\.v\.g\.?|(kind|best|warm)\s+regards|regards|cheers)\s*[,.!]*\s*$",
    re.IGNORECASE,
)


def strip_quoted(text: str) -> str:
    """The reply without quoted history and signature ('' when nothing of the sender's own is
    left)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    own = lines[: own_text_end(lines)]
    while own and not own[0].strip():
        own.pop(0)
    closing = next(
        (i for i, line in enumerate(own) if i and len(line) < 60 and _CLOSING.match(line)), None
    )
    own = own[:closing]
    return "\n".join(own[: _library_end(own)]).rstrip()


def _library_end(lines: list[str]) -> int:
    """How many of ``lines`` ``mail-parser-reply`` keeps (all of them when it keeps nothing,
    fails, or returns something that is not a prefix of what it was given)."""
    probe = [line[:_LIBRARY_LINE_LENGTH] for line in lines[:_LIBRARY_LINES]]
    if not probe:
        return 0
    try:
        kept = EmailReplyParser(languages=["nl", "en"]).parse_reply(text="\n".join(probe))
    except Exception:  # the library on odd input: our own cut stands
        return len(lines)
    kept_lines = (kept or "").rstrip().split("\n")
    count = len(kept_lines)
    if not (kept or "").strip() or count >= len(probe):
        return len(lines)
    if [line.strip() for line in kept_lines] != [line.strip() for line in probe[:count]]:
        return len(lines)
    return count


def extract_reply(text: str) -> str:
    """The first non-empty line the sender wrote ('' when there is none)."""
    return _first_line(strip_quoted(text))


def _first_line(text: str) -> str:
    for line in text.split("\n"):
        if line.strip():
            return line.strip()
    return ""


KEYWORDS_NL = (
    "AKKOORD, WEIGER <reden>, OVERDRAGEN <instelling-id>, CONTACT GELEGD of VERLENG [maanden]"
)
_INVISIBLE = str.maketrans(
    {"\xa0": " ", "\u202f": " ", "\u2007": " ", "\u200b": None, "\u200c": None,
     "\u200d": None, "\u2060": None, "\ufeff": None}
)  # fmt: skip
# Trailing punctuation and the emphasis Gmail's text part gives bold text (*AKKOORD*).
_DECORATION = " \t.!?,;:*_\"'`~"
_WORD = r"(?![\w-])"  # the keyword ends here: 'weigeren' is WEIGER, 'weigerachtig' is not
_ACCEPT = re.compile(r"^(akkoord|accept|accepteer|accepted|geaccepteerd)$")
_CONTACTED = re.compile(r"^(contact\s+gelegd|contacted|contact\s+made)$")
_DECLINE = re.compile(rf"^(weigeren|weiger|declined|decline){_WORD}[\s:=\-–]*(?P<rest>.*)$", re.I)
_HAND_OVER = re.compile(
    rf"^(overdragen\s+aan|overdragen|draag\s+over\s+aan|transfer\s+to|transfer|hand\s+over\s+to"
    rf"|hand\s+over){_WORD}[\s:=\-–]*(?P<rest>.*)$",
    re.I,
)
_EXTEND = re.compile(rf"^(verlengen|verleng|extend){_WORD}[\s:=\-–]*(?P<rest>.*)$", re.I)
_MONTHS = re.compile(r"^(?:met\s+|by\s+)?(\d{1,3})\s*(maanden|maand|mnd|m|months|month)?$")


def parse_reply_command(text: str) -> ReplyAction:
    """The keyword on the first non-empty line of ``text`` (the reply, already stripped of
    quoted history by :func:`strip_quoted`). Case-insensitive; trailing punctuation, emphasis
    and non-breaking spaces are tolerated. Refusals are :class:`InvalidInput` with a Dutch
    message: field ``antwoord`` (no or unknown keyword), ``reden`` (WEIGER without a reason),
    ``instelling`` (OVERDRAGEN without an institution) or ``maanden`` (VERLENG not 1–24)."""
    line = " ".join(_first_line(text.translate(_INVISIBLE)).split())
    bare = line.strip(_DECORATION)
    if not bare:
        raise InvalidInput(
            f"wij vonden geen antwoord boven de geciteerde tekst; zet {KEYWORDS_NL} op de "
            "eerste regel",
            field="antwoord",
        )
    lowered = bare.casefold()
    if _ACCEPT.match(lowered):
        return ReplyAction("accept")
    if _CONTACTED.match(lowered):
        return ReplyAction("contacted")
    if match := _DECLINE.match(bare):
        reason = match.group("rest").strip(_DECORATION)
        if not reason:
            raise InvalidInput(
                "geef na WEIGER de reden op, bijvoorbeeld 'WEIGER geen capaciteit'", field="reden"
            )
        return ReplyAction("decline", reason)
    if match := _HAND_OVER.match(bare):
        words = match.group("rest").split()
        institution = words[0].strip(_DECORATION).lower() if words else ""
        if not institution:
            raise InvalidInput(
                "geef na OVERDRAGEN de instelling-id op, bijvoorbeeld 'OVERDRAGEN ggd-groningen'",
                field="instelling",
            )
        return ReplyAction("hand-over", institution)
    if match := _EXTEND.match(bare):
        return ReplyAction("extend", _months(match.group("rest").strip(_DECORATION)))
    # The line itself is not repeated: an answer in the reader's own words may name the youth.
    raise InvalidInput(
        f"de eerste regel is geen antwoord dat wij kennen; antwoord met {KEYWORDS_NL}",
        field="antwoord",
    )


def _months(argument: str) -> str:
    """'' (the covenant's default term), or the months as digits, 1 to 24 (CONTRACT §3: a
    signal term is at most 24 months)."""
    if not argument:
        return ""
    match = _MONTHS.match(argument.casefold())
    if match is None or not 1 <= int(match.group(1)) <= 24:
        raise InvalidInput(
            "geef na VERLENG een aantal maanden van 1 tot en met 24, bijvoorbeeld 'VERLENG 6'",
            field="maanden",
        )
    return str(int(match.group(1)))
