"""The answer in a reply mail (CONTRACT §4, Replies): the text the sender wrote above the quoted
notification and the signature, the keyword on its first line, and the keyword's argument.

Where the answer ends is decided once, in :mod:`quoting` (our own Dutch and English patterns,
then ``quotequail`` on a bounded prefix); a closing on a line of its own ("Met vriendelijke
groet,") ends it too. A ``WEIGER`` reason may run over several lines: everything from the
keyword to that end is the reason (:func:`argument_text`, the one reader of a keyword's free
text). ``format=flowed`` text has been unwrapped already (:mod:`flowed`, by the MIME reader).
"""

from __future__ import annotations

import re

from core.consent import parse_consent_status
from core.errors import InvalidInput
from core.replies import ReplyAction
from mail_gateway.parsing.quoting import is_quoted, own_text_end

# A closing on a line of its own ends the answer: what follows is name, function, phone.
_CLOSING = re.compile(
    r"^\s*((met\s+)?(vriendelijke|hartelijke|beste|collegiale)\s+groet(en)?|groet(en|jes)?|mvg"
    r"|m\.v\.g\.?|(kind|best|warm)\s+regards|regards|cheers)\s*[,.!]*"
    r"(\s*[^\W\d_][\w.'-]*(\s+[^\W\d_][\w.'-]*){0,3})?\s*$",  # "Groet, Sanne (Jansen)"
    re.IGNORECASE,
)
MAX_ARGUMENT = 2000  # a reason longer than a page is cut here, never read without end


