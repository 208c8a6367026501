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
    assert "integer" in found["region.default_signal_term_months"]
    assert "'12' (string)" in found["region.default_signal_term_months"]


def test_term_beyond_two_years_is_refused() -> None:
    found = problems(variant(("term_months = 12", "term_months = 25")))

    assert "less than or equal to 24" in found["region.default_signal_term_months"]


def test_archive_years_must_be_five() -> None:
    found = problems(variant(("archive_years = 5", "archive_years = 7")))

    assert "must be 5" in found["region.archive_years"]


def test_unknown_timezone_is_refused() -> None:
    found = problems(variant(('timezone = "Europe/Amsterdam"', 'timezone = "Europe/Groningen"')))

    assert "time zone" in found["region.timezone"]


def test_closing_days_are_read_as_dates_and_a_bad_one_is_named() -> None:
    example = "closing_days = []"
    covenant = load_covenant_text(
        variant((example, "closing_days = [2026-12-28, 2026-12-29]")), source="test.toml"
    )
    assert covenant.region.closing_days == (date(2026, 12, 28), date(2026, 12, 29))
    found = problems(variant((example, 'closing_days = ["28-12"]')))
    assert "valid date" in found["region.closing_days[0]"]


def test_bool_field_wants_a_boolean() -> None:
    # institutions[6] is the police; its only team is teams[0]
    team = 'name = "Jeugd"\n  may_signal = '
    found = problems(variant((team + "true", team + '"ja"')))

    assert set(found) == {"institutions[6].teams[0].may_signal"}
    assert "boolean" in found["institutions[6].teams[0].may_signal"]


def test_unknown_key_is_refused_with_a_suggestion() -> None:
    found = problems(
        variant(
            (
                "may_coordinate = false              # the police",
                "may_cordinate = false              # the police",
            )
        )
    )

    assert "did you mean 'may_coordinate'?" in found["institutions[6].may_cordinate"]


def test_unknown_top_level_section_is_refused() -> None:
    found = problems(EXAMPLE + "\n[regoin]\nname = 'x'\n")

    assert "did you mean 'region'?" in found["regoin"]


def test_missing_required_key() -> None:
    found = problems(variant(('contact_email = "verwijsindex@westerkwartier.example"\n', "")))

    assert found == {"municipalities[1].contact_email": "required key is missing"}


def test_bad_email_is_refused() -> None:
    found = problems(
        variant(('email = "p.bakker@ggd-groningen.example"', 'email = "p.bakker@ggd-groningen"'))
    )

    assert "not a valid e-mail address" in found["professionals[1].email"]


def test_bad_allowed_sender_is_refused() -> None:
    found = problems(
        variant(
            (
                'allowed_senders = ["@wij-groningen.example"]',
                'allowed_senders = ["wij-groningen.example"]',
            )
        )
    )

    assert "'@domain'" in found["institutions[1].allowed_senders[0]"]


def test_empty_allowed_senders_is_refused() -> None:
    found = problems(
        variant(('allowed_senders = ["@wij-groningen.example"]', "allowed_senders = []"))
    )

    assert found == {"institutions[1].allowed_senders": "must not be empty"}


def test_unknown_institution_kind_is_refused() -> None:
    found = problems(variant(('kind = "onderwijs"', 'kind = "school"')))

    assert "'onderwijs'" in found["institutions[5].kind"]
    assert "'school' (string)" in found["institutions[5].kind"]


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

    assert "lowercase letters, digits and single hyphens" in found["institutions[6].id"]


def test_age_range_must_be_in_order() -> None:
    found = problems(variant(("min_age = 0\nmax_age = 4", "min_age = 4\nmax_age = 0")))

    assert found == {"coordination_rules[0].max_age": "max_age 0 is below min_age 4"}


def test_age_beyond_youth_is_refused() -> None:
    found = problems(variant(("max_age = 4", "max_age = 23")))

    assert "less than or equal to 22" in found["coordination_rules[0].max_age"]


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
    assert "iterations" in found["institutions[4].smtp_auth_hash"]


# --- cross-references ---------------------------------------------------------------------------


def test_unknown_team_is_named_by_path() -> None:
    # professionals[13] is Joost van Dijk of the CAT
    found = problems(variant(('team = "CAT"\nroles', 'team = "Crisisteam"\nroles')))

    assert set(found) == {"professionals[13].team"}
    assert (
        "unknown team 'Crisisteam' in institution 'jeugdhulp-noord'"
        in found["professionals[13].team"]
    )
    assert "'CAT'" in found["professionals[13].team"]


