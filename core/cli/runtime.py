"""What every command shares: settings with the global overrides, the core (engine, covenant,
schema), printing for people and for machines, and the one table that maps errors to exit codes.

Exit codes::

    0  done
    1  the request was refused (a DomainError: invalid input, not allowed, not found, conflict),
       or a check failed (a broken audit chain)
    2  unusable configuration (a covenant problem, a bad setting) or a wrong command line
    3  the service (``serve``) could not start a role or stopped because one failed

Nothing here runs at import time: :func:`open_core` builds settings, engine and configuration
when a command runs, and disposes the engine when it is done.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO, Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

import typer
from pydantic import ValidationError
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.core import TyperGroup, TyperOption

from core.audit import Actor
from core.clock import DEFAULT_TIMEZONE, as_utc
from core.config import CoreConfig, build_config
from core.covenant import CovenantError
from core.db import create_db_engine, reading, run_in_transaction, service_engine
from core.errors import DomainError
from core.fields import parse_date
from core.file_privacy import sqlite_file
from core.free_text import quote
from core.settings import Settings

T = TypeVar("T")

EXIT_REFUSED = 1
EXIT_CONFIGURATION = 2
EXIT_SERVICE_FAILED = 3
# Output to a file or a pipe has no terminal width to fit; rich would assume 80 columns and
# fold every table into slivers.
PIPED_WIDTH = 160

JsonFlag = Annotated[bool, typer.Option("--json", help="Print only JSON on stdout (for scripts).")]


# -- global options -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CliOptions:
    """The root command's options; the root callback sets them for the command that runs."""

    database_url: str | None = None
    covenant: Path | None = None
    verbose: int = 0  # -v 1, -vv 2 (core.logging_setup.set_verbosity)


# Set by the root callback on every invocation (typer's own context is not reachable the same
# way across typer versions: newer ones ship their own copy of click).
_options: ContextVar[CliOptions | None] = ContextVar("verwijsindex_cli_options", default=None)


def set_cli_options(options: CliOptions) -> None:
    _options.set(options)


def cli_options() -> CliOptions:
    return _options.get() or CliOptions()


