"""The covenant file: the bundled example loads, and every kind of mistake is named by key path."""

from __future__ import annotations

import base64
from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError

from core.covenant import (
    Covenant,
    CovenantError,
    CovenantProblem,
    bundled_covenant_path,
    load_covenant,
    load_covenant_text,
)

EXAMPLE = bundled_covenant_path().read_text(encoding="utf-8")


def variant(*edits: tuple[str, str]) -> str:
    """The example with each (old, new) replaced exactly once; old must occur in it."""
    text = EXAMPLE
    for old, new in edits:
        assert old in text, f"test is stale: {old!r} not in the example"
        text = text.replace(old, new, 1)
    return text


def problems(text: str) -> dict[str, str]:
    with pytest.raises(CovenantError) as caught:
        load_covenant_text(text, source="test.toml")
    return {problem.path: problem.message for problem in caught.value.problems}


# --- the bundled example ------------------------------------------------------------------------


def test_bundled_example_loads() -> None:
    covenant = load_covenant(bundled_covenant_path())

    assert covenant.region.name == "Groningen"
    assert covenant.default_term_months == 12
    assert covenant.region.archive_years == 5
    assert covenant.region.reminder_lead_days == 7
    assert covenant.region.timezone == "Europe/Amsterdam"
    assert [(c.code, c.response_working_days) for c in covenant.signal_codes] == [
        ("laag", 5),
        ("urgent", 1),
    ]
    assert [r.name for r in covenant.coordination_rules] == [
        "jonge-kinderen-ggd",
        "stad-groningen-wij",
        "elders-sociaal-team",
    ]
    assert covenant.coordination_rules[-1].unconditional


def test_bundled_example_has_the_parties_other_tests_rely_on() -> None:
    covenant = load_covenant(bundled_covenant_path())

    assert {m.name for m in covenant.municipalities} >= {
        "Groningen",
        "Westerkwartier",
        "Midden-Groningen",
        "Het Hogeland",
    }
    coordinating = {i.id for i in covenant.institutions if i.may_coordinate}
    assert coordinating == {
        "ggd-groningen",
        "wij-groningen",
        "sociaal-team-westerkwartier",
        "sociaal-team-midden-groningen",
    }
    jeugdhulp = covenant.institution("jeugdhulp-noord")
    assert jeugdhulp is not None and not jeugdhulp.may_coordinate
    plusteam, cat = jeugdhulp.team("Plusteam"), jeugdhulp.team("CAT")
    assert plusteam is not None and plusteam.may_signal
    assert cat is not None and not cat.may_signal
    # outside the city the fallback rule needs a coordinating sociaal team in every municipality
    social_teams = [i for i in covenant.institutions_of_kind("sociaal-team") if i.may_coordinate]
    for municipality in ("Westerkwartier", "Midden-Groningen", "Het Hogeland"):
        assert any(team.serves(municipality) for team in social_teams), municipality
    roles = {role for p in covenant.professionals for role in p.roles}
    assert roles == {"professional", "senior", "secretariat", "institution-admin", "admin"}
    # only fictional, reserved domains (RFC 2606)
    addresses = [p.email for p in covenant.professionals]
    addresses += [i.notification_email for i in covenant.institutions]
    addresses += [m.contact_email for m in covenant.municipalities]
    assert all(address.endswith(".example") for address in addresses)


def test_lookups_are_case_insensitive() -> None:
    covenant = load_covenant(bundled_covenant_path())

    assert covenant.municipality("het hogeland") is covenant.municipality("Het Hogeland")
    assert covenant.municipality("Assen") is None
    professional = covenant.professional(" E.Meijer@Jeugdhulp-Noord.example ")
    assert professional is not None and professional.team == "Plusteam"
    assert covenant.signal_code("URGENT") is not None
    assert covenant.signal_code("hoog") is None
    assert covenant.institution("ggd-groningen") is not None
    assert covenant.institution("ggd-drenthe") is None


