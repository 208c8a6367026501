"""Informing and consent from the console (CONTRACT §6): ``signal place --informed nee`` needs
``--postpone-reason``; ``signal informed S-N`` and ``match consent M-N <status>`` act for the
professional named by ``--by``, checked and logged as on Slack or by mail."""

from __future__ import annotations

from typer.testing import Result

from tests.core.test_cli import (  # noqa: F401  (cli: the fixture)
    BSN,
    GGD_COLLEAGUE,
    GGD_PRO,
    WIJ_PRO,
    Cli,
    as_json,
    cli,
    ok,
)


def place(cli: Cli, by: str, informed: str, *extra: str) -> Result:  # noqa: F811
    return cli(
        "signal", "place", "--by", by, "--bsn", BSN, "--birth-date", "01-05-2016",
        "--municipality", "Groningen", "--code", "laag", "--informed", informed, *extra,
    )  # fmt: skip


def test_not_informed_needs_a_reason_and_is_recorded_later(cli: Cli) -> None:  # noqa: F811
    refused = place(cli, GGD_PRO, "nee")
    assert refused.exit_code == 1 and "Reden uitstel" in refused.stderr
    placed = as_json(place(cli, GGD_PRO, "nee", "--postpone-reason", "nog geen contact", "--json"))
    number = placed["signal"]
    other = cli("signal", "informed", number, "--by", GGD_COLLEAGUE)
    assert other.exit_code == 1 and "alleen de melder" in other.stderr
    done = as_json(cli("signal", "informed", number, "--by", GGD_PRO, "--json"))
    assert (done["signal"], done["informed_party"], done["changed"]) == (number, "ouders", True)
    again = ok(cli("signal", "informed", number, "--by", GGD_PRO))
    assert "stond al als geïnformeerd vastgelegd" in again.stdout


def test_match_consent_from_the_console(cli: Cli) -> None:  # noqa: F811
    for by in (GGD_PRO, WIJ_PRO):
        ok(place(cli, by, "ja"))
    given = as_json(cli("match", "consent", "M-1", "gegeven", "--by", GGD_PRO, "--json"))
    assert (given["institution"], given["status"], given["changed"]) == (
        "GGD Groningen",
        "given",
        True,
    )
    said = ok(cli("match", "consent", "M-1", "REFUSED", "--by", WIJ_PRO))
    assert "Vastgelegd: toestemming geweigerd voor WIJ Groningen bij M-1." in said.stdout
    wrong = cli("match", "consent", "M-1", "misschien", "--by", GGD_PRO)
    assert wrong.exit_code == 2
    stranger = cli("match", "consent", "M-1", "gegeven", "--by", GGD_COLLEAGUE)
    assert stranger.exit_code == 1 and "geen deelnemer" in stranger.stderr