class ConfigurationError(Exception):
    """A setting in the environment or ``.env`` is unusable."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def load_cli_settings() -> Settings:
    """``Settings()`` from the environment, with ``--database-url`` / ``--covenant`` on top."""
    options = cli_options()
    overrides: dict[str, Any] = {}
    if options.database_url:
        overrides["database_url"] = options.database_url
    if options.covenant:
        overrides["covenant"] = options.covenant
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigurationError(
            [f"{_setting_name(error['loc'])}: {error['msg']}" for error in exc.errors()]
        ) from exc


def _setting_name(loc: tuple[int | str, ...]) -> str:
    name = str(loc[0]) if loc else "?"
    return name if name.isupper() else f"VERWIJSINDEX_{name.upper()}"


# -- the core -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Core:
    settings: Settings
    engine: Engine
    config: CoreConfig

    def run(self, work: Callable[[Session], T]) -> T:
        """One core command, one transaction (retried when it lost a race)."""
        return run_in_transaction(self.engine, work)

    @property
    def tz(self) -> ZoneInfo:
        return self.config.tz


@contextmanager
def open_core(*, sync: bool = True, check_key: bool = True) -> Iterator[Core]:
    """Settings, covenant, an up-to-date schema and (``sync``) the covenant mirrored into the
    database: what a command needs before it can call the core.

    The key is checked against an existing database first (reading it only, before a key is
    generated: a refusal leaves no new key file behind); then the covenant is loaded, so a
    broken file is reported before the database is written to. Read-only commands (``audit
    verify``, listings) skip the sync so they do not write to what they inspect.
    """
    settings = load_cli_settings()
    if check_key:
        refuse_a_key_the_database_was_not_written_under(settings)
    config = build_config(settings)
    upgrade_schema(settings, check_key=False)  # checked above
    engine = service_engine(settings)
    try:
        if sync:
            sync_covenant_if_changed(engine, config)
        yield Core(settings=settings, engine=engine, config=config)
    finally:
        engine.dispose()


def refuse_a_key_the_database_was_not_written_under(settings: Settings) -> None:
    """Issue 13.4: never start on, nor migrate, an existing database with a key that does not
    open it (say a key generated afresh because the service started in another folder). Runs
    before any migration, on the schema as it is, and writes nothing: no key file is generated
    for it. ``keys status`` and ``keys rotate`` skip this: they are how an administrator sorts
    it out."""
    from core.key_rotation import unknown_key_in_use

    database = sqlite_file(settings.database_url)
    if database is not None and not database.exists():
        return  # a new database: nothing is written under any key yet
    ring = settings.keyring(generate=False)
    engine = create_db_engine(settings.database_url)
    try:
        with Session(reading(engine)) as session:
            unknown = unknown_key_in_use(session, ring)
    finally:
        engine.dispose()
    if unknown is None:
        return
    current = ring.current.id
    path = settings.secret_file.resolve()
    if settings.secret_key is not None:
        nl = f"VERWIJSINDEX_SECRET_KEY is sleutel {current}"
        en = f"VERWIJSINDEX_SECRET_KEY is key {current}"
    elif settings.key_not_generated_yet:
        nl = f"VERWIJSINDEX_SECRET_KEY is niet gezet en er is geen sleutel in {path}"
        en = f"VERWIJSINDEX_SECRET_KEY is not set and there is no key in {path}"
    else:
        nl = f"de gegenereerde sleutel in {path} is sleutel {current}"
        en = f"the generated key in {path} is key {current}"
    raise ConfigurationError(
        [
            f"de database is geschreven met sleutel {unknown}, maar {nl}: zet de juiste "
            "VERWIJSINDEX_SECRET_KEY (of VERWIJSINDEX_DATA_DIR), of voeg de oude toe aan "
            f"VERWIJSINDEX_PREVIOUS_SECRET_KEYS / the database was written under key {unknown}, "
            f"but {en}; refusing to start"
        ]
    )


def sync_covenant_if_changed(engine: Engine, config: CoreConfig) -> bool:
    """Mirror the covenant into the database; commit only when that wrote something.

    The sync is idempotent, but it logs a ``covenant-synced`` event each time it commits: one for
    every console command would bury the logboek. SQLAlchemy emits no UPDATE for a row whose
    values did not change, so "no INSERT, UPDATE or DELETE" means "nothing changed", and the
    transaction (with its pending audit event) is rolled back instead.
    """
    from sqlalchemy import event

    from core.covenant.sync import sync_covenant

    writes: list[str] = []

    def count_writes(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
            writes.append(statement)

    with Session(engine, expire_on_commit=False) as session:
        connection = session.connection()
        event.listen(connection, "before_cursor_execute", count_writes)
        try:
            sync_covenant(session, config.covenant, config=config)
            session.flush()
        finally:
            event.remove(connection, "before_cursor_execute", count_writes)
        if writes:
            session.commit()
        else:
            session.rollback()
    return bool(writes)


def upgrade_schema(settings: Settings, *, check_key: bool = True) -> str | None:
    """Bring the schema to Alembic's head; returns the revision (when the migrations say).
    The region's keys go along: a revision may rewrite keyed data (0002 MACs the logboek, 0003
    and 0013 seal). So first (``check_key``) the key is checked against the database as it is:
    data sealed under a key the database was not written under could never be read again."""
    # Imported here: Alembic is only needed once a command touches the database.
    from core.migrations import upgrade_database

    if check_key:
        refuse_a_key_the_database_was_not_written_under(settings)
    settings.make_data_dir()  # the SQLite database's folder
    revision = upgrade_database(settings.database_url, keyring=settings.keyring())
    return revision if isinstance(revision, str) else None


def operator_actor(by: str | None) -> Actor:
    """Who looks at data from the console: the e-mail given with ``--by``, else the OS user."""
    identifier = (by or "").strip().lower() or _os_user()
    return Actor(kind="operator", identifier=identifier, channel="cli")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        return "onbekend"


# -- parsing at the edge ------------------------------------------------------------------------


def parse_cli_date(value: str | None, field: str) -> date | None:
    """``DD-MM-JJJJ`` or ``JJJJ-MM-DD``, like every other channel (CONTRACT §4)."""
    if value is None or not value.strip():
        return None
    return parse_date(value, field)


def parse_moment(value: str | None, tz: ZoneInfo) -> datetime | None:
    """An ISO 8601 moment; without an offset it is the region's local time."""
    if value is None or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{quote(value, dates=True)} is geen ISO-tijdstip "
            "(bijvoorbeeld 2026-03-02T09:00 of 2026-03-02)",
            param_hint="--now",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return as_utc(moment)