def test_emails_are_stored_lowercase() -> None:
    covenant = load_covenant_text(
        variant(
            ('email = "a.devries@', 'email = "A.deVries@'),
            (
                'allowed_senders = ["@ggd-groningen.example"]',
                'allowed_senders = ["@GGD-Groningen.example"]',
            ),
        )
    )

    assert covenant.professionals[0].email == "a.devries@ggd-groningen.example"
    institution = covenant.institution("ggd-groningen")
    assert institution is not None
    assert institution.allowed_senders == ("@ggd-groningen.example",)


def test_covenant_is_frozen() -> None:
    covenant = load_covenant(bundled_covenant_path())

    with pytest.raises(ValidationError):
        covenant.region.name = "Drenthe"  # type: ignore[misc]


# --- values -------------------------------------------------------------------------------------


def test_wrong_type_is_named_by_path() -> None:
    found = problems(variant(("term_months = 12", 'term_months = "12"')))

    assert set(found) == {"region.default_signal_term_months"}
    assert "moet een geheel getal zijn" in found["region.default_signal_term_months"]
    assert "gevonden: '12' (tekst)" in found["region.default_signal_term_months"]


def test_term_beyond_two_years_is_refused() -> None:
    found = problems(variant(("term_months = 12", "term_months = 25")))

    assert "mag hoogstens 24 zijn" in found["region.default_signal_term_months"]


def test_archive_years_must_be_five() -> None:
    found = problems(variant(("archive_years = 5", "archive_years = 7")))

    assert "moet 5 zijn" in found["region.archive_years"]


def test_unknown_timezone_is_refused() -> None:
    found = problems(variant(('timezone = "Europe/Amsterdam"', 'timezone = "Europe/Groningen"')))

    assert "geen bekende tijdzone" in found["region.timezone"]


def test_closing_days_are_read_as_dates_and_a_bad_one_is_named() -> None:
    example = "closing_days = []"
    covenant = load_covenant_text(
        variant((example, "closing_days = [2026-12-28, 2026-12-29]")), source="test.toml"
    )
    assert covenant.region.closing_days == (date(2026, 12, 28), date(2026, 12, 29))
    found = problems(variant((example, 'closing_days = ["28-12"]')))
    assert "moet een datum zijn" in found["region.closing_days[0]"]


def test_bool_field_wants_a_boolean() -> None:
    # institutions[6] is the police; its only team is teams[0]
    team = 'name = "Jeugd"\n  may_signal = '
    found = problems(variant((team + "true", team + '"ja"')))

    assert set(found) == {"institutions[6].teams[0].may_signal"}
    assert "moet true of false zijn" in found["institutions[6].teams[0].may_signal"]


def test_unknown_key_is_refused_with_a_suggestion() -> None:
    found = problems(
        variant(
            (
                "may_coordinate = false              # the police",
                "may_cordinate = false              # the police",
            )
        )
    )

    assert "bedoelt u 'may_coordinate'?" in found["institutions[6].may_cordinate"]


def test_unknown_top_level_section_is_refused() -> None:
    found = problems(EXAMPLE + "\n[regoin]\nname = 'x'\n")

    assert "bedoelt u 'region'?" in found["regoin"]


def test_missing_required_key() -> None:
    found = problems(variant(('contact_email = "verwijsindex@westerkwartier.example"\n', "")))

    assert found == {"municipalities[1].contact_email": "verplichte sleutel ontbreekt"}


def test_bad_email_is_refused() -> None:
    found = problems(
        variant(('email = "p.bakker@ggd-groningen.example"', 'email = "p.bakker@ggd-groningen"'))
    )

    assert "geen geldig e-mailadres" in found["professionals[1].email"]


def test_bad_allowed_sender_is_refused() -> None:
    found = problems(
        variant(
            (
                'allowed_senders = ["@wij-groningen.example"]',
                'allowed_senders = ["wij-groningen.example"]',
            )
        )
    )

    assert "'@domein'" in found["institutions[1].allowed_senders[0]"]


def test_empty_allowed_senders_is_refused() -> None:
    found = problems(
        variant(('allowed_senders = ["@wij-groningen.example"]', "allowed_senders = []"))
    )

    assert found == {"institutions[1].allowed_senders": "mag niet leeg zijn"}


