"""Free text may hold no bidirectional or control character (issue 9, item 12), and a refusal
repeats what a user typed only when it cannot identify a youth (item 8): one home for each,
``core.free_text`` and ``core.fields``, used by every path."""

from __future__ import annotations

from datetime import date

import pytest

from core.coordination import decline_coordination
from core.errors import InvalidInput
from core.fields import is_identity_field, parse_date, parse_registration, quote_label, quote_value
from core.free_text import OMITTED, check_free_text, quote
from core.identity import YouthIdentity, check_no_bsn
from core.registration import RegisterYouth, register_youth
from core.signals import PlaceSignal, check_signal
from tests.core.conftest import BSN_A, BSN_PARENT, CoreDriver
from tests.core.test_coordination import GGD, act, assigned_to_ggd, the_coordination

INVISIBLE = [*"\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"]
CONTROLS = ["\x00", "\x07", "\x1b", "\x7f", "\x85"]


@pytest.mark.parametrize("char", [*INVISIBLE, *CONTROLS])
def test_a_bidi_or_control_character_is_refused_naming_field_and_code_point(char: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_free_text(f"GGD-{char}2024", "Kenmerk")
    assert refused.value.field == "Kenmerk"
    assert refused.value.message == (
        f"bevat onzichtbare of stuurtekens (U+{ord(char):04X})"
    )
    assert str(refused.value) == f"Kenmerk: {refused.value.message}"


def test_tab_is_text_and_a_line_break_only_where_the_field_may_have_lines() -> None:
    check_free_text("geen\tcapaciteit", "Kenmerk")
    check_free_text("geen capaciteit\nvolgende week wel", "reden", multiline=True)
    with pytest.raises(InvalidInput, match="U\\+000A"):
        check_free_text("GGD\n2024", "Kenmerk")


def test_the_kenmerk_of_a_registration_and_of_a_signal_is_checked(core: CoreDriver) -> None:
    child = YouthIdentity(bsn=BSN_A, birth_date=date(2016, 5, 1))
    with pytest.raises(InvalidInput, match="U\\+202E") as refused:
        core.run(
            lambda s: register_youth(
                RegisterYouth(child, "Groningen", "GGD-\u202e2400"),
                session=s,
                config=core.config,
                actor=core.institution("ggd-groningen"),
            )
        )
    assert refused.value.field == "Kenmerk"
    signal = PlaceSignal(child, "Groningen", "laag", "ja", reference="K-\u2066")
    with pytest.raises(InvalidInput, match="U\\+2066") as refused:
        check_signal(signal, config=core.config, today=date(2026, 3, 2))
    assert refused.value.field == "Kenmerk"
    postponed = PlaceSignal(child, "Groningen", "laag", "uitgesteld", postpone_reason="\u202ex")
    with pytest.raises(InvalidInput, match="U\\+202E") as refused:
        check_signal(postponed, config=core.config, today=date(2026, 3, 2))
    assert refused.value.field == "Reden uitstel"


def test_a_name_is_checked_on_every_path_that_makes_an_identity() -> None:
    with pytest.raises(InvalidInput, match="U\\+202E") as refused:
        YouthIdentity(bsn=BSN_A, birth_date=date(2016, 5, 1), name="Testkind\u202eGeheimnaam")
    assert refused.value.field == "Naam" and "Geheimnaam" not in refused.value.message
    with pytest.raises(InvalidInput) as refused:
        YouthIdentity(birth_date=date(2016, 5, 1), surname="De\u2067Bruin", sex="V")
    assert refused.value.field == "Achternaam"


def test_a_decline_reason_is_checked(core: CoreDriver) -> None:
    assigned_to_ggd(core)
    with pytest.raises(InvalidInput, match="U\\+202E") as refused:
        act(core, decline_coordination, core.institution(GGD), "geen \u202ecapaciteit")
    assert refused.value.field == "reden"
    assert the_coordination(core).institution_id == GGD


@pytest.mark.parametrize(
    "label", ["BSN", "bsn_ouder", "Naam", "Voornaam", "achternaam", "Geboortedatum", "Adres"]
)
def test_an_identity_field_is_never_quoted(label: str) -> None:
    assert is_identity_field(label)
    assert quote_value(label, "iets") == OMITTED


@pytest.mark.parametrize(
    "text", [BSN_A, "111 222 333", "111.222.333", "11122233", "01-05-2016", "1/5/2016"]
)
def test_what_could_be_a_bsn_or_birth_date_is_not_quoted(text: str) -> None:
    assert quote(f"code {text}") == OMITTED
    assert quote_value("Code", text) == OMITTED
    assert quote_label(f"Kind {text}") is None


def test_other_text_is_quoted_and_a_date_in_a_date_field_too() -> None:
    assert quote("zeer-hoog") == "'zeer-hoog'"
    assert quote_value("Einddatum", "31-02-2027", dates=True) == "'31-02-2027'"
    assert quote_label("Geboortedatm") == "'Geboortedatm'"
    with pytest.raises(InvalidInput) as refused:
        parse_date("31-02-2016", "Geboortedatum")
    assert refused.value.message == "is geen bestaande datum"


@pytest.mark.parametrize(
    "reference",
    [f"GGD-{BSN_A}", f"d {BSN_A[:3]} {BSN_A[3:6]} {BSN_A[6:]}", f"K{BSN_PARENT}", "123456782"],
)
def test_a_kenmerk_holding_a_bsn_is_refused(reference: str) -> None:
    fields = {"BSN": BSN_A, "Geboortedatum": "01-05-2016", "Gemeente": "Groningen"}
    request = parse_registration({**fields, "Kenmerk": reference, "BSN ouder": BSN_PARENT})
    assert isinstance(request, RegisterYouth)
    with pytest.raises(InvalidInput) as refused:
        check_no_bsn(request.reference, "Kenmerk", (BSN_A, BSN_PARENT))
    assert refused.value.field == "Kenmerk" and BSN_A not in refused.value.message


@pytest.mark.parametrize("reference", ["GGD-2024-0042", "123456789", "2024-000123456"])
def test_a_kenmerk_without_a_bsn_is_fine(reference: str) -> None:
    check_no_bsn(reference, "Kenmerk", (BSN_A, BSN_PARENT))
