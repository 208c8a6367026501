"""The ``/signaal`` modal: the signal fields of CONTRACT §4 as Block Kit inputs, pre-filled from
typed ``key=value`` text without its identity fields (:mod:`bot.typed_signal`), read back into
the labels ``core.fields`` parses.

Each input's ``block_id`` is the field's canonical key (``core.fields.canonical_label``), so an
:class:`~core.errors.InvalidInput` naming a field (``Geboortedatum``, ``Reden uitstel``) is shown
on that input (``response_action: errors``). Dates are text in ``DD-MM-JJJJ``: a date picker
makes a birth date ten years back a long walk, and text round-trips the pre-filled value.

A modal is a form, not a message: its own inputs may hold a youth's BSN and birth date. Nothing
the bot *sends* afterwards does (DOMAIN: Content-free).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bot.blocks import context, plain, section
from core.config import CoreConfig
from core.errors import DomainError
from core.fields import LABELS, canonical_label, quote_value
from core.models import Informed
from core.rendering import slack_escape

CALLBACK_ID = "signaal"
ACTION_ID = "waarde"
METADATA_LIMIT = 3000  # Slack: private_metadata is at most 3000 characters

FIELD_ORDER = (
    "bsn",
    "achternaam",
    "geslacht",
    "naam",
    "geboortedatum",
    "gemeente",
    "bsn_ouder",
    "code",
    "looptijd",
    "einddatum",
    "kenmerk",
    "geinformeerd",
    "reden_uitstel",
    "folder",
)
SEXES = (("M", "M (man)"), ("V", "V (vrouw)"), ("X", "X (anders / onbekend)"))
INFORMED = (
    (Informed.YES.value, "Ja, geïnformeerd"),
    (Informed.NO.value, "Nee, nog niet"),
    (Informed.POSTPONED.value, "Uitgesteld (met reden)"),
)
LEAFLET = (("ja", "Ja, overhandigd"), ("nee", "Nee"))
AGE_GUIDANCE = (
    "*Wie informeert u?* Jonger dan 12 jaar: de ouders · 12 tot en met 15 jaar: de jongere én "
    "de ouders · 16 jaar en ouder: de jongere. Niet of later informeren mag alleen met een "
    "reden (bijvoorbeeld veiligheid)."
)
CONTENT_FREE = (
    "Een signaal bevat geen inhoud: alleen wie, over welke jongere, wanneer, de signaalcode en "
    "de einddatum. Noteer hier nooit de reden van uw zorg."
)


def _option(value: str, label: str) -> dict[str, Any]:
    return {"text": plain(label[:75]), "value": value}


def _input(
    key: str,
    label: str,
    element: dict[str, Any],
    *,
    optional: bool,
    hint: str | None = None,
) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "input",
        "block_id": key,
        "label": plain(label),
        "optional": optional,
        "element": {**element, "action_id": ACTION_ID},
    }
    if hint:
        block["hint"] = plain(hint)
    return block


def _text_input(
    key: str,
    label: str,
    prefill: Mapping[str, str],
    *,
    optional: bool = True,
    hint: str | None = None,
    placeholder: str | None = None,
    multiline: bool = False,
) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "multiline": multiline}
    if prefill.get(key):
        element["initial_value"] = prefill[key][:3000]
    if placeholder:
        element["placeholder"] = plain(placeholder)
    return _input(key, label, element, optional=optional, hint=hint)


def _choice(
    kind: str,
    key: str,
    label: str,
    options: list[tuple[str, str]],
    selected: str | None,
    *,
    optional: bool,
    hint: str | None = None,
) -> dict[str, Any]:
    element: dict[str, Any] = {"type": kind, "options": [_option(v, t) for v, t in options]}
    if kind == "static_select":
        element["placeholder"] = plain("Kies...")
    chosen = next(((v, t) for v, t in options if v == selected), None)
    if chosen is not None:
        element["initial_option"] = _option(*chosen)
    return _input(key, label, element, optional=optional, hint=hint)


def _selected_municipality(config: CoreConfig, raw: str) -> str | None:
    wanted = raw.strip().casefold()
    return next(
        (m.name for m in config.covenant.municipalities if m.name.casefold() == wanted), None
    )


def _selected_code(config: CoreConfig, raw: str) -> str | None:
    code = config.covenant.signal_code(raw.strip()) if raw.strip() else None
    return code.code if code is not None else None


def _selected_yes_no(raw: str) -> str | None:
    text = raw.strip().lower()
    if text in ("ja", "j", "yes", "y"):
        return "ja"
    if text in ("nee", "n", "no"):
        return "nee"
    return None


def unusable_prefill(config: CoreConfig, prefill: Mapping[str, str]) -> list[str]:
    """Pre-filled values a select cannot show (the user must choose again), in Dutch."""
    problems = []
    checks = (
        ("gemeente", _selected_municipality(config, prefill.get("gemeente", ""))),
        ("code", _selected_code(config, prefill.get("code", ""))),
        ("geslacht", next((v for v, _ in SEXES if v == prefill.get("geslacht", "").upper()), None)),
        (
            "geinformeerd",
            next((v for v, _ in INFORMED if v == prefill.get("geinformeerd", "").lower()), None),
        ),
        ("folder", _selected_yes_no(prefill.get("folder", ""))),
    )
    for key, chosen in checks:
        if prefill.get(key) and chosen is None:
            problems.append(
                f"{LABELS[key]}: {quote_value(key, prefill[key])} staat niet in de keuzelijst"
            )
    return problems


def signal_modal(
    config: CoreConfig,
    prefill: Mapping[str, str],
    *,
    notes: list[str],
    metadata: dict[str, str],
) -> dict[str, Any]:
    """The modal for ``views.open``; ``prefill`` maps canonical keys to text."""
    region = config.covenant.region
    codes = [
        (
            c.code,
            f"{c.label} (reactie binnen {c.response_working_days} werkdag"
            f"{'' if c.response_working_days == 1 else 'en'})",
        )
        for c in config.covenant.signal_codes
    ]
    municipalities = [(m.name, m.name) for m in config.covenant.municipalities]
    blocks: list[dict[str, Any]] = [
        section(CONTENT_FREE),
    ]
    if notes:
        # The notes are plain text (they may quote what was typed): escaped once for mrkdwn.
        shown = "\n".join(f"• {slack_escape(note)}" for note in notes[:10])
        blocks.append(context(f"Niet overgenomen uit uw tekst:\n{shown}"))
    blocks += [
        _text_input(
            "bsn",
            "BSN",
            prefill,
            placeholder="9 cijfers",
            hint="Geen BSN? Vul dan achternaam en geslacht in.",
        ),
        _text_input("achternaam", "Achternaam (alleen zonder BSN)", prefill),
        _choice(
            "static_select",
            "geslacht",
            "Geslacht (alleen zonder BSN)",
            list(SEXES),
            prefill.get("geslacht", "").upper() or None,
            optional=True,
        ),
        _text_input("naam", "Naam (optioneel)", prefill),
        _text_input(
            "geboortedatum", "Geboortedatum", prefill, optional=False, placeholder="DD-MM-JJJJ"
        ),
        _choice(
            "static_select",
            "gemeente",
            "Gemeente",
            municipalities,
            _selected_municipality(config, prefill.get("gemeente", "")),
            optional=False,
        ),
        _text_input(
            "bsn_ouder",
            "BSN ouder (optioneel)",
            prefill,
            hint="Voor een gezinsmatch; meerdere nummers gescheiden door komma's.",
        ),
        _choice(
            "static_select",
            "code",
            "Signaalcode",
            codes,
            _selected_code(config, prefill.get("code", "")),
            optional=False,
        ),
        _text_input(
            "looptijd",
            "Looptijd in maanden",
            prefill,
            placeholder=str(region.default_signal_term_months),
            hint=f"1 tot en met 24. Leeg: {region.default_signal_term_months} maanden, tenzij u "
            "een einddatum invult.",
        ),
        _text_input(
            "einddatum",
            "Of: einddatum",
            prefill,
            placeholder="DD-MM-JJJJ",
            hint="Hoogstens 2 jaar na vandaag. Vul een looptijd óf een einddatum in.",
        ),
        _text_input(
            "kenmerk",
            "Uw eigen kenmerk (optioneel)",
            prefill,
            hint="Zo vindt u de jongere terug in uw eigen cliëntsysteem.",
        ),
        context(AGE_GUIDANCE),
        _choice(
            "radio_buttons",
            "geinformeerd",
            "Geïnformeerd?",
            list(INFORMED),
            prefill.get("geinformeerd", "").lower() or None,
            optional=False,
        ),
        _text_input(
            "reden_uitstel",
            "Reden uitstel",
            prefill,
            multiline=True,
            hint="Verplicht bij 'nee' (waarom nog niet) en bij 'uitgesteld' (bijvoorbeeld de "
            "veiligheid van de jongere). Na enkele werkdagen herinneren wij u aan het informeren.",
        ),
        _choice(
            "radio_buttons",
            "folder",
            "Folder overhandigd?",
            list(LEAFLET),
            _selected_yes_no(prefill.get("folder", "")),
            optional=True,
        ),
    ]
    return {
        "type": "modal",
        "callback_id": CALLBACK_ID,
        "title": plain("Signaal afgeven"),
        "submit": plain("Plaatsen"),
        "close": plain("Annuleren"),
        "private_metadata": encode_metadata(metadata),
        "blocks": blocks,
    }


def encode_metadata(metadata: dict[str, str]) -> str:
    encoded = json.dumps(metadata, separators=(",", ":"))
    return encoded if len(encoded) <= METADATA_LIMIT else "{}"


def decode_metadata(raw: str | None) -> dict[str, str]:
    try:
        decoded = json.loads(raw or "{}")
    except ValueError:
        return {}
    if not isinstance(decoded, dict):
        return {}
    return {str(k): str(v) for k, v in decoded.items() if isinstance(v, str)}


def submitted_pairs(view: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The submitted inputs as (label, text), for ``core.fields.collect_fields``."""
    values: Mapping[str, Any] = (view.get("state") or {}).get("values") or {}
    pairs = []
    for key in FIELD_ORDER:
        element = (values.get(key) or {}).get(ACTION_ID) or {}
        text = element.get("value")
        if text is None:
            text = (element.get("selected_option") or {}).get("value")
        if text:
            pairs.append((LABELS[key], str(text)))
    return pairs


def field_errors(error: DomainError) -> dict[str, str] | None:
    """``{block_id: message}`` when the error names a field of the form, else ``None``."""
    if not error.field:
        return None
    key = canonical_label(error.field)
    if key not in FIELD_ORDER:
        return None
    return {key: error.message[:150]}
