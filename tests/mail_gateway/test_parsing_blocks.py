"""Key–value bodies: blocks, their line numbers, and what is (not) a field."""

from __future__ import annotations

from datetime import date

import pytest

from core.registration import DeregisterYouth, RegisterYouth
from core.signals import PlaceSignal
from mail_gateway.parsing.blocks import (
    BlockResult,
    parse_registration_blocks,
    parse_signal_blocks,
    read_blocks,
)

THREE_BLOCKS_BAD_MIDDLE = """\
Beste verwijsindex,

Hierbij drie aanmeldingen:

BSN: 123456782
Geboortedatum: 01-05-2016
Gemeente: Groningen
Kenmerk: K-1
---
BSN: 123456789
Geboortedatum: 02-06-2015
Gemeente: Groningen
---
bsn = 111222333
GEBOORTEDATUM = 2014-07-03
gemeente = Westerkwartier
Hulpverlener = Jan.Jansen@WIJ-Groningen.nl
BSN ouder: 100000009

Met vriendelijke groet,
Jan Jansen
WIJ Groningen
Tel: 050 123 4567
"""


def _register(result: BlockResult) -> RegisterYouth:
    assert result.refusal is None, result.refusal
    assert isinstance(result.command, RegisterYouth)
    return result.command


def test_three_blocks_with_a_bad_one_in_the_middle() -> None:
    first, middle, last = parse_registration_blocks(THREE_BLOCKS_BAD_MIDDLE)

    assert first.line == 5
    command = _register(first)
    assert command.identity.bsn == "123456782"
    assert command.identity.birth_date == date(2016, 5, 1)
    assert command.municipality == "Groningen"
    assert command.reference == "K-1"

    assert middle.line == 10
    assert middle.command is None
    assert middle.refusal is not None
    assert middle.refusal.field == "BSN"
    assert middle.refusal.line == 10
    assert middle.refusal.reason  # the core's Dutch reason

    assert last.line == 14
    command = _register(last)
    assert command.identity.bsn == "111222333"
    assert command.identity.birth_date == date(2014, 7, 3)
    assert command.municipality == "Westerkwartier"
    assert command.professional_email == "jan.jansen@wij-groningen.nl"
    assert command.parent_bsns == ("100000009",)


def test_lines_outside_blocks_are_recorded_not_refused() -> None:
    body = read_blocks(THREE_BLOCKS_BAD_MIDDLE)
    assert [block.line for block in body.blocks] == [5, 10, 14]
    assert [(ignored.line, ignored.text) for ignored in body.ignored] == [
        (1, "Beste verwijsindex,"),
        (3, "Hierbij drie aanmeldingen:"),
        (20, "Met vriendelijke groet,"),
        (21, "Jan Jansen"),
        (22, "WIJ Groningen"),
        (23, "Tel: 050 123 4567"),
    ]


def test_refusal_names_the_line_of_the_field_when_it_is_not_the_first() -> None:
    text = "BSN: 123456782\nGeboortedatum: 31-02-2016\nGemeente: Groningen\n"
    (result,) = parse_registration_blocks(text)
    assert result.refusal is not None
    assert result.refusal.field == "Geboortedatum"
    assert result.refusal.line == 2
    assert result.refusal.reason.startswith("regel 2: ")
    assert "geen bestaande datum" in result.refusal.reason


def test_missing_field_refuses_at_the_block() -> None:
    (result,) = parse_registration_blocks("\n\nBSN: 123456782\nGemeente: Groningen\n")
    assert result.line == 3
    assert result.refusal is not None
    assert (result.refusal.field, result.refusal.line) == ("Geboortedatum", 3)
    assert result.refusal.reason == "ontbreekt"


def test_unknown_field_inside_a_block_refuses_only_that_block() -> None:
    text = (
        "BSN: 123456782\nGeboortedatm: 01-05-2016\nGemeente: Groningen\n---\n"
        "BSN: 111222333\nGeboortedatum: 01-05-2016\nGemeente: Groningen\n"
    )
    bad, good = parse_registration_blocks(text)
    assert bad.refusal is not None
    assert bad.refusal.field == "Geboortedatm"
    assert bad.refusal.line == 2
    assert bad.refusal.reason == "regel 2: 'Geboortedatm' is geen veld dat wij kennen"
    assert _register(good).identity.bsn == "111222333"
    assert good.line == 5


