"""The ``verwijsindex`` console command: the root, its global options and its command groups.

One module per group registers its commands (``register(app)``); the root command maps the
core's errors to messages and exit codes (:class:`core.cli.runtime.VerwijsindexGroup`).
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Annotated

import typer

from core.cli import (
    admin,
    backup,
    handover,
    keys,
    matches,
    registrations,
    report,
    rights,
    signals,
    youths,
)
from core.cli.runtime import CliOptions, VerwijsindexGroup, set_cli_options
from core.logging_setup import configure_logging, set_verbosity

app = typer.Typer(
    name="verwijsindex",
    cls=VerwijsindexGroup,
    help="Regional verwijsindex for youth care: administration from the console.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold a BSN
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"verwijsindex {installed_version()}")
        raise typer.Exit()


def installed_version() -> str:
    """The version of the installed package (pyproject ``version``), as pip knows it."""
    try:
        return metadata.version("verwijsindex")
    except metadata.PackageNotFoundError:  # run from a checkout without installing
        return "onbekend (niet geïnstalleerd)"


@app.callback()
def root(
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="SQLAlchemy URL; overrides VERWIJSINDEX_DATABASE_URL.",
            show_default=False,
        ),
    ] = None,
    covenant: Annotated[
        Path | None,
        typer.Option(
            "--covenant",
            help="Covenant TOML file; overrides VERWIJSINDEX_COVENANT.",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            help="Log what happens; -vv also the libraries' own debug lines.",
            show_default=False,
        ),
    ] = 0,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the installed version and exit.",
            is_eager=True,
            callback=_print_version,
        ),
    ] = False,
) -> None:
    set_cli_options(CliOptions(database_url=database_url, covenant=covenant, verbose=verbose))
    set_verbosity(verbose)


for group in (
    admin,
    registrations,
    signals,
    matches,
    youths,
    handover,
    keys,
    report,
    rights,
    backup,
):
    group.register(app)


def main() -> None:
    """Entry point of the console script (pyproject ``[project.scripts]``)."""
    configure_logging()
    app(prog_name="verwijsindex")
