"""Notifications as people read them: jinja2 templates, ``templates/<channel>/<kind>.<part>.j2``.

``StrictUndefined``: a template that uses a key its context lacks fails loudly (the outbox
dead-letters it) instead of sending a mail with a hole in it. Only templates whose name ends in
``.html.j2`` are autoescaped — shared HTML macros too, so they live in ``_macros.html.j2`` —
while subject and text parts are not HTML and are left alone. A subject is always one line
without control characters, so no context value can add a header (RFC 5322 §2.2). Templates
receive references and contact details, never a youth's identity (STYLE 7).

Errors: an unknown kind, channel or part is a ``ValueError``; a missing context key is
``jinja2.UndefinedError`` (both propagate, the delivery worker dead-letters the row).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

from core.clock import as_utc

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
EMAIL_PARTS = ("subject", "text", "html")
DEFAULT_TIMEZONE = ZoneInfo("Europe/Amsterdam")

# A kind, channel or part is a plain name: never a path into (or out of) the template folder.
_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")

# Not the C library's locale: setlocale is process-wide and not thread-safe.
_DAYS = ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag")
_MONTHS = (
    "januari", "februari", "maart", "april", "mei", "juni",
    "juli", "augustus", "september", "oktober", "november", "december",
)  # fmt: skip

# What a recipient may answer, per kind (CONTRACT §4, Replies): Dutch keyword, English keyword,
# what it does. The core's reply handling (core/replies.py) is the authority on what is accepted.
ReplyKeyword = tuple[str, str, str]
_COORDINATION: tuple[ReplyKeyword, ...] = (
    ("AKKOORD", "ACCEPT", "uw instelling neemt de procescoördinatie op zich"),
    ("WEIGER <reden>", "DECLINE <reason>",
     "uw instelling weigert, met een korte reden; de volgende instelling wordt gevraagd"),
    ("OVERDRAGEN <instelling-id>", "TRANSFER <institution-id>",
     "u draagt de coördinatie over aan een andere betrokken instelling"),
)  # fmt: skip
_CONTACT: tuple[ReplyKeyword, ...] = (
    ("CONTACT GELEGD", "CONTACTED", "u hebt contact gelegd met de andere melder(s)"),
)
_EXTEND: tuple[ReplyKeyword, ...] = (
    ("VERLENG [maanden]", "EXTEND [months]",
     "u verlengt het signaal; zonder aantal maanden met de standaardtermijn van de regio"),
)  # fmt: skip
REPLY_KEYWORDS: dict[str, tuple[ReplyKeyword, ...]] = {
    "coordinatie-toegewezen": _COORDINATION,
    "coordinatie-herinnering": _COORDINATION,
    "coordinatie-overgedragen": _COORDINATION,
    "match": _CONTACT,
    "gezinsmatch": _CONTACT,
    "match-opvolging": _CONTACT,
    "signaal-verloopt": _EXTEND,
}

DateLike = date | datetime | str | None


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def _moment(value: date | datetime | str, tz: ZoneInfo) -> date | datetime:
    """A date stays a date; a moment (aware, or naive meaning UTC) becomes local time."""
    if isinstance(value, str):
        value = value.strip()
        value = date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return as_utc(value).astimezone(tz)
    return value


def datum(value: DateLike, tz: ZoneInfo = DEFAULT_TIMEZONE) -> str:
    """'maandag 23 november 2026'; a moment gets its local time: '... om 14:05'."""
    if value is None or value == "":
        return ""
    moment = _moment(value, tz)
    day = f"{_DAYS[moment.weekday()]} {moment.day} {_MONTHS[moment.month - 1]} {moment.year}"
    if isinstance(moment, datetime):
        return f"{day} om {moment:%H:%M}"
    return day


def datum_kort(value: DateLike, tz: ZoneInfo = DEFAULT_TIMEZONE) -> str:
    """'23-11-2026' (the local date of a moment)."""
    if value is None or value == "":
        return ""
    moment = _moment(value, tz)
    return f"{moment.day:02d}-{moment.month:02d}-{moment.year}"


def aantal(count: int, singular: str, plural: str) -> str:
    """'1 signaal', '3 signalen'."""
    return f"{count} {singular if count == 1 else plural}"


def one_line(text: str) -> str:
    """Whitespace collapsed and control characters (CR, LF, NUL, ...) gone: a header value."""
    cleaned = "".join(" " if unicodedata.category(c) == "Cc" else c for c in str(text))
    return " ".join(cleaned.split())


class TemplateRenderer:
    """Renders ``<channel>/<kind>.<part>.j2`` from ``template_dir`` (default: the repository's
    ``templates/``). Dates are shown in ``timezone`` (the region's; default Europe/Amsterdam).
    Safe to share between threads."""

    def __init__(
        self, template_dir: Path | None = None, *, timezone: ZoneInfo = DEFAULT_TIMEZONE
    ) -> None:
        self.template_dir = Path(template_dir) if template_dir else TEMPLATES_DIR
        self.timezone = timezone
        self.environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(self.template_dir)),
            undefined=jinja2.StrictUndefined,
            autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        filters: dict[str, Callable[..., str]] = {
            "datum": lambda value: datum(value, self.timezone),
            "datum_kort": lambda value: datum_kort(value, self.timezone),
            "aantal": aantal,
        }
        self.environment.filters.update(filters)
        self.environment.globals["reply_keywords"] = reply_keywords

    def render_part(self, channel: str, kind: str, part: str, context: dict[str, Any]) -> str:
        """One part, e.g. ``render_part("slack", "match", "blocks", context)``."""
        for name in (channel, kind, part):
            if not _NAME.fullmatch(name):
                raise ValueError(f"no template for {channel!r}/{kind!r}/{part!r}: not a name")
        name = f"{channel}/{kind}.{part}.j2"
        try:
            template = self.environment.get_template(name)
        except jinja2.TemplateNotFound as exc:
            raise ValueError(f"no template {name} for notification kind {kind!r}") from exc
        return template.render({**context, "kind": kind})

    def render_email(self, kind: str, context: dict[str, Any]) -> RenderedEmail:
        return RenderedEmail(
            subject=one_line(self.render_part("email", kind, "subject", context)),
            text=self.render_part("email", kind, "text", context),
            html=self.render_part("email", kind, "html", context),
        )

    def kinds(self, channel: str = "email", parts: tuple[str, ...] = EMAIL_PARTS) -> list[str]:
        """The kinds that have every one of ``parts`` (shared ``_*`` templates are no kind)."""
        folder = self.template_dir / channel
        found = {p.name.split(".")[0] for p in folder.glob(f"*.{parts[0]}.j2")}
        return sorted(
            kind
            for kind in found
            if not kind.startswith("_")
            and all((folder / f"{kind}.{part}.j2").is_file() for part in parts)
        )


def reply_keywords(kind: str) -> tuple[ReplyKeyword, ...]:
    """The answers a notification of ``kind`` may get, for its reply instructions."""
    return REPLY_KEYWORDS.get(kind, ())
