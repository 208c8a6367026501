"""Text between Slack and the bot: un-escaped once on the way in, escaped once on the way out,
and no longer than Slack advises.

Slack escapes ``&``, ``<`` and ``>`` as ``&amp;``, ``&lt;`` and ``&gt;`` in the text of a slash
command and of a message event, and keeps ``<…>`` for its own mentions and links
(docs.slack.dev/messaging/formatting-message-text#escaping). :func:`unescape_slack_text` is the
one place where that is undone, as Bolt middleware before any listener parses the text: a
kenmerk typed as ``A&B`` is ``A&B`` in the form and in the database, not ``A&amp;B``. A
mention (``<@U123|naam>``) and a mailto link stay as they are: they are control sequences, not
entities. Modal inputs arrive as typed (a view's ``state`` is not escaped) and are left alone.

On the way out every value is escaped once with :func:`core.rendering.slack_escape` (the one
escaping function, also used by the notification templates and :mod:`bot.texts`).

Slack advises keeping a message's text under 4,000 characters
(docs.slack.dev/reference/methods/chat.postMessage#truncating): :func:`split_message` splits a
long answer at line ends into messages that each fit, at most :data:`MAX_PARTS` of them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from core.rendering import slack_escape

MESSAGE_TEXT_LIMIT = 3900  # under Slack's advised 4,000, with room for a "continued" note
MAX_PARTS = 4
SHORTENED = "_(Ingekort: dit overzicht is te lang voor Slack.)_"

__all__ = ["slack_escape", "split_message", "unescape", "unescape_slack_text"]


def unescape(text: str) -> str:
    """Slack's three entities back to their characters (``&amp;`` last: ``&amp;lt;`` is
    ``&lt;`` typed by the user)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


async def unescape_slack_text(body: dict[str, Any], next: Callable[[], Awaitable[Any]]) -> Any:
    """Bolt middleware: a slash command's and a message event's text, un-escaped once."""
    if isinstance(body.get("command"), str) and isinstance(body.get("text"), str):
        body["text"] = unescape(body["text"])
    event = body.get("event")
    if isinstance(event, dict) and event.get("type") == "message" and "text" in event:
        event["text"] = unescape(str(event["text"]))
    return await next()


def split_message(text: str, limit: int = MESSAGE_TEXT_LIMIT) -> list[str]:
    """``text`` as messages of at most ``limit`` characters, split at line ends (a line that
    is too long at a space), never inside an entity or a ``<…>`` sequence; at most
    :data:`MAX_PARTS`, the last then saying it was shortened."""
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        for piece in _cut(line, limit):
            candidate = f"{current}\n{piece}" if current else piece
            if len(candidate) <= limit:
                current = candidate
                continue
            parts.append(current)
            current = piece
    parts.append(current)
    parts = [part.strip("\n") for part in parts if part.strip()]
    if len(parts) > MAX_PARTS:
        last = parts[MAX_PARTS - 1]
        room = limit - len(SHORTENED) - 1
        parts = [*parts[: MAX_PARTS - 1], f"{last[:room].rstrip()}\n{SHORTENED}"]
    return parts or [text]


def _cut(line: str, limit: int) -> list[str]:
    pieces: list[str] = []
    while len(line) > limit:
        cut = line.rfind(" ", 0, limit)
        if cut <= 0:
            cut = limit
        cut = _outside_sequences(line, cut)
        pieces.append(line[:cut].rstrip())
        line = line[cut:].lstrip()
    pieces.append(line)
    return pieces


def _outside_sequences(line: str, cut: int) -> int:
    """``cut`` moved back before an entity (``&amp;``) or a ``<…>`` sequence it would split."""
    head = line[:cut]
    opened = head.rfind("<")
    if opened > head.rfind(">") and opened > 0:
        cut = opened
    head = line[:cut]
    entity = head.rfind("&")
    if entity > head.rfind(";") and cut - entity < 6 and entity > 0:
        cut = entity
    return cut
