"""The registration and signal fields of CONTRACT §4, as every transport hands them to the core:
labels as users write them, dates in two formats, repeatable parent BSNs, and errors in Dutch
that name the field."""

from __future__ import annotations

from datetime import date

import pytest

from core.errors import InvalidInput
from core.fields import (
    canonical_label,
    collect_fields,
    parse_date,
    parse_identity,
    parse_parent_bsns,
    parse_registration,
    parse_signal,
)
from core.registration import DeregisterYouth, RegisterYouth
from tests.core.conftest import BSN_A, BSN_B, BSN_C, BSN_PARENT


def signal_fields(**overrides: str) -> dict[str, str]:
    """A complete signal as a mail body would carry it (labels as people write them)."""
    fields = {
        "BSN": BSN_A,
        "Geboortedatum": "01-05-2016",
        "Gemeente": "Groningen",
        "Code": "laag",
        "Geïnformeerd": "ja",
    }
    fields.update(overrides)
    return {label: value for label, value in fields.items() if value != "-"}


def registration_fields(**overrides: str) -> dict[str, str]:
    fields = {
        "BSN": BSN_A,
        "Geboortedatum": "2016-05-01",
        "Gemeente": "Groningen",
        "Kenmerk": "GGD-1",
    }
    fields.update(overrides)
    return {label: value for label, value in fields.items() if value != "-"}


# --- dates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "01-05-2016",
        "1-5-2016",
        "01/05/2016",
        "01.05.2016",
        "2016-05-01",
        "2016-5-1",
        " 2016-05-01 ",
    ],
)
def test_both_date_formats_are_read(text: str) -> None:
    assert parse_date(text, "Geboortedatum") == date(2016, 5, 1)


def test_29_february_of_a_leap_year_is_a_date() -> None:
    assert parse_date("29-02-2016", "Geboortedatum") == date(2016, 2, 29)


@pytest.mark.parametrize(
    "text", ["31-02-2016", "29-02-2015", "2016-13-01", "00-01-2016", "32-1-2016"]
)
def test_impossible_dates_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_date(text, "Einddatum")
    assert caught.value.field == "Einddatum"
    assert caught.value.message == f"'{text}' is geen bestaande datum"