def test_unknown_institution_kind_is_refused() -> None:
    found = problems(variant(('kind = "onderwijs"', 'kind = "school"')))

    assert "'onderwijs'" in found["institutions[5].kind"]
    assert "'school' (tekst)" in found["institutions[5].kind"]


def test_unknown_role_is_refused() -> None:
    found = problems(variant(('roles = ["secretariat"]', 'roles = ["secretary"]')))

    assert "'secretariat'" in found["professionals[3].roles[0]"]


def test_institution_id_must_be_a_slug() -> None:
    found = problems(
        variant(
            ('id = "politie-noord-nederland"', 'id = "Politie NN"'),
            ('institution = "politie-noord-nederland"', 'institution = "Politie NN"'),
        )
    )

    assert set(found) == {"institutions[6].id", "professionals[17].institution"}
    assert "kleine letters, cijfers en losse streepjes" in found["institutions[6].id"]


def test_age_range_must_be_in_order() -> None:
    found = problems(variant(("min_age = 0\nmax_age = 4", "min_age = 4\nmax_age = 0")))

    assert found == {"coordination_rules[0].max_age": "max_age 0 is lager dan min_age 4"}


def test_age_beyond_youth_is_refused() -> None:
    found = problems(variant(("max_age = 4", "max_age = 23")))

    assert "mag hoogstens 22 zijn" in found["coordination_rules[0].max_age"]


def test_smtp_auth_hash_format_is_checked() -> None:
    salt = base64.b64encode(b"0123456789abcdef").decode()
    digest = base64.b64encode(bytes(32)).decode()
    good = f'smtp_auth_hash = "pbkdf2_sha256$600000${salt}${digest}"'
    covenant = load_covenant_text(variant(("# smtp_auth_hash = ", good + "\n# ")))
    institution = covenant.institution("jeugdhulp-noord")
    assert institution is not None and institution.smtp_auth_hash is not None

    found = problems(variant(("# smtp_auth_hash = ", 'smtp_auth_hash = "secret"\n# ')))
    assert "pbkdf2_sha256" in found["institutions[4].smtp_auth_hash"]
    found = problems(variant(("# smtp_auth_hash = ", good.replace("600000", "many") + "\n# ")))
    assert "iteraties" in found["institutions[4].smtp_auth_hash"]


# --- cross-references ---------------------------------------------------------------------------


def test_unknown_team_is_named_by_path() -> None:
    # professionals[13] is Joost van Dijk of the CAT
    found = problems(variant(('team = "CAT"\nroles', 'team = "Crisisteam"\nroles')))

    assert set(found) == {"professionals[13].team"}
    assert (
        "team 'Crisisteam' bestaat niet in instelling 'jeugdhulp-noord'"
        in found["professionals[13].team"]
    )
    assert "'CAT'" in found["professionals[13].team"]


def test_team_of_another_institution_is_refused() -> None:
    found = problems(variant(('team = "JGZ"', 'team = "Plusteam"')))

    assert (
        "team 'Plusteam' bestaat niet in instelling 'ggd-groningen'"
        in found["professionals[0].team"]
    )


def test_unknown_institution_of_professional() -> None:
    found = problems(variant(('institution = "wij-groningen"', 'institution = "wij-groninge"')))

    assert "bedoelt u 'wij-groningen'?" in found["professionals[6].institution"]


def test_unknown_municipality_in_institution() -> None:
    found = problems(
        variant(('municipalities = ["Westerkwartier"]', 'municipalities = ["Westerkwartir"]'))
    )

    assert set(found) == {"institutions[2].municipalities[0]"}
    assert "gemeente 'Westerkwartir' bestaat niet" in found["institutions[2].municipalities[0]"]
    assert "bedoelt u 'Westerkwartier'?" in found["institutions[2].municipalities[0]"]


def test_unknown_municipality_in_rule() -> None:
    found = problems(
        variant(
            (
                'municipalities = ["Groningen"]\nassign_kind',
                'municipalities = ["groningen"]\nassign_kind',
            )
        )
    )

    assert "bedoelt u 'Groningen'?" in found["coordination_rules[1].municipalities[0]"]