# -- output -------------------------------------------------------------------------------------


def stdout(file: IO[str] | None = None) -> Console:
    """The console for a command's answer (``file``: sys.stdout at the time of printing).

    markup off: names, addresses and reasons are shown as they are, never as rich markup.
    soft_wrap: a line is never cut at the width; one longer than the terminal (a 250-character
    address in a :func:`table` record) is left to the terminal to wrap, and stays whole when
    copied or piped.
    """
    console = Console(file=file, markup=False, highlight=False, soft_wrap=True)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPED_WIDTH
    return console


def stderr() -> Console:
    return Console(stderr=True, markup=False, highlight=False)


def print_json(data: Any) -> None:
    """Only JSON on stdout: scripts parse it with one ``json.loads``."""
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def local_time(value: datetime | str | None, tz: ZoneInfo = DEFAULT_TIMEZONE) -> str:
    """``02-03-2026 10:00`` in the region's time zone; '' for nothing."""
    if value is None or value == "":
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return as_utc(moment).astimezone(tz).strftime("%d-%m-%Y %H:%M")


def local_date(value: date | str | None) -> str:
    """``02-03-2027``; '' for nothing."""
    if value is None or value == "":
        return ""
    day = date.fromisoformat(value) if isinstance(value, str) else value
    return day.strftime("%d-%m-%Y")


def table(title: str | None, *columns: str, prose: Collection[str] = ()) -> Listing:
    """A listing for :func:`stdout`. Its values (addresses, ids, references, dates) are never
    folded or cut; only the ``prose`` columns (free text: a reason, details) wrap between words.
    When the console is too narrow for that, each row is printed as a record instead."""
    result = Listing(title=title, title_justify="left", show_lines=False)
    for column in columns:
        if column in prose:
            result.add_column(column, overflow="fold")
        else:
            result.add_column(column, no_wrap=True, overflow="ignore")
    return result


class Listing(Table):
    """A rich table that does not squeeze its values: narrower than it needs (its values whole,
    its prose columns at their longest word), it prints its rows as records, one line per value
    (``Kolom: waarde``), blocks apart; a headerless first column (a row label) heads its record.
    Rich would instead fold ``a.devries@ggd-gron`` / ``ingen.example`` or cut it to ``a.devr…``.
    """

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if self._needed_width(console, options) <= options.max_width:
            yield from super().__rich_console__(console, options)
        else:
            yield from self._records()

    def _needed_width(self, console: Console, options: ConsoleOptions) -> int:
        unbounded = options.update_width(sys.maxsize)
        needed = self._extra_width
        for index, column in enumerate(self.columns):
            cells = [*([column.header] if self.show_header else []), *column._cells]
            sizes = [Measurement.get(console, unbounded, cell) for cell in cells]
            whole = [size.minimum if not column.no_wrap else size.maximum for size in sizes]
            needed += max(whole, default=0) + self._get_padding_width(index)
        return needed

    def _records(self) -> Iterator[Text]:
        if self.title:
            yield _line(Text.assemble(self.title, style="bold"))
        headers = [str(column.header) for column in self.columns] if self.show_header else []
        labelled = not headers or not headers[0]
        rows = list(zip(*(column._cells for column in self.columns), strict=True))
        for number, row in enumerate(rows):
            cells = [_text(cell) for cell in row]
            names = headers or [""] * len(cells)
            if labelled and len(cells) == 2 and not names[1]:
                yield _line(Text.assemble(cells[0], ": ", cells[1]))  # a key and its value
                continue
            if number:
                yield _line(Text())
            indent = ""
            if labelled:
                yield _line(Text.assemble(cells[0], style="bold"))
                cells, names, indent = cells[1:], names[1:], "  "
            for name, cell in zip(names, cells, strict=True):
                yield _line(Text.assemble(indent, f"{name}: " if name else "", cell))