def test_misspelt_last_field_touching_the_block_refuses_it() -> None:
    text = "BSN: 123456782\nGeboortedatum: 01-05-2016\nGemeente: Groningen\nEinddatm: 01-01-2027\n"
    (result,) = parse_registration_blocks(text)
    assert result.refusal is not None
    assert (result.refusal.field, result.refusal.line) == ("Einddatm", 4)


def test_missing_colon_refuses_the_block() -> None:
    text = "BSN: 123456782\nGeboortedatum 01-05-2016\nGemeente: Groningen\n"
    (result,) = parse_registration_blocks(text)
    assert result.refusal is not None
    assert result.refusal.field == "Geboortedatum"
    assert result.refusal.line == 2
    assert "mist een ':' of '='" in result.refusal.reason


def test_free_text_inside_a_block_refuses_it() -> None:
    text = "BSN: 123456782\nzie ook het dossier\nGeboortedatum: 01-05-2016\nGemeente: Groningen\n"
    (result,) = parse_registration_blocks(text)
    assert result.refusal is not None
    assert result.refusal.line == 2
    assert result.refusal.reason.startswith("regel 2: deze regel is geen veld")
    assert "dossier" not in result.refusal.reason  # free text is never repeated


def test_closing_directly_under_the_fields_is_not_a_field() -> None:
    text = "BSN: 123456782\nGeboortedatum: 01-05-2016\nGemeente: Groningen\nGroet, Jan\n"
    (result,) = parse_registration_blocks(text)
    assert _register(result).municipality == "Groningen"


def test_deregistration_block() -> None:
    (result,) = parse_registration_blocks(
        "Actie: afmelden\nBSN: 123456782\nGeboortedatum: 01-05-2016\n"
    )
    assert isinstance(result.command, DeregisterYouth)
    assert result.command.identity.bsn == "123456782"


def test_youth_without_bsn() -> None:
    (result,) = parse_registration_blocks(
        "Achternaam: de Vries\nGeslacht: v\nGeboortedatum: 01-05-2016\nGemeente: Groningen\n"
    )
    identity = _register(result).identity
    assert (identity.bsn, identity.surname, identity.sex) == (None, "de Vries", "V")


def test_repeated_parent_field_and_label_spellings() -> None:
    text = (
        "bsn: 123456782\ngeboortedatum: 01-05-2016\nGEMEENTE: Groningen\n"
        "BSN ouder: 100000009\nbsn_ouder: 111222333\nBsn-Ouder = 012345672\n"
    )
    (result,) = parse_registration_blocks(text)
    assert _register(result).parent_bsns == ("100000009", "111222333", "012345672")


def test_same_field_twice_with_different_values_is_refused() -> None:
    text = "BSN: 123456782\nGeboortedatum: 01-05-2016\nGemeente: Groningen\nGemeente: Haren\n"
    (result,) = parse_registration_blocks(text)
    assert result.refusal is not None
    assert result.refusal.field == "Gemeente"


def test_values_keep_colons_and_equals_signs() -> None:
    text = "BSN: 123456782\nGeboortedatum: 01-05-2016\nGemeente: Groningen\nKenmerk: A:1=2\n"
    (result,) = parse_registration_blocks(text)
    assert _register(result).reference == "A:1=2"


def test_crlf_nbsp_and_tabs() -> None:
    text = "BSN:\xa0123456782\r\nGeboortedatum:\t01-05-2016\r\n\tGemeente :  Groningen \r\n"
    (result,) = parse_registration_blocks(text)
    assert _register(result).municipality == "Groningen"


def test_body_without_fields_has_no_blocks() -> None:
    assert parse_registration_blocks("Hallo,\n\nzie bijlage.\n\nGroet") == []
    assert parse_registration_blocks("") == []
    assert read_blocks("Hallo").ignored[0].line == 1


