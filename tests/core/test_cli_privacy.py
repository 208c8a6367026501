"""The CLI's refusals repeat no identity either (issue 9, item 8) and refuse bidirectional and
control characters in free text (item 12), like every other path: ``verwijsindex`` run in
process against a database of the test's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.core.test_cli import BSN, GGD_PRO, Cli, cli, place  # noqa: F401  (the cli fixture)

BIRTH = "01-05-2016"


def _refused(result: object, *values: str) -> str:
    output = f"{getattr(result, 'stdout', '')}\n{getattr(result, 'stderr', '')}"
    assert getattr(result, "exit_code", None) == 1, output
    for value in values:
        assert value not in output, f"{value!r} repeated in {output!r}"
    return output


@pytest.mark.parametrize(
    ("extra", "values", "field"),
    [
        (("--birth-date", f"{BIRTH}x"), (BIRTH,), "Geboortedatum"),
        (("--birth-date", "31-02-2016"), ("31-02-2016",), "Geboortedatum"),
        (("--birth-date", BIRTH, "--name", "Testkind\u202eGeheimnaam"), ("Geheimnaam",), "Naam"),
        (("--birth-date", BIRTH, "--reference", f"K-{BSN}"), (BSN,), "Kenmerk"),
        (("--birth-date", BIRTH, "--reference", "K-\u202e1"), (), "U+202E"),
        (("--birth-date", BIRTH, "--code", BSN), (BSN,), "Code"),
    ],
)
def test_a_refused_signal_names_the_field_without_the_value(
    cli: Cli,  # noqa: F811
    extra: tuple[str, ...],
    values: tuple[str, ...],
    field: str,
) -> None:
    result = place(cli, GGD_PRO, "laag", *extra)
    assert field in _refused(result, *values)


def test_a_csv_without_header_is_refused_without_its_first_row(
    cli: Cli,  # noqa: F811
    tmp_path: Path,
) -> None:
    csv_file = tmp_path / "zonder-kop.csv"
    csv_file.write_text(f"{BSN};Testkind Geheimnaam;{BIRTH};Groningen;K-1\n")
    result = cli("import", "--institution", "ggd-groningen", str(csv_file))
    assert "geen kopregel" in _refused(result, BSN, "Geheimnaam", BIRTH)
