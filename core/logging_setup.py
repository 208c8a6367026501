"""Where log lines go and how many there are (issue 13.3: logs for operators).

* On a terminal: Rich, for a person reading along.
* Anywhere else (systemd's journal, a container's log driver, a file): **JSON lines**, one object
  per event with ``timestamp`` (ISO 8601 with its zone), ``level``, ``logger`` and ``message``
  (and ``exception`` with the traceback), which a log shipper reads without a parser of its own.

How loud: the service (``serve``) logs its own events from INFO (one line per stored and per
processed message: its number, mailbox and outcome, never a youth's identity); every other
command only warnings. ``-v`` gives the project's INFO lines to every command; ``-vv`` gives
DEBUG, and only then the libraries' own chatter (alembic's migration steps, aiosmtpd's protocol
traces, the HTTP clients) beyond their warnings.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

# The project's loggers (``logging.getLogger(__name__)`` in these packages, and "verwijsindex.*").
OWN_LOGGERS = ("core", "mail_gateway", "bot", "demo", "cli", "verwijsindex")
_MARK = "_verwijsindex_handler"


def configure_logging(stream: TextIO | None = None) -> None:
    """Install the one handler on the root logger (again: replaces the one installed before).
    Called by the console script only; tests keep pytest's own log capture."""
    stream = stream or sys.stderr
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(handler)
    handler = _terminal_handler() if _is_terminal(stream) else _json_handler(stream)
    setattr(handler, _MARK, True)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)  # -v and -vv lower it (set_verbosity)


def set_verbosity(verbosity: int, *, service: bool = False) -> None:
    """0: what :func:`configure_logging` set, warnings (a service: its own INFO lines too);
    1 (``-v``): the project's INFO lines; 2 or more (``-vv``): DEBUG, libraries included.
    At 0 for a command nothing changes (tests run commands in-process, with pytest's levels)."""
    if verbosity >= 2:
        logging.getLogger().setLevel(logging.DEBUG)
        own = logging.DEBUG
    elif verbosity == 1 or service:
        own = logging.INFO
    else:
        return
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(own)


def json_formatter() -> logging.Formatter:
    return JsonFormatter(
        "{levelname}{name}{message}",
        style="{",
        rename_fields={"levelname": "level", "name": "logger", "exc_info": "exception"},
        timestamp=True,  # "timestamp": ISO 8601 in UTC, with its "+00:00"
        json_ensure_ascii=False,
    )


def _json_handler(stream: TextIO) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    return handler


def _terminal_handler() -> logging.Handler:
    from rich.console import Console
    from rich.logging import RichHandler

    handler = RichHandler(
        console=Console(stderr=True, markup=False, highlight=False), show_path=False, markup=False
    )
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
