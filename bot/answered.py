"""After a button press: the message is updated to say who did what and when, and its buttons
are gone (nobody answers twice from the same message).

A decline or a hand-over first asks for a reason or a choice in a modal; the message is updated
when that modal is submitted. A view submission does not carry the message, so the modal's
``private_metadata`` (at most 3000 characters) carries the message's place and its blocks,
compressed. The blocks hold references and contact details only (DOMAIN: Content-free). When they
do not fit, the update keeps the first blocks that do.
"""

from __future__ import annotations

import base64
import json
import logging
import zlib
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks import section
from core.rendering import SLACK_MAX_BLOCKS, fit_slack_blocks

log = logging.getLogger(__name__)

METADATA_LIMIT = 3000
ANSWER_BLOCK_PREFIX = "antwoord"  # the buttons (block_id "antwoord") and their explanation
# Buttons that record a status which may change again (consent after a match: asked, then
# given) stay when the message's other answer is given (core.replies.STANDING).
STANDING_BLOCK_PREFIX = "toestemming"


@dataclass(frozen=True)
class MessagePlace:
    channel: str
    ts: str
    blocks: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of_action(cls, body: dict[str, Any]) -> MessagePlace | None:
        container = body.get("container") or {}
        message = body.get("message") or {}
        channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
        ts = container.get("message_ts") or message.get("ts")
        if not channel or not ts:
            return None
        return cls(str(channel), str(ts), list(message.get("blocks") or []))


def without_answers(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        block
        for block in blocks
        if str(block.get("block_id") or "").startswith(STANDING_BLOCK_PREFIX)
        or (
            block.get("type") != "actions"
            and not str(block.get("block_id") or "").startswith(ANSWER_BLOCK_PREFIX)
        )
    ]


def pack(place: MessagePlace, **extra: str) -> str:
    """The message's place and blocks (without buttons), and ``extra``, for private_metadata."""
    blocks = without_answers(place.blocks)
    while True:
        packed = base64.b64encode(
            zlib.compress(json.dumps(blocks, separators=(",", ":")).encode(), 9)
        ).decode()
        metadata = json.dumps(
            {"channel": place.channel, "ts": place.ts, "blocks": packed, **extra},
            separators=(",", ":"),
        )
        if len(metadata) <= METADATA_LIMIT or not blocks:
            return metadata
        blocks = blocks[:-1]


def unpack(raw: str | None) -> tuple[MessagePlace | None, dict[str, str]]:
    """What :func:`pack` packed: the message's place (``None`` when unknown) and the extras."""
    try:
        data = json.loads(raw or "{}")
    except ValueError:
        return None, {}
    if not isinstance(data, dict):
        return None, {}
    extra = {k: str(v) for k, v in data.items() if k not in ("channel", "ts", "blocks")}
    if not data.get("channel") or not data.get("ts"):
        return None, extra
    try:
        blocks = json.loads(zlib.decompress(base64.b64decode(str(data.get("blocks") or ""))))
    except (ValueError, zlib.error):
        blocks = []
    if not isinstance(blocks, list):
        blocks = []
    return MessagePlace(str(data["channel"]), str(data["ts"]), blocks), extra


def answered_blocks(blocks: list[dict[str, Any]], line: str) -> list[dict[str, Any]]:
    """``blocks`` with their buttons replaced by ``line`` (mrkdwn), within Slack's 50 blocks:
    the message is shortened (core.rendering.fit_slack_blocks) rather than the line left out.
    One shape for every answered message: a pressed one (:func:`mark_answered`) and the others
    about the same subject, answered elsewhere (bot.threads)."""
    kept = fit_slack_blocks(without_answers(blocks), max_blocks=SLACK_MAX_BLOCKS - 2)
    return [*kept, {"type": "divider"}, section(line)]


async def mark_answered(client: AsyncWebClient, place: MessagePlace, line: str) -> None:
    """Replace the pressed message's buttons by ``line`` (:func:`answered_blocks`)."""
    blocks = answered_blocks(place.blocks, line)
    try:
        await client.chat_update(channel=place.channel, ts=place.ts, text=line, blocks=blocks)
    except (SlackApiError, ClientError, TimeoutError) as exc:
        log.warning("could not update the answered message in %s: %s", place.channel, exc)
