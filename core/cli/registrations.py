"""``import --institution ID FILE``: a batch of registrations from a client system's export,
the same CSV (or .xlsx workbook) the automatic coupling mails to ``registratie@`` (CONTRACT §4)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from core.cli.runtime import (
    EXIT_REFUSED,
    JsonFlag,
    open_core,
    print_json,
    say,
    stderr,
    stdout,
    table,
)

if TYPE_CHECKING:
    from core.bulk_import import ImportReport

SHOWN_REFUSALS = 50  # the table stays readable; --json has them all


def register(app: typer.Typer) -> None:
    app.command("import")(import_command)


def import_command(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            metavar="FILE",
            help="A CSV file (header row bsn;naam;geboortedatum;gemeente;kenmerk;..., ';' or "
            "',', UTF-8 or Windows-1252 as Excel saves it) or an Excel workbook (.xlsx: the "
            "first sheet, the same header row).",
        ),
    ],
    institution: Annotated[
        str, typer.Option("--institution", help="The registering institution's covenant id.")
    ],
    json_output: JsonFlag = False,
) -> None:
    """Register (or deregister) youths for an institution from a CSV file or an .xlsx
    workbook. Exits 1 when any row was refused (the others are registered)."""
    from core.actors import institution_actor
    from core.bulk_import import import_registrations, read_registration_file

    institution_id = institution.strip().lower()
    total = count_data_lines(file)
    with open_core() as core, progress_bar(enabled=not json_output) as progress:
        task = progress.add_task(f"Importeren voor {institution_id}", total=total)
        with file.open("rb") as stream:
            report = import_registrations(
                core.engine,
                core.config,
                institution_id,
                read_registration_file(stream, file.name),
                actor=institution_actor(institution_id, "cli"),
                # called with the number of rows of each batch done
                progress=lambda rows: progress.advance(task, rows),
            )
        progress.update(task, completed=total)  # the count is an estimate; the work is done
    result = import_report(report)
    if json_output:
        print_json(result)
    else:
        _print_report(institution_id, result)
    if report.refused:
        # A script must notice: the rows named above were not registered.
        count = len(report.refused)
        stderr().print(
            f"{count} {'regel' if count == 1 else 'regels'} geweigerd; de andere zijn verwerkt.",
            style="bold red",
        )
        raise typer.Exit(EXIT_REFUSED)


def count_data_lines(file: Path) -> int | None:
    """Rows below the header, for the progress bar's total (a quick count: blank lines and
    quoted line breaks may make it slightly off; the bar is finished at the end anyway). A
    workbook's rows are not counted beforehand."""
    from core.bulk_import import WORKBOOK_MAGIC

    with file.open("rb") as stream:
        if stream.read(len(WORKBOOK_MAGIC)) == WORKBOOK_MAGIC:
            return None  # the bar then shows the rows done, without a total
        stream.seek(0)
        lines = sum(1 for line in stream if line.strip())
    return max(lines - 1, 0)


def progress_bar(*, enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr(),  # stdout stays for the report (and for --json)
        disable=not enabled,
    )


def import_report(report: ImportReport) -> dict[str, Any]:
    return {
        "accepted": report.accepted,
        "deregistered": report.deregistered,
        "refused": [
            {"line": row.line, "field": row.field, "reason": row.reason} for row in report.refused
        ],
        "new_involvements": report.new_involvements,
        "notifications": report.notifications,
    }


def _print_report(institution_id: str, result: dict[str, Any]) -> None:
    refused = result["refused"]
    summary = table(f"Import voor {institution_id}", "", "Aantal")
    summary.add_row("Aangemeld (geaccepteerd)", str(result["accepted"]))
    summary.add_row("Afgemeld", str(result["deregistered"]))
    summary.add_row("Geweigerd", str(len(refused)))
    summary.add_row("Nieuwe betrokkenheden", str(result["new_involvements"]))
    summary.add_row("Meldingen in de outbox", str(result["notifications"]))
    console = stdout()
    console.print(summary)
    if not refused:
        say("Alle regels zijn verwerkt.", "green")
        return
    shown = refused[:SHOWN_REFUSALS]
    refusals = table("Geweigerde regels", "Regel", "Veld", "Reden")
    for row in shown:
        refusals.add_row(str(row["line"]), row["field"] or "", row["reason"])
    console.print(refusals)
    if len(refused) > len(shown):
        say(
            f"... en nog {len(refused) - len(shown)} geweigerde regels; "
            "gebruik --json voor de volledige lijst.",
            "yellow",
        )