def test_duplicate_institution_id() -> None:
    found = problems(
        variant(
            ('id = "scholengroep-noordkust"', 'id = "ggd-groningen"'),
            ('institution = "scholengroep-noordkust"', 'institution = "ggd-groningen"'),
        )
    )

    assert "instellings-id 'ggd-groningen' komt dubbel voor" in found["institutions[5].id"]
    assert "institutions[0]" in found["institutions[5].id"]


def test_duplicate_professional_email_ignores_case() -> None:
    found = problems(
        variant(
            (
                'email = "p.bakker@ggd-groningen.example"',
                'email = "A.deVries@ggd-groningen.example"',
            )
        )
    )

    assert (
        "e-mailadres 'a.devries@ggd-groningen.example' komt dubbel voor"
        in found["professionals[1].email"]
    )


def test_duplicate_team_in_institution() -> None:
    found = problems(variant(('name = "WIJ-team Vinkhuizen"', 'name = "WIJ-team Centrum"')))

    assert "team 'WIJ-team Centrum' komt dubbel voor" in found["institutions[1].teams[2].name"]


def test_duplicate_signal_code() -> None:
    found = problems(variant(('code = "urgent"', 'code = "laag"')))

    assert "signaalcode 'laag' komt dubbel voor" in found["signal_codes[1].code"]


# --- coordination rules -------------------------------------------------------------------------


FALLBACK = 'name = "elders-sociaal-team"\n'


def test_missing_fallback_rule() -> None:
    found = problems(variant((FALLBACK, FALLBACK + "min_age = 5\n")))

    assert set(found) == {"coordination_rules[2]"}
    assert "mag geen voorwaarden hebben" in found["coordination_rules[2]"]


def test_rule_after_the_fallback_is_unreachable() -> None:
    late = '\n[[coordination_rules]]\nname = "te-laat"\nmin_age = 10\nassign_kind = "ggd"\n'
    found = problems(EXAMPLE + late)

    assert set(found) == {"coordination_rules[3]"}
    assert "'te-laat' wordt nooit bereikt" in found["coordination_rules[3]"]


def test_assign_kind_needs_a_coordinating_institution() -> None:
    found = problems(variant(('assign_kind = "wij-team"', 'assign_kind = "jeugdhulp"')))

    assert set(found) == {"coordination_rules[1].assign_kind"}
    assert "geen instelling van soort 'jeugdhulp'" in found["coordination_rules[1].assign_kind"]


def test_assign_kind_without_any_institution_of_that_kind() -> None:
    found = problems(variant(('assign_kind = "wij-team"', 'assign_kind = "veilig-thuis"')))

    assert "may_coordinate = true" in found["coordination_rules[1].assign_kind"]


def test_rules_need_at_least_one() -> None:
    head, _, _ = EXAMPLE.partition("[[coordination_rules]]")
    found = problems(head)

    assert found == {"coordination_rules": "verplichte sleutel ontbreekt"}


# --- the error itself ---------------------------------------------------------------------------


def test_toml_syntax_error_names_the_line() -> None:
    text = variant(("reminder_lead_days = 7", "reminder_lead_days 7"))
    line = text.splitlines().index("reminder_lead_days 7") + 1

    with pytest.raises(CovenantError) as caught:
        load_covenant_text(text, source="regio.toml")

    (problem,) = caught.value.problems
    assert problem.line == line
    assert problem.column is not None
    assert str(caught.value).startswith(f"regio.toml: regel {line}, kolom ")
    assert "ongeldige TOML" in str(caught.value)


