"""Signal fields typed as chat text — a direct message, or the text after ``/signaal`` — never
carry a youth's identity into the system.

A bot cannot delete a user's own message, and Slack keeps a DM (and, on some plans, logs a slash
command's text) in its history. So the form is the only Slack path that takes identity fields:
from typed text only the other fields (code, gemeente, einddatum, ...) pre-fill the ``/signaal``
modal, and the identity fields are named (never repeated) so the user fills them in the form.
Which fields identify a youth is decided by ``core.fields.is_identity_field``, what looks like a
BSN by ``core.free_text.could_identify``; this module only applies them to typed text.

A DM that looks like a signal is answered with a button that opens the form. The button's
``value`` stays in Slack's history with the bot's message, so it carries even less: only the
fields the bot could print itself (:data:`BUTTON_FIELDS`), not the free-text reason for
postponing, which may hold the reason for concern (DOMAIN: Content-free).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from bot.errors import describe
from bot.inline_fields import split_fields
from core.errors import InvalidInput
from core.fields import LABELS, canonical_label, collect_fields, is_identity_field
from core.free_text import could_identify

BUTTON_FIELDS = ("gemeente", "code", "looptijd", "einddatum", "kenmerk", "geinformeerd", "folder")
BUTTON_VALUE_LIMIT = 2000  # Slack: a button's value is at most 2000 characters
BUTTON_VALUE_CHARS = 200  # per field carried; a longer one is cut (the form shows what is left)
SIGNAL_WORDS = ("signaal", "signal")


def holds_bsn_like_number(text: str) -> bool:
    """A number in the text written as a BSN is (``dates=True``: a date alone does not count)."""
    return could_identify(text, dates=True)


def looks_like_signal(text: str) -> bool:
    """A chat message meant as a signal, or one that carries identity the way a signal would:
    it starts with ``signaal``, labels an identity field (``bsn=``, ``naam:``, ``voornaam=``),
    or holds a BSN-like number. Broad on purpose: a false alarm costs a warning, a miss leaves
    a BSN in Slack's history."""
    words = text.split(maxsplit=1)
    if words and words[0].lower().rstrip(":") in SIGNAL_WORDS:
        return True
    inline = split_fields(text)
    labels = [label for label, _ in inline.pairs] + inline.unknown_labels
    return any(is_identity_field(label) for label in labels) or holds_bsn_like_number(text)


def prefill_from(text: str) -> tuple[dict[str, str], list[str]]:
    """Every field of ``key=value`` text by canonical key, and what could not be used."""
    inline = split_fields(text)
    notes = list(inline.problems)
    try:
        prefill = collect_fields(inline.pairs)
    except InvalidInput as error:
        notes.append(describe(error))
        prefill = {}
        for label, value in inline.pairs:  # the first value of a field given twice
            if value.strip():
                prefill.setdefault(canonical_label(label), value.strip())
    return prefill, notes


@dataclass(frozen=True)
class TypedSignal:
    """What typed text may pre-fill (never identity), and which fields it held that do not."""

    prefill: dict[str, str]
    withheld: list[str] = field(default_factory=list)  # identity keys, in the order typed
    unknown_identity: list[str] = field(default_factory=list)  # 'voornaam': no field of ours
    bsn_like_number: bool = False
    left_out: list[str] = field(default_factory=list)  # other keys a DM's button cannot carry
    notes: list[str] = field(default_factory=list)  # Dutch, for the form

    @property
    def carries_identity(self) -> bool:
        return bool(self.withheld or self.unknown_identity) or self.bsn_like_number

    def form_notes(self) -> list[str]:
        """The notes, with lines naming what was left out (labels, never values)."""
        notes = list(self.notes)
        if self.carries_identity:
            labels = [LABELS[key] for key in self.withheld] + self.unknown_identity
            labels = labels or [LABELS["bsn"]]  # only a BSN-like number, without a label
            notes.append(
                f"{', '.join(labels)}: identiteitsgegevens nemen wij niet over uit een "
                "chatbericht of uit de tekst achter /signaal; vul ze hier in"
            )
        if self.left_out:
            labels = [LABELS[key] for key in self.left_out]
            notes.append(
                f"{', '.join(labels)}: niet overgenomen uit uw chatbericht; vul het hier in"
            )
        return notes


def typed_signal(text: str) -> TypedSignal:
    """Typed text as a form's pre-fill without its identity fields."""
    fields, notes = prefill_from(text)
    return TypedSignal(
        prefill={k: v for k, v in fields.items() if not is_identity_field(k)},
        withheld=[k for k in fields if is_identity_field(k)],
        unknown_identity=[
            label for label in split_fields(text).unknown_labels if is_identity_field(label)
        ],
        bsn_like_number=holds_bsn_like_number(text),
        # A note that quotes unreadable text could quote a BSN or a birth date with it.
        notes=[note for note in notes if not could_identify(note)],
    )


def button_value(typed: TypedSignal) -> str:
    """The DM button's value: the printable fields, and the keys of what was left out."""
    # A kenmerk may be written like a BSN or a birth date: then it stays out as well.
    kept = {
        k: v[:BUTTON_VALUE_CHARS]
        for k, v in typed.prefill.items()
        if k in BUTTON_FIELDS and not could_identify(v, dates=k == "einddatum")
    }
    # Seven values of at most 200 characters and a few dozen keys stay well within the limit.
    identity = list(typed.withheld) or (["bsn"] if typed.bsn_like_number else [])
    left_out = [k for k in typed.prefill if k not in kept]
    value = {"velden": kept, "identiteit": identity, "weggelaten": left_out}
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _keys(value: object) -> list[str]:
    return (
        [k for k in value if isinstance(k, str) and k in LABELS] if isinstance(value, list) else []
    )


def from_button_value(raw: str) -> TypedSignal:
    """A button's value read back; whatever it holds, only :data:`BUTTON_FIELDS` pre-fill."""
    try:
        decoded = json.loads(raw or "{}")
    except ValueError:
        decoded = {}
    if not isinstance(decoded, dict):
        decoded = {}
    kept = decoded.get("velden")
    kept = kept if isinstance(kept, dict) else {}
    return TypedSignal(
        prefill={k: kept[k] for k in BUTTON_FIELDS if isinstance(kept.get(k), str) and kept[k]},
        withheld=[k for k in _keys(decoded.get("identiteit")) if is_identity_field(k)],
        left_out=[k for k in _keys(decoded.get("weggelaten")) if not is_identity_field(k)],
    )
