"""Signal fields written on one line (``/signaal ...``, and a DM that looks like a signal), and
what of them may pre-fill the form: never a youth's identity."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.inline_fields import _word_before, split_fields
from bot.typed_signal import (
    BUTTON_VALUE_LIMIT,
    button_value,
    from_button_value,
    looks_like_signal,
    prefill_from,
    typed_signal,
)
from core.errors import InvalidInput
from core.fields import LABELS, collect_fields, parse_signal

pytestmark = pytest.mark.database_independent  # CI runs it once, on SQLite


def test_key_value_pairs_in_order() -> None:
    fields = split_fields("bsn=111222333 code=laag gemeente=Groningen")
    assert fields.pairs == [("bsn", "111222333"), ("code", "laag"), ("gemeente", "Groningen")]
    assert fields.problems == []


def test_values_run_to_the_next_label_and_colons_inside_values_stay() -> None:
    text = (
        "BSN: 111 222 333 Geboortedatum=01-05-2016 reden uitstel=dreiging: vader thuis "
        "geïnformeerd=uitgesteld"
    )
    assert split_fields(text).pairs == [
        ("BSN", "111 222 333"),
        ("Geboortedatum", "01-05-2016"),
        ("reden uitstel", "dreiging: vader thuis"),
        ("geïnformeerd", "uitgesteld"),
    ]


def test_two_word_labels_and_their_spellings() -> None:
    pairs = split_fields("bsn ouder=100000009, 123456782 Reden_uitstel=x bsn-ouder=1").pairs
    assert pairs == [
        ("bsn ouder", "100000009, 123456782"),
        ("Reden_uitstel", "x"),
        ("bsn-ouder", "1"),
    ]


def test_quotes_are_dropped() -> None:
    assert split_fields("kenmerk=\"DOSSIER 12\" folder='ja'").pairs == [
        ("kenmerk", "DOSSIER 12"),
        ("folder", "ja"),
    ]
    assert split_fields("kenmerk=“A B”").pairs == [("kenmerk", "A B")]


def test_text_that_is_no_field_is_reported_never_swallowed() -> None:
    fields = split_fields("hallo bsn=111222333 geboortdatum=01-05-2016 code=laag")
    assert fields.pairs == [("bsn", "111222333"), ("code", "laag")]
    assert fields.problems == [
        "de tekst vóór het eerste veld is geen veld; schrijf velden als veld=waarde, "
        "bijvoorbeeld code=laag",
        "'geboortdatum' is geen veld dat wij kennen",
    ]


def test_empty_text_has_no_fields() -> None:
    assert split_fields("   ").pairs == [] and split_fields("").problems == []


def test_the_pairs_parse_as_a_signal_with_the_shared_field_parsing() -> None:
    text = (
        "bsn=111222333 geboortedatum=01-05-2016 gemeente=Groningen code=Urgent "
        "geinformeerd=uitgesteld reden uitstel=veiligheid looptijd=6 mnd folder=ja"
    )
    command = parse_signal(collect_fields(split_fields(text).pairs))
    assert command.code == "urgent"
    assert command.term_months == 6
    assert command.postpone_reason == "veiligheid"
    assert command.leaflet_given
    with pytest.raises(InvalidInput) as refused:
        parse_signal(collect_fields(split_fields("bsn=111222333 code=laag").pairs))
    assert refused.value.field == "Geboortedatum"


def test_a_field_given_twice_prefills_the_first_and_says_so() -> None:
    prefill, notes = prefill_from("code=laag code=urgent kenmerk=K1")
    assert prefill == {"code": "laag", "kenmerk": "K1"}
    assert notes == ["Code: staat er twee keer in, met verschillende waarden."]


BSN = "123456782"  # passes the elfproef


@pytest.mark.parametrize(
    "text",
    [
        "signaal code=laag",
        "Signaal: graag een signaal",
        f"bsn={BSN} code=laag",
        "code=laag geboortedatum=01-05-2016",
        "naam: Fenna Testkind",
        "voornaam=Fenna code=laag",  # an identity label that is no field of ours
        f"kun je {BSN} even nakijken?",
        "kun je 123 456 782 even nakijken?",
    ],
)
def test_what_looks_like_a_signal(text: str) -> None:
    assert looks_like_signal(text)


@pytest.mark.parametrize("text", ["hallo, wat kan ik hier?", "help", "afwezig tot 01-06-2025", ""])
def test_what_does_not_look_like_a_signal(text: str) -> None:
    assert not looks_like_signal(text)


def test_typed_text_prefills_only_fields_that_identify_no_one() -> None:
    typed = typed_signal(
        f"bsn={BSN} geboortedatum=01-05-2016 naam=Fenna code=laag gemeente=Groningen "
        "kenmerk=K1 reden uitstel=veiligheid"
    )
    assert typed.prefill == {
        "code": "laag",
        "gemeente": "Groningen",
        "kenmerk": "K1",
        "reden_uitstel": "veiligheid",
    }
    assert typed.withheld == ["bsn", "geboortedatum", "naam"]
    assert typed.carries_identity
    [note] = typed.form_notes()
    assert note.startswith("BSN, Geboortedatum, Naam: identiteitsgegevens nemen wij niet over")
    assert not typed_signal("code=laag gemeente=Groningen").carries_identity


def test_a_bare_bsn_is_neither_prefilled_nor_quoted_in_the_forms_notes() -> None:
    typed = typed_signal(f"{BSN} code=laag")
    assert typed.prefill == {"code": "laag"}
    assert typed.carries_identity
    assert all(BSN not in note for note in typed.form_notes())
    assert typed.form_notes()[-1].startswith("BSN: identiteitsgegevens")


def test_the_dm_buttons_value_carries_no_identity_and_no_free_text() -> None:
    typed = typed_signal(
        f"signaal bsn={BSN} geboortedatum=01-05-2016 code=laag gemeente=Groningen "
        "geinformeerd=uitgesteld reden uitstel=vader dreigt einddatum=01-01-2030"
    )
    value = button_value(typed)
    for secret in (BSN, "01-05-2016", "vader dreigt"):
        assert secret not in value
    back = from_button_value(value)
    assert back.prefill == {
        "gemeente": "Groningen",
        "code": "laag",
        "einddatum": "01-01-2030",
        "geinformeerd": "uitgesteld",
    }
    assert back.withheld == ["bsn", "geboortedatum"]
    assert back.left_out == ["reden_uitstel"]
    assert back.form_notes() == [
        "BSN, Geboortedatum: identiteitsgegevens nemen wij niet over uit een chatbericht of "
        "uit de tekst achter /signaal; vul ze hier in",
        "Reden uitstel: niet overgenomen uit uw chatbericht; vul het hier in",
    ]


def test_a_kenmerk_written_like_a_bsn_stays_out_of_the_button() -> None:
    back = from_button_value(button_value(typed_signal(f"signaal kenmerk={BSN} code=laag")))
    assert back.prefill == {"code": "laag"} and back.left_out == ["kenmerk"]


def test_a_forged_button_value_prefills_no_identity_either() -> None:
    forged = json.dumps({"velden": {"bsn": BSN, "naam": "X", "code": "laag"}, "identiteit": 3})
    back = from_button_value(forged)
    assert back.prefill == {"code": "laag"} and back.withheld == []
    assert from_button_value("geen json").prefill == {}


def test_a_button_value_stays_within_slacks_limit_whatever_was_typed() -> None:
    text = " ".join(f"{label}=" + "ë" * 3000 for label in LABELS)
    value = button_value(typed_signal(text))
    assert len(value) <= BUTTON_VALUE_LIMIT
    assert from_button_value(value).prefill["kenmerk"] == "ë" * 200


# What "the word before a label" means, as the plain regular expression says it (searched
# forwards it takes time quadratic in a long value, so the code reads backwards instead).
_WORD_THEN_SPACE_AT_END = re.compile(r"([^\W\d_][\w\-]*)\s+$")
_PIECES = st.sampled_from(
    ["a", "ë", "9", "_", "-", " ", "\t", "\u00a0", ",", ";", "=", ":", "²", "reden", "uitstel",
     "bsn", "ouder", "x" * 70, " " * 70]
)  # fmt: skip


@settings(max_examples=300)
@given(st.lists(_PIECES, max_size=12).map("".join), st.integers(min_value=0, max_value=1000))
def test_the_word_before_a_label_is_what_the_plain_pattern_finds(text: str, cut: int) -> None:
    end = min(cut, len(text))
    expected = _WORD_THEN_SPACE_AT_END.search(text, 0, end)
    assert _word_before(text, end) == (
        (expected.start(1), expected.group(1)) if expected is not None else None
    )


def test_two_word_labels_are_read_after_long_values_and_long_white_space() -> None:
    fields = split_fields("code=laag" + " " * 5000 + "reden uitstel: " + "ë" * 5000)
    assert [label for label, _ in fields.pairs] == ["code", "reden uitstel"]
    assert fields.pairs[1][1] == "ë" * 5000
