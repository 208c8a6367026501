"""Signal fields written on one line (``/signaal ...`` and ``signaal ...`` by DM)."""

from __future__ import annotations

import pytest

from bot.inline_fields import split_fields
from bot.signals import prefill_from
from core.errors import InvalidInput
from core.fields import collect_fields, parse_signal


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
        "'hallo' is geen veld; schrijf velden als veld=waarde, bijvoorbeeld code=laag",
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