def test_str_lists_every_problem_with_the_file_name() -> None:
    text = variant(
        ("default_signal_term_months = 12", "default_signal_term_months = 0"),
        ("reminder_lead_days = 7", "reminder_lead_days = 90"),
    )

    with pytest.raises(CovenantError) as caught:
        load_covenant_text(text, source="regio.toml")

    lines = str(caught.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("regio.toml: region.default_signal_term_months: ")
    assert lines[1].startswith("regio.toml: region.reminder_lead_days: ")


def test_cross_reference_errors_carry_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "convenant.toml"
    path.write_text(variant(('team = "JGZ"', 'team = "JGZ 0-4"')), encoding="utf-8")

    with pytest.raises(CovenantError) as caught:
        load_covenant(path)

    assert str(caught.value).startswith(
        f"{path}: professionals[0].team (hulpverlener 'a.devries@ggd-groningen.example'): "
        "team 'JGZ 0-4' bestaat niet"
    )


def test_missing_file_is_a_covenant_error(tmp_path: Path) -> None:
    with pytest.raises(CovenantError) as caught:
        load_covenant(tmp_path / "nope.toml")

    assert "niet te lezen" in caught.value.problems[0].message


def test_problem_str_without_path() -> None:
    assert str(CovenantProblem("", "kapot")) == "(het hele bestand): kapot"


def test_constructing_directly_checks_cross_references() -> None:
    import tomllib

    data = tomllib.loads(variant(('team = "JGZ"', 'team = "Nergens"')))
    with pytest.raises(CovenantError) as caught:
        Covenant.model_validate(data)

    assert caught.value.problems[0].path == "professionals[0].team"


def test_slack_channel_must_be_an_id() -> None:
    channel = '# slack_channel = "C05GGDVWI01"'
    covenant = load_covenant_text(variant((channel, channel[2:])))
    institution = covenant.institution("ggd-groningen")
    assert institution is not None and institution.slack_channel == "C05GGDVWI01"

    found = problems(variant((channel, 'slack_channel = "#verwijsindex"  #')))
    assert "geen Slack-kanaal-ID" in found["institutions[0].slack_channel"]


# --- one pass: every problem at once ------------------------------------------------------------

BAD_EMAIL = (
    'notification_email = "verwijsindex@ggd-groningen.example"',
    'notification_email = "verwijsindex-bij-ggd"',
)
UNKNOWN_INSTITUTION = ('institution = "wij-groningen"', 'institution = "wij-stad"')
DUPLICATE_ID = ('id = "scholengroep-noordkust"', 'id = "jeugdhulp-noord"')


def errors_of(text: str) -> list[CovenantProblem]:
    with pytest.raises(CovenantError) as caught:
        load_covenant_text(text, source="test.toml")
    return caught.value.problems


def test_value_and_reference_problems_are_reported_in_one_pass() -> None:
    found = errors_of(
        variant(
            BAD_EMAIL,
            UNKNOWN_INSTITUTION,
            DUPLICATE_ID,
            ('institution = "scholengroep-noordkust"', 'institution = "jeugdhulp-noord"'),
        )
    )

    assert [(p.path, p.item) for p in found] == [
        ("institutions[0].notification_email", "instelling 'ggd-groningen'"),
        ("institutions[5].id", "instelling 'jeugdhulp-noord'"),
        ("professionals[6].institution", "hulpverlener 's.jansen@wij-groningen.example'"),
    ]
    email, duplicate, unknown = (p.message for p in found)
    assert email == "'verwijsindex-bij-ggd' is geen geldig e-mailadres (verwacht: naam@domein.nl)"
    assert duplicate == (
        "instellings-id 'jeugdhulp-noord' komt dubbel voor (al gebruikt bij institutions[4])"
    )
    assert unknown.startswith("instelling 'wij-stad' bestaat niet (bekend: 'ggd-groningen', ")
    assert str(found[0]) == (
        "institutions[0].notification_email (instelling 'ggd-groningen'): "
        "'verwijsindex-bij-ggd' is geen geldig e-mailadres (verwacht: naam@domein.nl)"
    )


def test_an_item_with_a_bad_value_still_counts_for_the_references_to_it() -> None:
    # The GGD's mailbox and the Westerkwartier's contact are broken; their professionals, teams
    # and the institutions serving the municipality are not reported as unknown.
    found = problems(
        variant(
            BAD_EMAIL,
            (
                'contact_email = "verwijsindex@westerkwartier.example"',
                'contact_email = "westerkwartier"',
            ),
        )
    )

    assert set(found) == {
        "institutions[0].notification_email",
        "municipalities[1].contact_email",
    }


def test_an_item_with_a_bad_value_is_still_checked_for_its_references() -> None:
    found = problems(
        variant(
            ('email = "s.jansen@wij-groningen.example"', 'email = "s.jansen"'),
            UNKNOWN_INSTITUTION,
            ('municipalities = ["Westerkwartier"]', 'municipalities = ["Westerkwartir"]'),
            ('name = "Sociaal Team Westerkwartier"', 'name = "  "'),
        )
    )

    assert set(found) == {
        "institutions[2].name",
        "institutions[2].municipalities[0]",
        "professionals[6].email",
        "professionals[6].institution",
    }


def test_a_broken_id_is_reported_once_not_as_a_broken_reference_too() -> None:
    found = problems(variant(('id = "jeugdhulp-noord"', 'id = "Jeugdhulp Noord"')))

    # The professionals of that institution name it "jeugdhulp-noord": they refer to an
    # institution the file does not have (it has "Jeugdhulp Noord"), a problem of their own.
    assert "kleine letters" in found["institutions[4].id"]
    references = {path: message for path, message in found.items() if path != "institutions[4].id"}
    assert len(references) == 6
    assert all(
        path.startswith("professionals[") and path.endswith("].institution") for path in references
    )
    assert all("instelling 'jeugdhulp-noord' bestaat niet" in m for m in references.values())


def test_a_reference_to_an_id_written_wrongly_in_both_places_is_not_doubted() -> None:
    found = problems(
        variant(
            ('id = "politie-noord-nederland"', 'id = "Politie NN"'),
            ('institution = "politie-noord-nederland"', 'institution = "Politie NN"'),
        )
    )

    assert set(found) == {"institutions[6].id", "professionals[17].institution"}
    assert "bestaat niet" not in found["professionals[17].institution"]


def test_a_broken_kind_or_may_coordinate_does_not_make_a_rule_unassignable() -> None:
    kind = problems(variant(('kind = "ggd"', 'kind = "gdd"')))
    may = problems(variant(("may_coordinate = true", 'may_coordinate = "ja"')))

    assert set(kind) == {"institutions[0].kind"}
    assert set(may) == {"institutions[0].may_coordinate"}


def test_a_misspelt_key_does_not_read_as_its_default() -> None:
    # Had may_cordinate been read as "may_coordinate = false", no GGD would coordinate and the
    # rule for young children could never assign anyone; had the city rule's condition been
    # dropped, that rule would look unconditional and the last one unreachable.
    found = problems(
        variant(
            ("may_coordinate = true", "may_cordinate = true"),
            (
                'municipalities = ["Groningen"]\nassign_kind',
                'municipalitie = ["Groningen"]\nassign_kind',
            ),
        )
    )

    assert set(found) == {
        "institutions[0].may_cordinate",
        "coordination_rules[1].municipalitie",
    }


def test_a_broken_rule_is_still_checked_for_its_place() -> None:
    late = '\n[[coordination_rules]]\nname = "te-laat"\nmin_age = 30\nassign_kind = "ggd"\n'
    found = problems(EXAMPLE + late)

    assert set(found) == {"coordination_rules[3].min_age", "coordination_rules[3]"}
    assert "'te-laat' wordt nooit bereikt" in found["coordination_rules[3]"]


def test_a_section_that_is_no_array_skips_the_checks_that_need_it() -> None:
    head, _, rest = EXAMPLE.partition("[[institutions]]")
    professionals = rest[rest.index("# --- Professionals") :]
    found = problems("institutions = 3\n" + head + professionals)

    # No professional's institution and no rule's assign_kind can be checked: nothing on them.
    assert found == {"institutions": "verwacht een array, gevonden: 3 (geheel getal)"}


def test_problems_come_in_the_order_of_the_file() -> None:
    found = errors_of(
        variant(
            ('code = "urgent"', 'code = "laag"'),
            UNKNOWN_INSTITUTION,
            ("term_months = 12", "term_months = 25"),
            BAD_EMAIL,
        )
    )

    assert [p.path for p in found] == [
        "region.default_signal_term_months",
        "signal_codes[1].code",
        "institutions[0].notification_email",
        "professionals[6].institution",
    ]
    assert [p.item for p in found] == [
        None,
        "signaalcode 'laag'",
        "instelling 'ggd-groningen'",
        "hulpverlener 's.jansen@wij-groningen.example'",
    ]