@pytest.mark.parametrize("text", ["31-02-2016", "1-5-20016", "mei 2016"])
def test_a_refused_birth_date_is_not_repeated_in_the_answer(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_registration({"BSN": BSN_A, "Geboortedatum": text, "Gemeente": "Groningen"})
    assert caught.value.field == "Geboortedatum"
    assert text not in caught.value.message and "datum" in caught.value.message


@pytest.mark.parametrize(
    "text", ["1 mei 2016", "2016-05", "01-05-16", "01-05/2016", "20160501", "morgen", "01-05-2016x"]
)
def test_text_that_is_not_a_date_is_refused_with_the_formats(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_date(text, "Einddatum")
    assert caught.value.field == "Einddatum"
    assert "gebruik DD-MM-JJJJ of JJJJ-MM-DD" in caught.value.message


def test_long_wrong_date_is_shortened_in_the_message() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_date("x" * 200, "Einddatum")
    assert len(caught.value.message) < 100


# --- labels -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "key"),
    [
        ("BSN", "bsn"),
        ("bsn", "bsn"),
        ("BSN ouder", "bsn_ouder"),
        ("bsn_ouder", "bsn_ouder"),
        ("Bsn-Ouder", "bsn_ouder"),
        ("  BSN   ouder ", "bsn_ouder"),
        ("Geïnformeerd", "geinformeerd"),
        ("GEÏNFORMEERD", "geinformeerd"),
        ("geinformeerd", "geinformeerd"),
        ("Reden uitstel", "reden_uitstel"),
    ],
)
def test_labels_are_case_accent_and_separator_insensitive(label: str, key: str) -> None:
    assert canonical_label(label) == key


@pytest.mark.parametrize(
    "label", ["BSN", "  BSN   ouder ", "Bsn-Ouder", "GEÏNFORMEERD", "ᴮSN", "Jan de Vries", "x--y"]
)
def test_a_canonical_label_is_its_own_canonical_label(label: str) -> None:
    key = canonical_label(label)
    assert canonical_label(key) == key
    assert canonical_label(label) == key  # the same the second time (remembered or not)


def test_compatibility_forms_fold_all_the_way() -> None:
    # 'ᴮ' decomposes to a capital B, which has to be case-folded as well.
    assert canonical_label("ᴮSN") == "bsn"
    assert parse_identity({"ᴮSN": BSN_A, "Geboortedatum": "01-05-2016"}).bsn == BSN_A


def test_only_spellings_of_known_labels_are_remembered() -> None:
    from core import fields

    assert canonical_label("Piet Jansen") == "piet_jansen"
    assert canonical_label("BSN-OUDER") == "bsn_ouder"
    assert "Piet Jansen" not in fields._KNOWN_SPELLINGS  # no free text kept in memory
    assert fields._KNOWN_SPELLINGS["BSN-OUDER"] == "bsn_ouder"


def test_registration_reads_identity_and_parents_as_the_separate_parsers_do() -> None:
    fields = registration_fields(**{"BSN": "11122237", "Naam": " Eva ", "BSN ouder": BSN_PARENT})
    request = parse_registration(fields)
    assert isinstance(request, RegisterYouth)
    assert request.identity == parse_identity(fields)
    assert request.parent_bsns == parse_parent_bsns(fields) == (BSN_PARENT,)
    assert request.identity.bsn == "011122237"


def test_signal_labels_may_be_written_in_any_case() -> None:
    shouted = {
        "bsn": BSN_A,
        "GEBOORTEDATUM": "01-05-2016",
        "gemeente": "Groningen",
        "CODE": "Urgent",
        "geinformeerd": "JA",
        "FOLDER": "Ja",
        "looptijd": "6",
    }
    request = parse_signal(shouted)
    assert request.identity.bsn == BSN_A
    assert request.code == "urgent"
    assert request.informed == "ja"
    assert request.leaflet_given is True
    assert request.term_months == 6


@pytest.mark.parametrize("label", ["BSN ouder", "bsn_ouder", "bsn-ouder", "Bsn Ouder"])
def test_parent_bsn_label_in_every_spelling(label: str) -> None:
    request = parse_registration(registration_fields(**{label: BSN_PARENT}))
    assert isinstance(request, RegisterYouth)
    assert request.parent_bsns == (BSN_PARENT,)


# --- parent BSNs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        f"{BSN_PARENT}, {BSN_B}",
        f"{BSN_PARENT};{BSN_B}",
        f"{BSN_PARENT} | {BSN_B}",
        f"{BSN_PARENT} {BSN_B}",
        f"{BSN_PARENT}\n{BSN_B}",
    ],
)
def test_several_parent_bsns_in_one_field(value: str) -> None:
    assert parse_parent_bsns({"bsn_ouder": value}) == (BSN_PARENT, BSN_B)


def test_parent_bsn_label_may_be_repeated() -> None:
    fields = collect_fields(
        [
            ("BSN", BSN_A),
            ("BSN ouder", BSN_PARENT),
            ("bsn_ouder", BSN_B),
            ("BSN-ouder", BSN_C),
        ]
    )
    assert parse_parent_bsns(fields) == (BSN_PARENT, BSN_B, BSN_C)


def test_parent_bsn_named_twice_is_kept_once() -> None:
    assert parse_parent_bsns({"BSN ouder": f"{BSN_PARENT}, {BSN_PARENT}"}) == (BSN_PARENT,)


def test_parent_bsn_written_with_spaces_is_one_number() -> None:
    assert parse_parent_bsns({"BSN ouder": "123 456 782"}) == (BSN_B,)


def test_parent_bsn_of_eight_digits_gets_a_leading_zero() -> None:
    assert parse_parent_bsns({"BSN ouder": "12345672"}) == (BSN_C,)


def test_invalid_parent_bsn_is_refused_naming_the_parent_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_registration(registration_fields(**{"BSN ouder": f"{BSN_PARENT}, 123456789"}))
    assert caught.value.field == "BSN ouder"
    assert "elfproef" in caught.value.message


def test_no_parent_bsn_is_an_empty_tuple() -> None:
    assert parse_parent_bsns({}) == ()
    assert parse_parent_bsns({"BSN ouder": "  "}) == ()


