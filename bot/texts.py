"""The bot's own answers (confirmations, refusals, help, ``mijn``) as jinja2 templates
(STYLE 7): ``templates/slack/bot/<name>.mrkdwn.j2``, Slack mrkdwn text.

Every value a template prints is escaped for mrkdwn (``&``, ``<``, ``>``), exactly once, so no
value can mention ``<!channel>`` or forge a link: the escaped value is Markup, and so is a
macro's output (autoescape), so a value printed through a macro is not escaped again.
``StrictUndefined`` makes a missing value an error rather than a hole. Templates receive
references, codes, dates and contact details — never a youth's identity (DOMAIN: Content-free).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup

from core.rendering import TEMPLATES_DIR, aantal, datum, datum_kort, slack_escape

FOLDER = "slack/bot"
_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")


def _escaped(value: Any) -> Markup:
    if isinstance(value, Markup):
        return value
    return Markup(slack_escape("" if value is None else str(value)))


class BotTexts:
    def __init__(self, template_dir: Path | None = None, *, timezone: ZoneInfo) -> None:
        root = Path(template_dir) if template_dir else TEMPLATES_DIR
        self.environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(root / FOLDER)),
            undefined=jinja2.StrictUndefined,
            # Autoescape only marks macro output as Markup: every value is already escaped for
            # mrkdwn by ``finalize``, and Markup is never escaped (HTML-style) a second time.
            autoescape=True,
            finalize=_escaped,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.environment.filters.update(
            {
                "datum": lambda value: datum(value, timezone),
                "datum_kort": lambda value: datum_kort(value, timezone),
                "aantal": aantal,
            }
        )

    def render(self, template: str, /, **context: Any) -> str:
        if not _NAME.fullmatch(template):
            raise ValueError(f"no bot text {template!r}: not a name")
        return str(self.environment.get_template(f"{template}.mrkdwn.j2").render(context)).strip()