def test_team_of_another_institution_is_refused() -> None:
    found = problems(variant(('team = "JGZ"', 'team = "Plusteam"')))

    assert (
        "unknown team 'Plusteam' in institution 'ggd-groningen'" in found["professionals[0].team"]
    )


def test_unknown_institution_of_professional() -> None:
    found = problems(variant(('institution = "wij-groningen"', 'institution = "wij-groninge"')))

    assert "did you mean 'wij-groningen'?" in found["professionals[6].institution"]


def test_unknown_municipality_in_institution() -> None:
    found = problems(
        variant(('municipalities = ["Westerkwartier"]', 'municipalities = ["Westerkwartir"]'))
    )

    assert set(found) == {"institutions[2].municipalities[0]"}
    assert "unknown municipality 'Westerkwartir'" in found["institutions[2].municipalities[0]"]
    assert "did you mean 'Westerkwartier'?" in found["institutions[2].municipalities[0]"]


def test_unknown_municipality_in_rule() -> None:
    found = problems(
        variant(
            (
                'municipalities = ["Groningen"]\nassign_kind',
                'municipalities = ["groningen"]\nassign_kind',
            )
        )
    )

    assert "did you mean 'Groningen'?" in found["coordination_rules[1].municipalities[0]"]


def test_duplicate_institution_id() -> None:
    found = problems(
        variant(
            ('id = "scholengroep-noordkust"', 'id = "ggd-groningen"'),
            ('institution = "scholengroep-noordkust"', 'institution = "ggd-groningen"'),
        )
    )

    assert "duplicate institution id 'ggd-groningen'" in found["institutions[5].id"]
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

    assert "duplicate e-mail address" in found["professionals[1].email"]


def test_duplicate_team_in_institution() -> None:
    found = problems(variant(('name = "WIJ-team Vinkhuizen"', 'name = "WIJ-team Centrum"')))

    assert "duplicate team" in found["institutions[1].teams[2].name"]


def test_duplicate_signal_code() -> None:
    found = problems(variant(('code = "urgent"', 'code = "laag"')))

    assert "duplicate code 'laag'" in found["signal_codes[1].code"]


# --- coordination rules -------------------------------------------------------------------------


FALLBACK = 'name = "elders-sociaal-team"\n'


def test_missing_fallback_rule() -> None:
    found = problems(variant((FALLBACK, FALLBACK + "min_age = 5\n")))

    assert set(found) == {"coordination_rules[2]"}
    assert "must have no conditions" in found["coordination_rules[2]"]


def test_rule_after_the_fallback_is_unreachable() -> None:
    late = '\n[[coordination_rules]]\nname = "te-laat"\nmin_age = 10\nassign_kind = "ggd"\n'
    found = problems(EXAMPLE + late)

    assert set(found) == {"coordination_rules[3]"}
    assert "'te-laat' is unreachable" in found["coordination_rules[3]"]


def test_assign_kind_needs_a_coordinating_institution() -> None:
    found = problems(variant(('assign_kind = "wij-team"', 'assign_kind = "jeugdhulp"')))

    assert set(found) == {"coordination_rules[1].assign_kind"}
    assert "no institution of kind 'jeugdhulp'" in found["coordination_rules[1].assign_kind"]


def test_assign_kind_without_any_institution_of_that_kind() -> None:
    found = problems(variant(('assign_kind = "wij-team"', 'assign_kind = "veilig-thuis"')))

    assert "may_coordinate = true" in found["coordination_rules[1].assign_kind"]


def test_rules_need_at_least_one() -> None:
    head, _, _ = EXAMPLE.partition("[[coordination_rules]]")
    found = problems(head)

    assert found == {"coordination_rules": "required key is missing"}


# --- the error itself ---------------------------------------------------------------------------


def test_toml_syntax_error_names_the_line() -> None:
    text = variant(("reminder_lead_days = 7", "reminder_lead_days 7"))
    line = text.splitlines().index("reminder_lead_days 7") + 1

    with pytest.raises(CovenantError) as caught:
        load_covenant_text(text, source="regio.toml")

    (problem,) = caught.value.problems
    assert problem.line == line
    assert problem.column is not None
    assert str(caught.value).startswith(f"regio.toml: line {line}, column ")
    assert "invalid TOML" in str(caught.value)


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

    assert str(caught.value).startswith(f"{path}: professionals[0].team: unknown team")


def test_missing_file_is_a_covenant_error(tmp_path: Path) -> None:
    with pytest.raises(CovenantError) as caught:
        load_covenant(tmp_path / "nope.toml")

    assert "cannot read" in caught.value.problems[0].message


def test_problem_str_without_path() -> None:
    assert str(CovenantProblem("", "broken")) == "(top level): broken"


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
    assert "not a Slack channel ID" in found["institutions[0].slack_channel"]
