"""Looking at one youth: ``youth show`` (the operator's overview) and ``access-report`` (inzage,
AVG art. 15). Both are views of a youth's data, so the core logs each one."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console

from core.access_report import access_report, youth_overview
from core.cli.rights import YouthOption, youth_selector
from core.cli.runtime import (
    JsonFlag,
    local_date,
    local_time,
    open_core,
    operator_actor,
    print_json,
    say,
    stdout,
    table,
)
from core.cli.signals import (
    BirthDateOption,
    BsnOption,
    ByOption,
    SexOption,
    SurnameOption,
    acting,
    youth_identity,
)
from core.rights_requests import record_death

youth_app = typer.Typer(
    help="A youth's involvements, signals, matches and coordination.", no_args_is_help=True
)

OperatorOption = Annotated[
    str | None,
    typer.Option("--by", help="Your e-mail, for the logboek (default: your login name)."),
]


def register(app: typer.Typer) -> None:
    app.add_typer(youth_app, name="youth")
    app.command("access-report")(access_report_command)


@youth_app.command("deceased")
def youth_deceased(
    by: ByOption,
    youth: YouthOption = None,
    bsn: BsnOption = None,
    surname: SurnameOption = None,
    birth_date: BirthDateOption = None,
    sex: SexOption = None,
    json_output: JsonFlag = False,
) -> None:
    """On notice of death: purge everything about the youth at once (region admin only)."""
    selector = youth_selector(youth, bsn=bsn, surname=surname, birth_date=birth_date, sex=sex)
    with open_core() as core:
        outcome = core.run(
            lambda session: record_death(
                selector, session=session, config=core.config, actor=acting(session, by)
            )
        )
    if json_output:
        print_json(asdict(outcome))
        return
    say(
        f"Alle gegevens van jongere {outcome.youth} zijn verwijderd ({outcome.signals} "
        f"signalen, {outcome.registrations} registraties); het logboek houdt dit vast, zonder "
        "identiteit.",
        "green",
    )


@youth_app.command("show")
def youth_show(
    bsn: BsnOption = None,
    surname: SurnameOption = None,
    birth_date: BirthDateOption = None,
    sex: SexOption = None,
    by: OperatorOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Everything the index holds about one youth (logged as a view)."""
    identity = youth_identity(None, None, bsn=bsn, birth_date=birth_date, surname=surname, sex=sex)
    with open_core() as core:
        overview = core.run(
            lambda session: youth_overview(
                identity, session=session, config=core.config, actor=operator_actor(by)
            )
        )
        tz = core.tz
    if json_output:
        print_json(overview)
        return
    print_overview(stdout(), overview, tz)


def print_overview(console: Console, overview: dict[str, Any], tz: ZoneInfo) -> None:
    youth = overview.get("youth") or {}
    console.print(
        f"Jongere {youth.get('reference', '')} — gemeente {youth.get('municipality', '')}"
    )

    involvements = table("Betrokken instellingen", "Instelling", "Kenmerk", "Sinds")
    for item in overview["involvements"]:
        involvements.add_row(
            item.get("institution_name") or item["institution"],
            item["reference"],
            local_time(item["since"], tz),
        )
    console.print(involvements if overview["involvements"] else "Geen betrokken instellingen.")

    signals = table(
        "Signalen",
        "Signaal",
        "Instelling",
        "Hulpverlener",
        "Code",
        "Status",
        "Geplaatst",
        "Einddatum",
    )
    for item in overview["signals"]:
        signals.add_row(
            item["id"],
            item["institution"],
            item["professional"],
            item["code"],
            item["status"],
            local_time(item["placed_at"], tz),
            local_date(item["ends_on"]),
        )
    console.print(signals if overview["signals"] else "Geen signalen.")

    matches = table("Matches", "Match", "Signalen", "Soort")
    for item in overview["matches"]:
        matches.add_row(
            item["id"], ", ".join(item["signals"]), "gezinsmatch" if item["family"] else "match"
        )
    console.print(matches if overview["matches"] else "Geen matches.")

    coordination = overview.get("coordination")
    if coordination is None:
        console.print("Geen procescoördinatie.")
        return
    details = table("Procescoördinatie", "", "")
    details.show_header = False
    details.add_row("Nummer", str(coordination.get("id", "")))
    details.add_row("Instelling", coordination["institution"])
    details.add_row("Status", coordination["status"])
    details.add_row("Reactie uiterlijk", local_time(coordination["due"], tz))
    if coordination.get("rule"):
        details.add_row("Beslisregel", coordination["rule"])
    if coordination.get("reason"):
        details.add_row("Waarom", coordination["reason"])
    console.print(details)


def access_report_command(
    bsn: BsnOption = None,
    surname: SurnameOption = None,
    birth_date: BirthDateOption = None,
    sex: SexOption = None,
    by: OperatorOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Subject-access report (inzage, AVG art. 15).

    Which institutions registered or signalled the youth, when, and the status; who received a
    notification about the youth, and who looked at the youth's data, with dates.
    """
    identity = youth_identity(None, None, bsn=bsn, birth_date=birth_date, surname=surname, sex=sex)
    with open_core() as core:
        report = core.run(
            lambda session: access_report(
                identity, session=session, config=core.config, actor=operator_actor(by)
            )
        )
        tz = core.tz
    if json_output:
        print_json(report)
        return
    console = stdout()
    youth = report.get("youth") or {}
    console.print(f"Inzageoverzicht verwijsindex {report.get('region', '')}")
    console.print(
        f"Jongere {youth.get('reference', '')}, gemeente {youth.get('municipality', '')}; "
        f"opgesteld op {local_time(report.get('generated_at'), tz)}"
    )
    if not report["lines"]:
        console.print("Er zijn geen registraties of signalen.")
    else:
        lines = table(None, "Soort", "Instelling", "Datum", "Status", "Einddatum")
        for line in report["lines"]:
            lines.add_row(
                line["kind"],
                line["institution"],
                local_date(line["date"]),
                line["status"],
                local_date(line.get("ends_on")),
            )
        console.print(lines)
    if report["notifications"]:
        told = table("Berichten over de jongere", "Aan", "Persoon", "Over", "Soort", "Datum", "")
        for item in report["notifications"]:
            told.add_row(
                item["institution"],
                item["person"],
                item["about"],
                item["kind"],
                local_date(item["date"]),
                item["status"],
            )
        console.print(told)
    if report["views"]:
        looked = table("Ingezien", "Instelling", "Persoon", "Wat", "Datum")
        for item in report["views"]:
            looked.add_row(
                item["institution"], item["person"], item["what"], local_date(item["date"])
            )
        console.print(looked)
