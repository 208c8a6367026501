"""Small Block Kit builders shared by the bot's modals and answers."""

from __future__ import annotations

from typing import Any

TITLE_LIMIT = 24  # Slack: a modal's title is at most 24 characters
SECTION_LIMIT = 3000  # Slack: a section's text is at most 3000 characters


def plain(text: str, limit: int = 150) -> dict[str, Any]:
    return {"type": "plain_text", "text": text[:limit], "emoji": False}


def section(text_md: str) -> dict[str, Any]:
    text = text_md if len(text_md) <= SECTION_LIMIT else text_md[: SECTION_LIMIT - 1] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def context(text_md: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text_md[:2000]}]}


def notice_view(title: str, text_md: str) -> dict[str, Any]:
    """A modal that only tells something (``response_action: update``), closed with one button."""
    return {
        "type": "modal",
        "title": plain(title, TITLE_LIMIT),
        "close": plain("Sluiten"),
        "blocks": [section(text_md)],
    }