# --- collecting fields ------------------------------------------------------------------------


def test_a_field_given_twice_with_different_values_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        collect_fields([("BSN", BSN_A), ("bsn", BSN_B)])
    assert caught.value.field == "BSN"
    assert "twee keer" in caught.value.message


def test_a_field_given_twice_with_the_same_value_is_fine() -> None:
    assert collect_fields([("Code", "laag"), ("CODE", "laag")]) == {"code": "laag"}


def test_empty_values_count_as_absent() -> None:
    assert collect_fields([("Kenmerk", "  "), ("Kenmerk", "K-1")]) == {"kenmerk": "K-1"}


# --- identity ---------------------------------------------------------------------------------


def test_identity_with_bsn() -> None:
    identity = parse_identity({"BSN": "11122237", "Geboortedatum": "01-05-2016", "Naam": "Eva"})
    assert identity.bsn == "011122237"
    assert identity.birth_date == date(2016, 5, 1)
    assert identity.name == "Eva"


def test_identity_without_bsn_by_surname_birth_date_and_sex() -> None:
    identity = parse_identity(
        {"Achternaam": "de Bruïn", "Geslacht": "v", "Geboortedatum": "2015-06-07"}
    )
    assert identity.bsn is None
    assert (identity.surname, identity.sex) == ("de Bruïn", "V")
    assert identity.name == "de Bruïn"


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"BSN": BSN_A}, "Geboortedatum", "ontbreekt"),
        ({"Geboortedatum": "01-05-2016"}, "BSN", "ontbreekt"),
        ({"Achternaam": "Jansen", "Geboortedatum": "01-05-2016"}, "Geslacht", "ontbreekt"),
        (
            {"Achternaam": "Jansen", "Geslacht": "Q", "Geboortedatum": "01-05-2016"},
            "Geslacht",
            "M, V of X",
        ),
        ({"BSN": "12345678a", "Geboortedatum": "01-05-2016"}, "BSN", "alleen cijfers"),
        ({"BSN": "1234567", "Geboortedatum": "01-05-2016"}, "BSN", "9 cijfers"),
        ({"BSN": BSN_A, "Geboortedatum": "31-04-2016"}, "Geboortedatum", "geen bestaande datum"),
    ],
)
def test_identity_errors_name_the_field(fields: dict[str, str], field: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_identity(fields)
    assert caught.value.field == field
    assert message in caught.value.message


# --- registrations ----------------------------------------------------------------------------


def test_registration_fields() -> None:
    request = parse_registration(
        registration_fields(
            Hulpverlener="A.deVries@GGD-Groningen.example",
            Einddatum="31-12-2026",
            **{"BSN ouder": BSN_PARENT},
        )
    )
    assert isinstance(request, RegisterYouth)
    assert request.identity.bsn == BSN_A
    assert request.municipality == "Groningen"
    assert request.reference == "GGD-1"
    assert request.professional_email == "a.devries@ggd-groningen.example"
    assert request.ends_on == date(2026, 12, 31)
    assert request.parent_bsns == (BSN_PARENT,)


def test_registration_action_defaults_to_aanmelden_and_afmelden_needs_no_municipality() -> None:
    assert isinstance(parse_registration(registration_fields()), RegisterYouth)
    request = parse_registration(registration_fields(Actie="Afmelden", Gemeente="-"))
    assert isinstance(request, DeregisterYouth)
    assert request.identity.bsn == BSN_A


def test_registration_with_unknown_action_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_registration(registration_fields(Actie="verwijderen"))
    assert caught.value.field == "Actie"


def test_registration_without_municipality_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_registration(registration_fields(Gemeente="-"))
    assert (caught.value.field, caught.value.message) == ("Gemeente", "ontbreekt")


# --- signals ----------------------------------------------------------------------------------


def test_signal_fields() -> None:
    request = parse_signal(
        signal_fields(
            Kenmerk="JHN-77",
            Einddatum="2026-09-01",
            Folder="ja",
            **{"Reden uitstel": ""},
        )
    )
    assert request.identity.bsn == BSN_A
    assert request.municipality == "Groningen"
    assert request.code == "laag"
    assert request.informed == "ja"
    assert request.reference == "JHN-77"
    assert request.ends_on == date(2026, 9, 1)
    assert request.term_months is None
    assert request.postpone_reason is None
    assert request.leaflet_given is True


def test_signal_postponed_informing_carries_its_reason() -> None:
    request = parse_signal(
        signal_fields(**{"Geïnformeerd": "Uitgesteld", "Reden uitstel": "veiligheid kind"})
    )
    assert request.informed == "uitgesteld"
    assert request.postpone_reason == "veiligheid kind"


@pytest.mark.parametrize(
    ("missing", "field"),
    [("Gemeente", "Gemeente"), ("Code", "Code"), ("Geïnformeerd", "Geïnformeerd")],
)
def test_signal_without_required_field_is_refused(missing: str, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_signal(signal_fields(**{missing: "-"}))
    assert caught.value.field == field
    assert caught.value.message.startswith("ontbreekt")
    assert str(caught.value).startswith(f"{field}: ontbreekt")


@pytest.mark.parametrize(
    ("text", "months"),
    [("12", 12), ("12 maanden", 12), ("6 mnd", 6), ("1 maand", 1), ("24maanden", 24), ("3 m", 3)],
)
def test_looptijd_in_months(text: str, months: int) -> None:
    assert parse_signal(signal_fields(Looptijd=text)).term_months == months


@pytest.mark.parametrize("text", ["een jaar", "12 weken", "-3", "1,5", "twaalf"])
def test_looptijd_that_is_not_a_number_of_months_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_signal(signal_fields(Looptijd=text))
    assert caught.value.field == "Looptijd"
    assert "maanden" in caught.value.message


def test_looptijd_and_einddatum_together_are_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_signal(signal_fields(Looptijd="6", Einddatum="01-09-2026"))
    assert caught.value.field == "Looptijd"
    assert "niet allebei" in caught.value.message


@pytest.mark.parametrize(
    ("text", "given"),
    [("ja", True), ("Ja", True), ("j", True), ("nee", False), ("NEE", False), ("n", False)],
)
def test_folder_ja_nee(text: str, given: bool) -> None:
    assert parse_signal(signal_fields(Folder=text)).leaflet_given is given


def test_folder_not_mentioned_means_not_given() -> None:
    assert parse_signal(signal_fields()).leaflet_given is False


def test_folder_must_be_ja_or_nee() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_signal(signal_fields(Folder="misschien"))
    assert (caught.value.field, caught.value.message) == ("Folder", "moet ja of nee zijn")


def test_signal_with_impossible_end_date_names_einddatum() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_signal(signal_fields(Einddatum="30-02-2027"))
    assert caught.value.field == "Einddatum"


def test_signal_with_parent_bsns() -> None:
    request = parse_signal(signal_fields(**{"BSN ouder": f"{BSN_PARENT}; {BSN_B}"}))
    assert request.parent_bsns == (BSN_PARENT, BSN_B)


def test_every_field_error_is_dutch_and_names_the_field() -> None:
    """One sweep over the ways a signal can be wrong: each error names a field as users write
    it, and its message is Dutch (no English words a user would trip over)."""
    wrong = [
        signal_fields(Geboortedatum="-"),
        signal_fields(Geboortedatum="gisteren"),
        signal_fields(BSN="123456789"),
        signal_fields(Gemeente="-"),
        signal_fields(Code="-"),
        signal_fields(**{"Geïnformeerd": "-"}),
        signal_fields(Looptijd="lang"),
        signal_fields(Folder="wellicht"),
        signal_fields(Einddatum="2026-02-30"),
        signal_fields(**{"BSN ouder": "abc"}),
    ]
    labels = {
        "Geboortedatum",
        "BSN",
        "Gemeente",
        "Code",
        "Geïnformeerd",
        "Looptijd",
        "Folder",
        "Einddatum",
        "BSN ouder",
    }
    english = {"missing", "invalid", "must", "required", "error", "not a"}
    for fields in wrong:
        with pytest.raises(InvalidInput) as caught:
            parse_signal(fields)
        assert caught.value.field in labels, fields
        assert not any(word in caught.value.message.lower() for word in english), caught.value
