"""The registration and signal fields of CONTRACT §4, parsed once for every transport.

Mail bodies (``Label: value``), CSV rows and the Slack form all arrive as a mapping of labels to
text; labels are case-insensitive and ``BSN ouder``, ``bsn_ouder`` and ``bsn-ouder`` are the same
field. Errors are :class:`InvalidInput` naming the field in Dutch.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import date

from core.errors import InvalidInput
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
_DMY = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$")
_YMD = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_PARENT_SEPARATORS = re.compile(r"[|;,\s]+")


def canonical_label(label: str) -> str:
    """'BSN ouder' / 'bsn_ouder' / 'Geïnformeerd' -> 'bsn_ouder' / 'geinformeerd'."""
    folded = unicodedata.normalize("NFKD", label.strip().casefold())
    bare = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return re.sub(r"[\s\-_]+", "_", bare)


def parse_date(value: str, field: str) -> date:
    text = value.strip()
    match = _DMY.match(text)
    parts = (match.group(3), match.group(2), match.group(1)) if match else None
    if parts is None and (match := _YMD.match(text)):
        parts = (match.group(1), match.group(2), match.group(3))
    if parts is None:
        raise InvalidInput(f"'{_short(text)}' is geen datum; gebruik DD-MM-JJJJ of JJJJ-MM-DD", field=field)
    try:
        return date(int(parts[0]), int(parts[1]), int(parts[2]))
    except ValueError:
        raise InvalidInput(f"'{_short(text)}' is geen bestaande datum", field=field) from None


def _short(text: str) -> str:
    return text if len(text) <= 20 else text[:17] + "..."


def _get(fields: Mapping[str, str], key: str) -> str:
    return (fields.get(key) or "").strip()


def parse_identity(fields: Mapping[str, str]) -> YouthIdentity:
    raw_birth = _get(fields, "geboortedatum")
    if not raw_birth:
        raise InvalidInput("ontbreekt", field="Geboortedatum")
    birth = parse_date(raw_birth, "Geboortedatum")
    raw_bsn = _get(fields, "bsn")
    name = _get(fields, "naam") or None
    if raw_bsn:
        return YouthIdentity(bsn=normalize_bsn(raw_bsn), birth_date=birth, name=name)
    surname = _get(fields, "achternaam")
    sex = _get(fields, "geslacht").upper()
    if not surname:
        raise InvalidInput("ontbreekt (of geef Achternaam en Geslacht als er geen BSN is)", field="BSN")
    if not sex:
        raise InvalidInput("ontbreekt: zonder BSN zijn achternaam, geboortedatum en geslacht nodig", field="Geslacht")
    return YouthIdentity(birth_date=birth, surname=surname, sex=sex, name=name or surname)


def parse_parent_bsns(fields: Mapping[str, str]) -> tuple[str, ...]:
    raw = _get(fields, "bsn_ouder")
    return tuple(normalize_bsn(p, field="BSN ouder") for p in _PARENT_SEPARATORS.split(raw) if p)


def parse_registration(fields: Mapping[str, str]) -> RegisterYouth | DeregisterYouth:
    action = (_get(fields, "actie") or "aanmelden").lower()
    if action not in ("aanmelden", "afmelden"):
        raise InvalidInput("moet 'aanmelden' of 'afmelden' zijn", field="Actie")
    identity = parse_identity(fields)
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
        parent_bsns=parse_parent_bsns(fields),
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


def parse_signal(fields: Mapping[str, str]) -> PlaceSignal:
    identity = parse_identity(fields)
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
    term = None
    if raw_term:
        digits = raw_term.lower().removesuffix("maanden").removesuffix("mnd").strip()
        if not digits.isdigit():
            raise InvalidInput("geef de looptijd in maanden, bijvoorbeeld 12", field="Looptijd")
        term = int(digits)
    return PlaceSignal(
        identity=identity,
        municipality=municipality,
        code=code,
        informed=informed.lower(),
        reference=_get(fields, "kenmerk") or None,
        ends_on=parse_date(raw_end, "Einddatum") if raw_end else None,
        term_months=term,
        postpone_reason=_get(fields, "reden_uitstel") or None,
        leaflet_given=_yes_no(_get(fields, "folder"), "Folder", False),
        parent_bsns=parse_parent_bsns(fields),
    )
