"""The suite-wide privacy guard (DOMAIN: Content-free): no test of the suite may make the system
write a test youth's BSN, name or birth date into a log line, an outgoing mail (receipt,
foutmelding, notification) or a Slack message.

``tests/conftest.py`` runs :func:`guard` around every test: a handler on the root logger keeps
every record (the project's own loggers at every level), and at teardown their text, every mail
in the test's ``verzonden`` maildir and in a :class:`~tests.mail_gateway.relay_sink.RelaySink`,
every call the fake Slack Web API received (forms excepted: a modal holds what the user is
typing) and every answer the CLI gave through ``tests/core/test_cli.py``'s ``cli`` fixture (the
subject-access report excepted: it is the youth's own data, asked for) are scanned for the
identities the tests use. A find fails the test.

What is looked for, collected once:

* every BSN the tests use: each nine-digit number in the tests' source that passes the elfproef,
  and each BSN :func:`tests.bsns.valid_bsns` handed out, in any spelling (``111 222 333``,
  ``111.222.333``, the 8-digit form without its leading zero);
* the test youths' names (:data:`YOUTH_NAMES`) and distinctive birth dates
  (:data:`BIRTH_DATES`). Common surnames and dates are left out on purpose: the covenant's
  professionals are called Jansen and De Vries, and a date alone may be any date.

A test that must let identity through (one that checks what the user sees in a form it fills
in, for instance) says so with ``@pytest.mark.identity_allowed("why")``; keep those few.
"""

from __future__ import annotations

import email
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from email.message import EmailMessage
from email.policy import default
from functools import cache
from pathlib import Path

from core.identity import passes_elfproef
from tests import bsns

MARKER = "identity_allowed"
PROJECT_LOGGERS = ("core", "mail_gateway", "bot", "demo", "verwijsindex")
FORM_METHODS = frozenset({"views.open", "views.update", "views.push"})

YOUTH_NAMES = (
    "Geheimnaam",
    "Broertje Verborgen",
    "Onbekendsma",
    "Fenna Testkind",
    "Zonderbsn",
    "Voorbeeld Kind",
    "Kind Twee",
    "Iemand van Elders",
)
BIRTH_DATES = (date(2016, 5, 1), date(2019, 3, 10), date(2012, 11, 7), date(2015, 6, 2))

_TESTS = Path(__file__).parent
_NINE = re.compile(r"(?<![0-9])[0-9]{9}(?![0-9])")
_DIGIT_RUN = re.compile(r"[0-9](?:[ .\-]?[0-9])*")
_SEPARATORS = re.compile(r"[ .\-]")

# Texts to scan at teardown, from the fakes the current test started (see :func:`watch`).
_sources: list[Callable[[], Iterable[tuple[str, str]]]] = []


@cache
def source_bsns() -> frozenset[str]:
    """Every BSN written in the tests' source."""
    found: set[str] = set()
    for path in _TESTS.rglob("*.py"):
        found.update(n for n in _NINE.findall(path.read_text()) if passes_elfproef(n))
    return frozenset(found)


def _words() -> re.Pattern[str]:
    words = [re.escape(name) for name in YOUTH_NAMES]
    for d in BIRTH_DATES:
        words += [d.isoformat(), f"{d.day:02d}-{d.month:02d}-{d.year}"]
        words += [f"{d.day}-{d.month}-{d.year}", f"{d.day:02d}{d.month:02d}{d.year}"]
    return re.compile("|".join(sorted(set(words), key=len, reverse=True)), re.IGNORECASE)


_WORDS = _words()


def findings(text: str) -> list[str]:
    """The test identities in ``text`` (empty when there are none)."""
    found = [match.group() for match in _WORDS.finditer(text)]
    known = source_bsns() | bsns.ISSUED
    for run in _DIGIT_RUN.findall(text):
        digits = _SEPARATORS.sub("", run)
        if len(digits) < 8:
            continue
        for start in range(len(digits) - 7):
            nine, eight = digits[start : start + 9], "0" + digits[start : start + 8]
            if (len(nine) == 9 and nine in known) or eight in known:
                found.append(run)
                break
    return found


def watch(source: Callable[[], Iterable[tuple[str, str]]]) -> None:
    """Scan what ``source`` yields (``(where, text)`` pairs) when the current test ends."""
    _sources.append(source)


def mail_texts(message: EmailMessage) -> Iterator[str]:
    """A mail's headers and every text part, decoded (quoted-printable, base64, charsets)."""
    yield "\n".join(f"{name}: {value}" for name, value in message.items())
    for part in message.walk():
        if part.get_content_maintype() == "text":
            yield str(part.get_content())


def maildir_texts(folder: Path) -> Iterator[tuple[str, str]]:
    for sub in ("new", "cur"):
        directory = folder / sub
        if not directory.is_dir():
            continue
        for path in sorted(directory.iterdir()):
            message = email.message_from_bytes(path.read_bytes(), policy=default)
            assert isinstance(message, EmailMessage)
            for text in mail_texts(message):
                yield f"mail {path.name}", text


def slack_texts(calls: Iterable[tuple[str, object]]) -> Iterator[tuple[str, str]]:
    for method, args in calls:
        if method not in FORM_METHODS:
            yield f"Slack {method}", json.dumps(args, ensure_ascii=False)


class _Keep(logging.Handler):
    """Keeps every record of the current test; formats nothing until the test ends."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


_handler = _Keep()
_formatter = logging.Formatter()


def log_texts() -> Iterator[tuple[str, str]]:
    for record in _handler.records:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + _formatter.formatException(record.exc_info)
        yield f"log record {record.name} ({record.levelname})", text


def leaks(tmp_path: Path | None = None) -> list[str]:
    """What the current test has leaked so far, one line per find."""
    texts: list[Iterable[tuple[str, str]]] = [log_texts(), *(source() for source in _sources)]
    if tmp_path is not None:
        texts.append(maildir_texts(tmp_path / "verzonden"))
    found = []
    for source in texts:
        for where, text in source:
            hits = findings(text)
            if hits:
                found.append(f"{where} carries a test youth's identity {sorted(set(hits))}")
    return found


def forget() -> None:
    """Start afresh (for the guard's own tests, after they planted a leak on purpose)."""
    _handler.records.clear()
    _sources.clear()


def install() -> None:
    """Once per session: the handler on the root logger, the project's loggers at DEBUG."""
    root = logging.getLogger()
    if _handler not in root.handlers:
        root.addHandler(_handler)
    for name in PROJECT_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level > logging.DEBUG:
            logger.setLevel(logging.DEBUG)
