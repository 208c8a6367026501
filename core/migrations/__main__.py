"""``python -m core.migrations revision "message"`` | ``check``: for developers changing models.

Both work on a scratch SQLite database upgraded to head, so no local database is needed and
nothing but the models and ``versions/`` decides what the next revision contains. (PostgreSQL-only
details, such as ``postgresql_where``, come from the models' own arguments and are rendered too.)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alembic import command
from alembic.script import ScriptDirectory

from core.migrations import (
    MIGRATIONS_DIR,
    alembic_config,
    pending_model_changes,
    upgrade_database,
)


def next_revision_id() -> str:
    """Revisions are numbered ``0001``, ``0002``, ... so ``versions/`` reads in order."""
    numbers = [
        int(script.revision)
        for script in ScriptDirectory(str(MIGRATIONS_DIR)).walk_revisions()
        if script.revision.isdigit()
    ]
    return f"{max(numbers, default=0) + 1:04d}"


def revision(message: str, *, empty: bool = False) -> int:
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'scratch.db'}"
        upgrade_database(url)
        if not pending_model_changes(url) and not empty:
            print("No model changes to migrate (use --empty for a data-only revision).")
            return 1
        script = command.revision(
            alembic_config(url), message=message, autogenerate=True, rev_id=next_revision_id()
        )
    paths = [s.path for s in (script if isinstance(script, list) else [script]) if s is not None]
    for path in paths:
        print(f"Wrote {path} — review it before committing.")
    return 0


def check() -> int:
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'scratch.db'}"
        upgrade_database(url)
        changes = pending_model_changes(url)
    for change in changes:
        print(describe_change(change))
    if changes:
        print(f'{len(changes)} model change(s) without a migration: run revision "message".')
        return 1
    print("The migrations match the models.")
    return 0


def describe_change(change: Any) -> str:
    """One line per Alembic diff: ``add_table youth``, ``modify_type signal.code ...``."""
    if isinstance(change, list):  # column modifications come as a list of tuples
        return "; ".join(describe_change(part) for part in change)
    operation, *details = change
    if operation.startswith("modify_"):
        _schema, table, column, _info, old, new = details
        return f"{operation} {table}.{column}: {old!r} -> {new!r}"
    names = [getattr(d, "name", None) or str(d) for d in details if d is not None]
    table = getattr(getattr(details[-1], "table", None), "name", None) if details else None
    where = f" (on {table})" if table and table not in names else ""
    return f"{operation} {' '.join(names)}{where}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.migrations", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    revision_parser = commands.add_parser(
        "revision", help="autogenerate the next revision from the models"
    )
    revision_parser.add_argument("message", help='what changes, e.g. "absence reason"')
    revision_parser.add_argument(
        "--empty", action="store_true", help="write a revision even without model changes"
    )
    commands.add_parser("check", help="list model changes that have no migration yet")
    args = parser.parse_args(argv)
    if args.command == "revision":
        return revision(args.message, empty=args.empty)
    return check()


if __name__ == "__main__":
    sys.exit(main())
