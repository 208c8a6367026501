"""``backup FILE`` and ``restore FILE``: the embedded database's own backups (core.backup)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from core.backup import BackupError, backup, restore
from core.cli.runtime import EXIT_REFUSED, load_cli_settings, say, stderr, upgrade_schema


def register(app: typer.Typer) -> None:
    app.command("backup")(backup_command)
    app.command("restore")(restore_command)


def backup_command(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="The new backup file (it must not exist yet).")
    ],
) -> None:
    """A consistent copy of the SQLite database, taken while the service runs (0600, checked).
    PostgreSQL: pg_dump (README, Backup)."""
    settings = load_cli_settings()
    try:
        report = backup(settings.database_url, file)
    except BackupError as exc:
        stderr().print(f"Geen backup gemaakt: {exc}")
        raise typer.Exit(EXIT_REFUSED) from None
    say(
        f"Backup gemaakt: {report.path} ({report.size:,} bytes, schema {report.revision}). "
        "Bewaar hem met de sleutel (VERWIJSINDEX_SECRET_KEY): zonder is hij onleesbaar."
    )


def restore_command(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="A backup made by 'verwijsindex backup'.")
    ],
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Replace an existing database (kept beside it as NAME.before-restore).",
        ),
    ] = False,
) -> None:
    """Put a backup back as the SQLite database, then bring its schema up to this release.
    Stop the service first."""
    settings = load_cli_settings()
    settings.make_data_dir()
    ring = settings.keyring(generate=False)  # a refused backup leaves no new key file behind
    try:
        report = restore(settings.database_url, file, ring, replace=replace)
    except BackupError as exc:
        stderr().print(f"Niet hersteld: {exc}")
        raise typer.Exit(EXIT_REFUSED) from None
    revision = upgrade_schema(settings)
    say(f"Hersteld: {report.path} (schema {report.revision}, nu {revision}).")
