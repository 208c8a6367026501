"""``verwijsindex report``: the follow-up figures of a municipality or the region over a period
(core.report computes them, suppressed: never a count under 5), as tables, ``--csv`` or
``--json``."""

from __future__ import annotations

from typing import Annotated

import typer

from core.cli.runtime import (
    JsonFlag,
    open_core,
    operator_actor,
    parse_cli_date,
    print_json,
    stdout,
    table,
)
from core.clock import utcnow
from core.report import Report, report_csv, view_report


def register(app: typer.Typer) -> None:
    app.command("report")(report_command)


def report_command(
    municipality: Annotated[
        str | None,
        typer.Option("--municipality", help="One municipality (default: the whole region)."),
    ] = None,
    first: Annotated[
        str | None,
        typer.Option("--from", help="First day, DD-MM-JJJJ (default: last full month)."),
    ] = None,
    last: Annotated[
        str | None, typer.Option("--to", help="Last day, included (default: today).")
    ] = None,
    csv_output: Annotated[
        bool, typer.Option("--csv", help="Print the figures as CSV (';') on stdout.")
    ] = False,
    by: Annotated[
        str | None,
        typer.Option("--by", help="Your e-mail, for the logboek (default: your login name)."),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Follow-up figures: signals, matches, coordination, stalls, informing (only totals; any
    count under 5 is shown as <5)."""
    first_day = parse_cli_date(first, "--from")
    last_day = parse_cli_date(last, "--to")
    with open_core() as core:
        report = core.run(
            lambda session: view_report(
                session,
                core.config,
                municipality=municipality,
                first=first_day,
                last=last_day,
                actor=operator_actor(by),
                now=utcnow(),
            )
        )
    if json_output:
        print_json(report.to_json())
    elif csv_output:
        typer.echo(report_csv(report), nl=False)
    else:
        print_report(report)


def print_report(report: Report) -> None:
    console = stdout()
    console.print(f"Verwijsindex: cijfers over {report.period.label} voor {report.scope}")
    for name in report.sections():
        rows, columns, cells = report.section(name)
        result = table(name, "", *columns)
        for row in rows:
            result.add_row(row, *(cells.get((row, column), "") for column in columns))
        console.print(result)
    for note in report.notes:
        console.print(note, soft_wrap=True)