def strip_quoted(text: str) -> str:
    """The reply without quoted history and signature ('' when nothing of the sender's own is
    left)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    end = own_text_end(lines)
    own = lines[:end]
    if not any(line.strip() for line in own):
        own = _below_the_quote(lines[end:])
    while own and not own[0].strip():
        own.pop(0)
    closing = next(
        (i for i, line in enumerate(own) if i and len(line) < 60 and _CLOSING.match(line)), None
    )
    return "\n".join(own[:closing]).rstrip()


def _below_the_quote(lines: list[str]) -> list[str]:
    """A bottom-posted answer (Thunderbird's default, and mailing-list habit): nothing above
    the quote header, the notification quoted with ``>``, the answer below it. Only for
    ``>``-quoting: Outlook quotes without it, and its quoted notification must never be read
    as an answer."""
    index = 0
    while index < len(lines) and not is_quoted(lines[index]):
        index += 1  # the quote header, wrapped over at most two lines, and a blank line
    if index > 3 or index == len(lines):
        return []
    while index < len(lines) and (is_quoted(lines[index]) or not lines[index].strip()):
        index += 1
    below = lines[index:]
    return below[: own_text_end(below)]


def extract_reply(text: str) -> str:
    """The answer the sender wrote: from its first non-empty line (the keyword) to the quoted
    history, signature or closing ('' when there is none)."""
    return strip_quoted(text).strip()


def _first_line(text: str) -> str:
    for line in text.split("\n"):
        if line.strip():
            return line.strip()
    return ""


def argument_text(answer: str, rest_of_keyword_line: str) -> str:
    """A keyword's free-text argument (``WEIGER <reden>``, ``OVERDRAGEN <instelling-id>``, and
    any keyword with a ``<toelichting>``): what follows the keyword on its line, and the lines
    below it up to the quote or signature. ``answer`` is the reply as :func:`strip_quoted`
    leaves it (the keyword on its first non-empty line). Lines keep their breaks; runs of blank
    lines become one; emphasis and punctuation before it are dropped, and after it when it is
    one line ('WEIGER: vol.' is 'vol'; a paragraph keeps its last full stop)."""
    lines = answer.translate(_INVISIBLE).replace("\r\n", "\n").split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), len(lines))
    rest = " ".join(rest_of_keyword_line.split())
    if first < len(lines) and rest:
        # The keyword's matcher saw its line without trailing punctuation: take the line's end.
        line = " ".join(lines[first].split())
        found = line.rfind(rest)
        rest = line[found:] if found >= 0 else rest
    kept = [rest]
    for line in lines[first + 1 :]:
        words = " ".join(line.split())
        if words or (kept and kept[-1]):
            kept.append(words)
    text = "\n".join(kept).strip().lstrip(_DECORATION)
    text = text.rstrip(_DECORATION if "\n" not in text else _EMPHASIS)
    return text[:MAX_ARGUMENT].rstrip()


KEYWORDS_NL = (
    "AKKOORD, WEIGER <reden>, OVERDRAGEN <instelling-id>, CONTACT GELEGD, VERLENG [maanden], "
    "GEINFORMEERD, TOESTEMMING GEVRAAGD|GEGEVEN|GEWEIGERD, en voor de gemeente REGIE, "
    "AANWIJZEN <instelling-id> of AFGEROND <toelichting>"
)
_INVISIBLE = str.maketrans(
    {"\xa0": " ", "\u202f": " ", "\u2007": " ", "\u200b": None, "\u200c": None,
     "\u200d": None, "\u2060": None, "\ufeff": None}
)  # fmt: skip
# Trailing punctuation and the emphasis Gmail's text part gives bold text (*AKKOORD*).
_DECORATION = " \t.!?,;:*_\"'`~"
_EMPHASIS = " \t*_~"
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
_INFORMED = re.compile(r"^(geinformeerd|geïnformeerd|ge-informeerd|informed)$")
_CONSENT = re.compile(rf"^(toestemming|consent){_WORD}[\s:=\-–]*(?P<rest>.*)$", re.I)
# The municipality's answers to an escalation (core.regie).
_TAKE_UP = re.compile(r"^(regie|regie\s+nemen|neem\s+regie|take\s+over|take\s+charge)$")
_ASSIGN = re.compile(
    rf"^(aanwijzen\s+aan|aanwijzen|wijs\s+aan|assign\s+to|assign){_WORD}[\s:=\-–]*(?P<rest>.*)$",
    re.I,
)
_CLOSE = re.compile(
    rf"^(afgerond|afronden|rond\s+af|closed|close){_WORD}[\s:=\-–]*(?P<rest>.*)$", re.I
)
_MONTHS = re.compile(r"^(?:met\s+|by\s+)?(\d{1,3})\s*(maanden|maand|mnd|m|months|month)?$")


def parse_reply_command(text: str) -> ReplyAction:
    """The keyword on the first non-empty line of ``text`` (the reply, already stripped of
    quoted history by :func:`strip_quoted`), with its argument (:func:`argument_text`: a reason
    may run over several lines). Case-insensitive; trailing punctuation, emphasis and
    non-breaking spaces are tolerated. Refusals are :class:`InvalidInput` with a Dutch
    message: field ``antwoord`` (no or unknown keyword), ``reden`` (WEIGER without a reason),
    ``instelling`` (OVERDRAGEN without an institution), ``maanden`` (VERLENG not 1–24) or
    ``toestemming`` (TOESTEMMING without gevraagd, gegeven or geweigerd); for the municipality
    ``instelling`` (AANWIJZEN without an institution) or ``toelichting`` (AFGEROND without
    one)."""
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
        reason = argument_text(text, match.group("rest"))
        if not reason:
            raise InvalidInput(
                "geef na WEIGER de reden op, bijvoorbeeld 'WEIGER geen capaciteit'", field="reden"
            )
        return ReplyAction("decline", reason)
    if match := _HAND_OVER.match(bare):
        return ReplyAction("hand-over", _institution_id(text, match, "OVERDRAGEN"))
    if match := _EXTEND.match(bare):
        return ReplyAction("extend", _months(match.group("rest").strip(_DECORATION)))
    if _INFORMED.match(lowered):
        return ReplyAction("informed")
    if match := _CONSENT.match(bare):
        status = parse_consent_status(match.group("rest").strip(_DECORATION))
        return ReplyAction("consent", status.value)
    if _TAKE_UP.match(lowered):
        return ReplyAction("take-up")
    if match := _ASSIGN.match(bare):
        return ReplyAction("assign", _institution_id(text, match, "AANWIJZEN"))
    if match := _CLOSE.match(bare):
        note = argument_text(text, match.group("rest"))
        if not note:
            raise InvalidInput(
                "geef na AFGEROND een toelichting op, bijvoorbeeld 'AFGEROND hulp loopt via het "
                "wijkteam'",
                field="toelichting",
            )
        return ReplyAction("close", note)
    # The line itself is not repeated: an answer in the reader's own words may name the youth.
    raise InvalidInput(
        f"de eerste regel is geen antwoord dat wij kennen; antwoord met {KEYWORDS_NL}",
        field="antwoord",
    )


def _institution_id(text: str, match: re.Match[str], keyword: str) -> str:
    """The institution id after OVERDRAGEN or AANWIJZEN: the first word of its argument."""
    words = argument_text(text, match.group("rest")).split()
    institution = words[0].strip(_DECORATION).lower() if words else ""
    if not institution:
        raise InvalidInput(
            f"geef na {keyword} de instelling-id op, bijvoorbeeld '{keyword} ggd-groningen'",
            field="instelling",
        )
    return institution


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