def test_separator_lines_of_any_length_and_empty_blocks() -> None:
    text = "---\nBSN: 123456782\nGeboortedatum: 01-05-2016\nGemeente: Groningen\n-----\n---\n"
    (result,) = parse_registration_blocks(text)
    assert result.line == 2


# --- where the sender's text ends --------------------------------------------------------------


def test_signature_delimiter_ends_the_body() -> None:
    text = (
        "BSN: 123456782\nGeboortedatum: 01-05-2016\nGemeente: Groningen\n-- \n"
        "Jan Jansen\nTel: 050 123 4567\nBSN: 999999999\n"
    )
    results = parse_registration_blocks(text)
    assert len(results) == 1
    assert _register(results[0]).identity.bsn == "123456782"


def test_quoted_history_of_a_reply_is_not_read() -> None:
    text = (
        "BSN: 123456782\nGeboortedatum: 01-05-2016\nGemeente: Groningen\n\n"
        "Op ma 23 nov. 2026 om 10:12 schreef Verwijsindex <registratie@verwijsindex.nl>:\n"
        "> Regel 3 — BSN: ongeldig\n> BSN: 123456789\n> Geboortedatum: 02-06-2015\n"
    )
    results = parse_registration_blocks(text)
    assert len(results) == 1
    assert results[0].refusal is None


def test_outlook_forward_header_block_is_not_read() -> None:
    text = (
        "Graag registreren:\n\nBSN: 123456782\nGeboortedatum: 01-05-2016\nGemeente: Groningen\n\n"
        "Van: Piet <piet@ggd.nl>\nVerzonden: maandag 23 november 2026 10:12\n"
        "Aan: Jan <jan@wij.nl>\nOnderwerp: aanmelding\n\nBSN: 111222333\n"
    )
    results = parse_registration_blocks(text)
    assert len(results) == 1
    assert results[0].refusal is None


def test_quoted_lines_stop_the_body() -> None:
    text = "BSN: 123456782\nGeboortedatum: 01-05-2016\nGemeente: Groningen\n> Gemeente: Haren\n"
    (result,) = parse_registration_blocks(text)
    assert _register(result).municipality == "Groningen"


# --- signals -----------------------------------------------------------------------------------

SIGNAL = """\
BSN: 123456782
Geboortedatum: 01-05-2016
Gemeente: Groningen
Code: urgent
Geïnformeerd: uitgesteld
Reden uitstel: veiligheid
Looptijd: 12 maanden
Folder: ja
"""


def test_signal_block() -> None:
    (result,) = parse_signal_blocks(SIGNAL)
    assert result.refusal is None
    command = result.command
    assert isinstance(command, PlaceSignal)
    assert (command.code, command.informed, command.term_months) == ("urgent", "uitgesteld", 12)
    assert command.postpone_reason == "veiligheid"
    assert command.leaflet_given is True


def test_signal_label_spellings() -> None:
    text = SIGNAL.replace("Geïnformeerd", "geinformeerd").replace("Reden uitstel", "reden_uitstel")
    (result,) = parse_signal_blocks(text)
    assert isinstance(result.command, PlaceSignal)


@pytest.mark.parametrize(
    ("change", "field", "line"),
    [
        (("Code: urgent\n", ""), "Code", 1),
        (("Folder: ja", "Folder: misschien"), "Folder", 8),
        (("Looptijd: 12 maanden", "Looptijd: een jaar"), "Looptijd", 7),
    ],
)
def test_signal_refusals_name_field_and_line(
    change: tuple[str, str], field: str, line: int
) -> None:
    (result,) = parse_signal_blocks(SIGNAL.replace(*change))
    assert result.refusal is not None
    assert (result.refusal.field, result.refusal.line) == (field, line)


def test_signal_with_both_end_date_and_term() -> None:
    (result,) = parse_signal_blocks(SIGNAL + "Einddatum: 01-01-2027\n")
    assert result.refusal is not None
    assert result.refusal.field == "Looptijd"
