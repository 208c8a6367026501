"""The registration and signal fields of CONTRACT §4, parsed once for every transport.

Mail bodies (``Label: value``), CSV rows and the Slack form all arrive as labels with text;
labels are case-insensitive and ``BSN ouder``, ``bsn_ouder`` and ``bsn-ouder`` are the same
field. :func:`collect_fields` turns (label, value) pairs into one mapping (``BSN ouder`` may be
repeated); the ``parse_*`` functions accept any mapping of labels. Errors are
:class:`InvalidInput` naming the field as users write it, with a Dutch reason.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import date

from core.errors import InvalidInput
from core.free_text import OMITTED, could_identify, quote
from core.identity import YouthIdentity, normalize_bsn
from core.registration import DeregisterYouth, RegisterYouth
from core.signals import PlaceSignal

# canonical key -> label as users write it (for error messages)
LABELS = {
    "bsn": "BSN",
    "achternaam": "Achternaam",
    "geslacht": "Geslacht",
    "naam": "Naam",
    "geboortedatum": "Geboortedatum",
    "gemeente": "Gemeente",
    "kenmerk": "Kenmerk",
    "hulpverlener": "Hulpverlener",
    "bsn_ouder": "BSN ouder",
    "einddatum": "Einddatum",
    "actie": "Actie",
    "code": "Code",
    "looptijd": "Looptijd",
    "geinformeerd": "Geïnformeerd",
    "reden_uitstel": "Reden uitstel",
    "folder": "Folder",
}
REPEATABLE = frozenset({"bsn_ouder"})  # CONTRACT §4: one line per parent
# Fields whose value identifies a youth or a parent (DOMAIN: Content-free): never repeated in a
# refusal, on any path. Besides the fields of CONTRACT §4, the labels people add of their own
# accord (they are refused as unknown fields, and their values must not come back either).
IDENTITY_FIELDS = frozenset(
    {
        "bsn",
        "bsn_ouder",
        "naam",
        "voornaam",
        "voornamen",
        "roepnaam",
        "tussenvoegsel",
        "achternaam",
        "geslacht",
        "geboortedatum",
        "geboorteplaats",
        "adres",
        "straat",
        "huisnummer",
        "postcode",
        "woonplaats",
        "telefoon",
    }
)
_DMY = re.compile(r"^([0-9]{1,2})([-/.])([0-9]{1,2})\2([0-9]{4})$")
_YMD = re.compile(r"^([0-9]{4})([-/.])([0-9]{1,2})\2([0-9]{1,2})$")
_PARENT_SEPARATORS = re.compile(r"[|;,\n]+")
_TERM = re.compile(r"^([0-9]+)\s*(maanden|maand|mnd|m)?\.?$")


_LABEL_SEPARATORS = re.compile(r"[\s\-_]+")
# Spellings seen of the known labels -> their key. Every CSV row and mail block repeats the same
# few spellings; only spellings of known fields are kept (bounded), never arbitrary text.
_KNOWN_SPELLINGS: dict[str, str] = {key: key for key in LABELS}
_MAX_SPELLINGS = 1024


def canonical_label(label: str) -> str:
    """'BSN ouder' / 'bsn_ouder' / 'Geïnformeerd' -> 'bsn_ouder' / 'geinformeerd'.

    Idempotent: a key it returns is its own canonical label, so fields canonicalised once need
    not be canonicalised again."""
    known = _KNOWN_SPELLINGS.get(label)
    if known is not None:
        return known
    key = _fold_label(label)
    while (again := _fold_label(key)) != key:  # rare: compatibility forms such as 'ᴮ'
        key = again
    if key in LABELS and len(_KNOWN_SPELLINGS) < _MAX_SPELLINGS:
        _KNOWN_SPELLINGS[label] = key
    return key


def _fold_label(label: str) -> str:
    folded = unicodedata.normalize("NFKD", label.strip().casefold())
    bare = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return _LABEL_SEPARATORS.sub("_", bare)


def collect_fields(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """(label, value) pairs as written -> one mapping by canonical label.

    A repeatable field (``BSN ouder``) collects its values; any other field given twice with
    different values is refused rather than guessed at.
    """
    fields: dict[str, str] = {}
    for label, raw_value in pairs:
        key = canonical_label(label)
        value = (raw_value or "").strip()
        if not value:
            continue
        previous = fields.get(key)
        if previous is None or previous == value:
            fields[key] = value
        elif key in REPEATABLE:
            fields[key] = f"{previous},{value}"
        else:
            raise InvalidInput(
                "staat er twee keer in, met verschillende waarden", field=_label(key)
            )
    return fields


def _canonical(fields: Mapping[str, str]) -> dict[str, str]:
    return collect_fields(fields.items())


def _label(key: str) -> str:
    return LABELS.get(key, key)


# -- what a refusal may repeat ------------------------------------------------------------------
# Every parser and refusal builder (mail blocks, CSV, Slack form and inline text, CLI) quotes
# what a user typed through these two functions and nothing else.


def is_identity_field(label: str) -> bool:
    """Whether the field written as ``label`` ('Geboortedatum', 'bsn_ouder', 'Voornaam') holds
    a youth's or a parent's identity."""
    return canonical_label(label) in IDENTITY_FIELDS


def quote_value(label: str, value: str, *, dates: bool = False) -> str:
    """The value of field ``label`` as a refusal may repeat it: ``'value'``, or
    :data:`~core.free_text.OMITTED` for an identity field (even a mistyped birth date
    identifies a youth) and for any value that looks like a BSN or, unless ``dates`` (a date
    field such as Einddatum), a date."""
    if is_identity_field(label):
        return OMITTED
    return quote(value, dates=dates)


def quote_label(label: str) -> str | None:
    """A label as a refusal may repeat it (``'Geboortedatm'``), or None when what stands
    where a label should could itself be identity (digits, a date, overlong text): then the
    refusal names the line only. A known label is always safe."""
    text = " ".join(label.split())
    if canonical_label(text) in LABELS:
        return f"'{text}'"
    if any(ch.isdigit() for ch in text) or len(text) > 40 or could_identify(text):
        return None
    return quote(text)


def parse_date(value: str, field: str) -> date:
    """``DD-MM-JJJJ`` or ``JJJJ-MM-DD``. A refusal repeats what was typed only for a field
    that does not identify a youth (:func:`quote_value`): not for a birth date."""
    text = value.strip()
    quoted = quote_value(field, text, dates=True)
    shown = "" if quoted == OMITTED else f"{quoted} "
    parts: tuple[str, str, str] | None = None
    if match := _DMY.match(text):
        parts = (match.group(4), match.group(3), match.group(1))
    elif match := _YMD.match(text):
        parts = (match.group(1), match.group(3), match.group(4))
    if parts is None:
        raise InvalidInput(f"{shown}is geen datum; gebruik DD-MM-JJJJ of JJJJ-MM-DD", field=field)
    try:
        return date(int(parts[0]), int(parts[1]), int(parts[2]))
    except ValueError:
        raise InvalidInput(f"{shown}is geen bestaande datum", field=field) from None


def _get(fields: Mapping[str, str], key: str) -> str:
    return (fields.get(key) or "").strip()


def parse_identity(fields: Mapping[str, str]) -> YouthIdentity:
    return _identity(_canonical(fields))


def _identity(fields: Mapping[str, str]) -> YouthIdentity:
    """:func:`parse_identity` of fields already canonical (from :func:`collect_fields`)."""
    raw_birth = _get(fields, "geboortedatum")
    if not raw_birth:
        raise InvalidInput("ontbreekt", field="Geboortedatum")
    birth = parse_date(raw_birth, "Geboortedatum")
    raw_bsn = _get(fields, "bsn")
    name = _get(fields, "naam") or None
    if raw_bsn:
        # YouthIdentity normalises (and checks) the BSN itself: once is enough.
        return YouthIdentity(bsn=raw_bsn, birth_date=birth, name=name)
    surname = _get(fields, "achternaam")
    sex = _get(fields, "geslacht").upper()
    if not surname:
        raise InvalidInput(
            "ontbreekt (of geef Achternaam en Geslacht als er geen BSN is)", field="BSN"
        )
    if not sex:
        raise InvalidInput(
            "ontbreekt: zonder BSN zijn achternaam, geboortedatum en geslacht nodig",
            field="Geslacht",
        )
    return YouthIdentity(birth_date=birth, surname=surname, sex=sex, name=name or surname)


def parse_parent_bsns(fields: Mapping[str, str]) -> tuple[str, ...]:
    """Every parent BSN, in order, without repeats. Separated by ``,`` ``;`` ``|`` or new
    lines, or by spaces when every part is a whole number (``123 456 782`` is one BSN)."""
    return _parent_bsns(_canonical(fields))


def _parent_bsns(fields: Mapping[str, str]) -> tuple[str, ...]:
    raw = _get(fields, "bsn_ouder")
    if not raw:
        return ()
    numbers: list[str] = []
    for part in _PARENT_SEPARATORS.split(raw):
        words = part.split()
        if len(words) > 1 and all(len(word) in (8, 9) for word in words):
            numbers += words
        elif words:
            numbers.append(part)
    normalized = (normalize_bsn(number, field="BSN ouder") for number in numbers)
    return tuple(dict.fromkeys(normalized))


def parse_registration(fields: Mapping[str, str]) -> RegisterYouth | DeregisterYouth:
    fields = _canonical(fields)
    action = (_get(fields, "actie") or "aanmelden").lower()
    if action not in ("aanmelden", "afmelden"):
        raise InvalidInput("moet 'aanmelden' of 'afmelden' zijn", field="Actie")
    identity = _identity(fields)
    if action == "afmelden":
        return DeregisterYouth(identity)
    municipality = _get(fields, "gemeente")
    if not municipality:
        raise InvalidInput("ontbreekt", field="Gemeente")
    raw_end = _get(fields, "einddatum")
    return RegisterYouth(
        identity=identity,
        municipality=municipality,
        reference=_get(fields, "kenmerk"),
        professional_email=_get(fields, "hulpverlener").lower() or None,
        parent_bsns=_parent_bsns(fields),
        ends_on=parse_date(raw_end, "Einddatum") if raw_end else None,
    )


def _yes_no(value: str, field: str, default: bool) -> bool:
    text = value.strip().lower()
    if not text:
        return default
    if text in ("ja", "j", "yes", "y", "true", "1"):
        return True
    if text in ("nee", "n", "no", "false", "0"):
        return False
    raise InvalidInput("moet ja of nee zijn", field=field)


def parse_term_months(value: str) -> int:
    """``12``, ``12 maanden``, ``6 mnd`` -> months (the range is checked with the signal)."""
    match = _TERM.match(value.strip().lower())
    if match is None:
        raise InvalidInput("geef de looptijd in maanden, bijvoorbeeld 12", field="Looptijd")
    return int(match.group(1))


def parse_signal(fields: Mapping[str, str]) -> PlaceSignal:
    fields = _canonical(fields)
    identity = _identity(fields)
    municipality = _get(fields, "gemeente")
    if not municipality:
        raise InvalidInput("ontbreekt", field="Gemeente")
    code = _get(fields, "code").lower()
    if not code:
        raise InvalidInput("ontbreekt", field="Code")
    informed = _get(fields, "geinformeerd")
    if not informed:
        raise InvalidInput("ontbreekt: ja, nee of uitgesteld", field="Geïnformeerd")
    raw_end = _get(fields, "einddatum")
    raw_term = _get(fields, "looptijd")
    if raw_end and raw_term:
        raise InvalidInput("geef een einddatum óf een looptijd, niet allebei", field="Looptijd")
    return PlaceSignal(
        identity=identity,
        municipality=municipality,
        code=code,
        informed=informed.lower(),
        reference=_get(fields, "kenmerk") or None,
        ends_on=parse_date(raw_end, "Einddatum") if raw_end else None,
        term_months=parse_term_months(raw_term) if raw_term else None,
        postpone_reason=_get(fields, "reden_uitstel") or None,
        leaflet_given=_yes_no(_get(fields, "folder"), "Folder", False),
        parent_bsns=_parent_bsns(fields),
    )
