"""Notifications as people read them: jinja2 templates, ``templates/<channel>/<kind>.<part>.j2``.

``StrictUndefined``: a template that uses a key its context lacks fails loudly (the outbox
dead-letters it) instead of sending a mail with a hole in it. Only templates whose name ends in
``.html.j2`` are autoescaped — shared HTML macros too, so they live in ``_macros.html.j2`` —
while subject and text parts are not HTML and are left alone. A subject is always one line
without control characters, so no context value can add a header (RFC 5322 §2.2). Templates
receive references and contact details, never a youth's identity (STYLE 7).

Slack messages are ``templates/slack/<kind>.blocks.j2``: Block Kit JSON written out in the
template. Every value a Slack template prints is escaped twice over, automatically: for Slack's
mrkdwn (``&``, ``<``, ``>``: no value can mention ``<!channel>`` or forge a link) and as the
inside of a JSON string (quotes, backslashes, newlines). Shared macros return markup that is
inserted as it is; nothing else can bypass the escaping. :meth:`TemplateRenderer.render_slack`
parses the result and fits it to Slack's limits; the notification text (the push preview and
the fallback for clients without blocks) is the e-mail's subject line.

Errors: an unknown kind, channel or part is a ``ValueError``; a missing context key is
``jinja2.UndefinedError``; a Slack template that renders invalid JSON is a ``ValueError`` (all
propagate, the delivery worker dead-letters the row).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup

from core.clock import as_utc

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
EMAIL_PARTS = ("subject", "text", "html")
SLACK_PART = "blocks"
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
_CONSENT: tuple[ReplyKeyword, ...] = (
    ("TOESTEMMING GEVRAAGD", "CONSENT ASKED",
     "u hebt de jongere of ouders om toestemming gevraagd om informatie uit te wisselen"),
    ("TOESTEMMING GEGEVEN", "CONSENT GIVEN", "zij hebben die toestemming gegeven"),
    ("TOESTEMMING GEWEIGERD", "CONSENT REFUSED", "zij hebben die toestemming geweigerd"),
)  # fmt: skip
_INFORMED: tuple[ReplyKeyword, ...] = (
    ("GEINFORMEERD", "INFORMED", "u hebt de jongere en/of de ouders inmiddels geïnformeerd"),
)
# The municipality's answers to an escalation (core.regie); after REGIE it names or closes.
_REGIE_NEXT: tuple[ReplyKeyword, ...] = (
    ("AANWIJZEN <instelling-id>", "ASSIGN <institution-id>",
     "u wijst de instelling aan die de procescoördinatie krijgt; die moet nog accepteren"),
    ("AFGEROND <toelichting>", "CLOSED <explanation>",
     "de gemeente rondt dit af, met een korte toelichting (verplicht) voor de betrokkenen"),
)  # fmt: skip
_REGIE: tuple[ReplyKeyword, ...] = (
    ("REGIE", "TAKE OVER",
     "de gemeente neemt dit zelf op; de betrokkenen horen het en de herinneringen stoppen"),
    *_REGIE_NEXT,
)  # fmt: skip
_SUCCESSION: tuple[ReplyKeyword, ...] = (
    ("AKKOORD", "ACCEPT", "uw instelling neemt de procescoördinatie over"),
    ("WEIGER <reden>", "DECLINE <reason>",
     "uw instelling weigert, met een korte reden; de huidige coördinator houdt haar tenzij de "
     "beslisregels een volgende instelling aanwijzen"),
)  # fmt: skip
REPLY_KEYWORDS: dict[str, tuple[ReplyKeyword, ...]] = {
    "coordinatie-toegewezen": _COORDINATION,
    "coordinatie-overname": _SUCCESSION,
    "coordinatie-herinnering": _COORDINATION,
    "coordinatie-overgedragen": _COORDINATION,
    "match": _CONTACT + _CONSENT,
    "gezinsmatch": _CONTACT + _CONSENT,
    "informeren-herinnering": _INFORMED,
    "match-opvolging": _CONTACT,
    "signaal-verloopt": _EXTEND,
    "coordinatie-escalatie": _REGIE,
    "match-escalatie": _REGIE,
    "gemeente-regie": _REGIE_NEXT,
}

DateLike = date | datetime | str | None


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class RenderedSlack:
    """What ``chat.postMessage`` needs: ``text`` (notification preview, fallback) and
    ``blocks``."""

    text: str
    blocks: list[dict[str, Any]]


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


def slack_escape(text: str) -> str:
    """Slack mrkdwn escaping: only ``&``, ``<`` and ``>`` are control characters
    (api.slack.com/reference/surfaces/formatting#escaping); a value escaped so cannot mention
    ``<!channel>``, a user, or hide a link."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_value(value: Any) -> Any:
    """``finalize`` of the Slack environment: every printed value becomes the escaped inside of
    a JSON string. Markup (a shared macro's output, ``tojson``) is already safe."""
    if isinstance(value, Markup):
        return value
    return Markup(json.dumps(slack_escape(str(value)), ensure_ascii=False)[1:-1])


# Block Kit limits (api.slack.com/reference/block-kit/blocks): past them Slack refuses the whole
# message with invalid_blocks, so texts are shortened and surplus blocks dropped instead.
SLACK_MAX_BLOCKS = 50
SLACK_MAX_VIEW_BLOCKS = 100  # modals and the App Home
SLACK_TEXT_LIMITS = {"header": 150, "section": 3000, "context": 2000, "button": 75}
SLACK_FIELD_LIMIT = 2000
SLACK_MAX_FIELDS = 10
SLACK_MAX_TEXT = 3000  # the message's own ``text``: Slack truncates past 40,000; keep it short


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _fit_text_object(container: dict[str, Any], key: str, limit: int) -> None:
    text_object = container.get(key)
    if isinstance(text_object, dict) and isinstance(text_object.get("text"), str):
        text_object["text"] = _shorten(text_object["text"], limit)


def fit_slack_blocks(
    blocks: list[dict[str, Any]],
    *,
    max_blocks: int = SLACK_MAX_BLOCKS,
    shortened: str = "Dit bericht is ingekort; de e-mail van de verwijsindex bevat alles.",
) -> list[dict[str, Any]]:
    """Blocks within Slack's limits: long texts end in '…', at most ``max_blocks`` (50 in a
    message, 100 in a view; the last one then says the message was shortened)."""
    for block in blocks:
        kind = block.get("type")
        if kind in ("header", "section"):
            _fit_text_object(block, "text", SLACK_TEXT_LIMITS[kind])
        if kind == "section" and isinstance(block.get("fields"), list):
            block["fields"] = block["fields"][:SLACK_MAX_FIELDS]
            for field in block["fields"]:
                if isinstance(field, dict) and isinstance(field.get("text"), str):
                    field["text"] = _shorten(field["text"], SLACK_FIELD_LIMIT)
        if kind == "context":
            for element in block.get("elements", []):
                if isinstance(element, dict) and isinstance(element.get("text"), str):
                    element["text"] = _shorten(element["text"], SLACK_TEXT_LIMITS["context"])
        if kind == "actions":
            for element in block.get("elements", []):
                if isinstance(element, dict):
                    _fit_text_object(element, "text", SLACK_TEXT_LIMITS["button"])
    if len(blocks) > max_blocks:
        # The buttons stay: without them the message could not be answered from Slack.
        actions = [b for b in blocks if b.get("type") == "actions"]
        room = max_blocks - 1 - len(actions)
        kept = [b for b in blocks if b.get("type") != "actions"][:room]
        notice = {"type": "context", "elements": [{"type": "mrkdwn", "text": shortened}]}
        blocks = [*kept, notice, *actions]
    return blocks


class TemplateRenderer:
    """Renders ``<channel>/<kind>.<part>.j2`` from ``template_dir`` (default: the repository's
    ``templates/``). Dates are shown in ``timezone`` (the region's; default Europe/Amsterdam).
    Safe to share between threads. Each template is read once per process (no ``stat`` of its
    files on every mail): a changed template takes effect when the service restarts."""

    def __init__(
        self, template_dir: Path | None = None, *, timezone: ZoneInfo = DEFAULT_TIMEZONE
    ) -> None:
        self.template_dir = Path(template_dir) if template_dir else TEMPLATES_DIR
        self.timezone = timezone
        self.environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(self.template_dir)),
            auto_reload=False,
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
        self.slack_environment = jinja2.Environment(
            loader=self.environment.loader,
            auto_reload=False,
            undefined=jinja2.StrictUndefined,
            autoescape=True,  # macro output is Markup, so it is not escaped a second time
            finalize=_slack_value,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.slack_environment.filters.update(filters)
        self.slack_environment.globals["reply_keywords"] = reply_keywords

    def render_part(self, channel: str, kind: str, part: str, context: dict[str, Any]) -> str:
        """One part, e.g. ``render_part("slack", "match", "blocks", context)``."""
        for name in (channel, kind, part):
            if not _NAME.fullmatch(name):
                raise ValueError(f"no template for {channel!r}/{kind!r}/{part!r}: not a name")
        name = f"{channel}/{kind}.{part}.j2"
        environment = self.slack_environment if channel == "slack" else self.environment
        try:
            template = environment.get_template(name)
        except jinja2.TemplateNotFound as exc:
            raise ValueError(f"no template {name} for notification kind {kind!r}") from exc
        return template.render({**context, "kind": kind})

    def render_email(self, kind: str, context: dict[str, Any]) -> RenderedEmail:
        return RenderedEmail(
            subject=one_line(self.render_part("email", kind, "subject", context)),
            text=self.render_part("email", kind, "text", context),
            html=self.render_part("email", kind, "html", context),
        )

    def render_slack(self, kind: str, context: dict[str, Any]) -> list[dict[str, Any]]:
        """The Block Kit blocks of ``slack/<kind>.blocks.j2``, within Slack's limits."""
        rendered = self.render_part("slack", kind, SLACK_PART, context)
        try:
            blocks = json.loads(rendered)
        except json.JSONDecodeError as exc:
            # The message names the position only: the text around it may quote the context.
            raise ValueError(
                f"slack/{kind}.{SLACK_PART}.j2 is not valid JSON (line {exc.lineno}, "
                f"column {exc.colno}: {exc.msg})"
            ) from None
        if not isinstance(blocks, list) or not all(
            isinstance(block, dict) and isinstance(block.get("type"), str) for block in blocks
        ):
            raise ValueError(f"slack/{kind}.{SLACK_PART}.j2 must be a list of blocks")
        return fit_slack_blocks(blocks)

    def render_slack_text(self, kind: str, context: dict[str, Any]) -> str:
        """The message's ``text``: the e-mail subject, one line, escaped for mrkdwn."""
        subject = one_line(self.render_part("email", kind, "subject", context))
        return _shorten(slack_escape(subject), SLACK_MAX_TEXT)

    def render_slack_message(self, kind: str, context: dict[str, Any]) -> RenderedSlack:
        return RenderedSlack(
            text=self.render_slack_text(kind, context), blocks=self.render_slack(kind, context)
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