def _text(cell: RenderableType) -> Text:
    return cell if isinstance(cell, Text) else Text(str(cell))


def _line(text: Text) -> Text:
    text.no_wrap, text.overflow = True, "ignore"
    return text


def say(message: str, style: str | None = None) -> None:
    # soft_wrap: one message, one line, whatever the width (grep-able when piped)
    stdout().print(Text(message, style=style or ""), soft_wrap=True)


# -- errors -------------------------------------------------------------------------------------


def report_domain_error(exc: DomainError) -> None:
    where = f"{exc.field}: " if exc.field else ""
    stderr().print(Text(f"Fout: {where}{exc.message}", style="bold red"), soft_wrap=True)


def report_covenant_error(exc: CovenantError) -> None:
    console = stderr()
    source = f" {exc.source}" if exc.source else ""
    count = len(exc.problems)
    console.print(
        Text(
            f"Het convenant{source} is niet bruikbaar ({count} "
            f"{'probleem' if count == 1 else 'problemen'}):",
            style="bold red",
        ),
        soft_wrap=True,
    )
    for problem in exc.problems:
        console.print(Text(f"  - {problem}", style="red"), soft_wrap=True)


def report_configuration_error(exc: ConfigurationError) -> None:
    console = stderr()
    console.print(Text("Ongeldige instelling:", style="bold red"))
    for problem in exc.problems:
        console.print(Text(f"  - {problem}", style="red"), soft_wrap=True)


class VerwijsindexGroup(TyperGroup):
    """The root command: turns the core's errors into a message and an exit code, in one place
    (as the SMTP gateway and the Slack bot each do for their own transport)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _plain_flags(self)

    def invoke(self, ctx: Any) -> Any:  # typer.Context; Any: typer's click differs by version
        try:
            return super().invoke(ctx)
        except DomainError as exc:
            report_domain_error(exc)
            raise typer.Exit(EXIT_REFUSED) from None
        except CovenantError as exc:
            report_covenant_error(exc)
            raise typer.Exit(EXIT_CONFIGURATION) from None
        except ConfigurationError as exc:
            report_configuration_error(exc)
            raise typer.Exit(EXIT_CONFIGURATION) from None


def _plain_flags(command: Any) -> None:
    """A docstring's RST literals (````--workers````) read as plain ``--workers`` in the help."""
    if getattr(command, "help", None):
        command.help = command.help.replace("``", "")
    for sub in getattr(command, "commands", {}).values():
        _plain_flags(sub)


def _flag_type(option: TyperOption, ctx: Any) -> str | None:
    """A flag takes no value, so its help names no type (typer writes ``<bool>``, and ``<int>``
    for a counting flag such as ``-vv``), ``--help`` included (click makes that option afresh
    for every help)."""
    if (option.is_flag or option.count) and option.metavar is None:
        return None
    return _typer_display_type(option, ctx)


_typer_display_type = TyperOption.display_type_rich
TyperOption.display_type_rich = _flag_type  # type: ignore[method-assign,assignment]
