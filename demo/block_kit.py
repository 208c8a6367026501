"""Slack's Block Kit rules, as the fake Web API (:mod:`demo.slack_stand_in`) applies them to
every message and view it receives: what Slack itself would refuse with ``invalid_blocks``.

Each block is read by slack_sdk's own models (``Block.parse``, ``View``) and validated by them
(``to_dict()`` runs ``validate_json()`` on the block and on everything inside it); a block that
slack_sdk reads back differently carries an attribute Slack does not know. On top of that come
the documented limits slack_sdk leaves out (docs.slack.dev/reference/block-kit/blocks,
/reference/surfaces/views, /reference/methods/chat.postMessage):

* a message holds at most 50 blocks, a modal or the App Home at most 100;
* a message's ``text`` is kept under 4,000 characters (Slack's advice; it truncates at 40,000);
* a section's ``fields`` hold at most 2,000 characters each; no text object is empty;
* a ``block_id`` is unique within its message or view, an ``action_id`` within its block;
* a modal has a title, and a submit button when it holds input blocks; a home view neither;
* a plain-text input's ``max_length`` is at most 3,000, its ``initial_value`` fits it.

:func:`problems` returns what is wrong, one line each, naming the block by position and type
but never quoting its text (a test's message may hold what the privacy guard looks for).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

MESSAGE_METHODS = frozenset({"chat.postMessage", "chat.update", "chat.postEphemeral"})
VIEW_METHODS = frozenset({"views.open", "views.update", "views.push", "views.publish"})

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_MESSAGE_TEXT = 4000  # Slack's advice for a message's own text
MAX_FIELD_TEXT = 2000
MAX_TEXT_INPUT = 3000
MRKDWN_OPTIONS = ("checkboxes", "radio_buttons")  # their options may be mrkdwn
VIEW_ATTRIBUTES = View.attributes | {"external_id", "submit_disabled"}


def problems(method: str, args: dict[str, Any]) -> list[str]:
    """What Slack would refuse in a call of ``method`` (empty when it is valid)."""
    if method in VIEW_METHODS:
        return view_problems(args.get("view"))
    if method in MESSAGE_METHODS or method == "response_url":
        return message_problems(args)
    return []


def message_problems(args: dict[str, Any]) -> list[str]:
    found: list[str] = []
    text = args.get("text")
    if text is not None and not isinstance(text, str):
        found.append("text is not a string")
    elif isinstance(text, str) and len(text) > MAX_MESSAGE_TEXT:
        found.append(f"text has {len(text)} characters (at most {MAX_MESSAGE_TEXT})")
    blocks = args.get("blocks")
    if blocks is None:
        return found
    if not isinstance(blocks, list):
        return [*found, "blocks is not a list"]
    if len(blocks) > MAX_MESSAGE_BLOCKS:
        found.append(f"{len(blocks)} blocks (a message holds at most {MAX_MESSAGE_BLOCKS})")
    return found + blocks_problems(blocks)


def view_problems(view: Any) -> list[str]:
    if not isinstance(view, dict):
        return ["view is not an object"]
    found = [f"view attribute {key!r} is unknown" for key in view if key not in VIEW_ATTRIBUTES]
    blocks = view.get("blocks")
    if not isinstance(blocks, list) or not blocks:
        return [*found, "a view needs at least one block"]
    try:
        View(**view).to_dict()
    except (SlackObjectFormationError, TypeError, AttributeError) as exc:
        found.append(f"view: {exc}")
    kind = view.get("type")
    if kind == "modal":
        if not view.get("title"):
            found.append("a modal needs a title")
        if any(b.get("type") == "input" for b in blocks if isinstance(b, dict)) and not view.get(
            "submit"
        ):
            found.append("a modal with input blocks needs a submit button")
    elif kind != "home":
        found.append(f"view type {kind!r} is neither modal nor home")
    if len(blocks) > MAX_VIEW_BLOCKS:
        found.append(f"{len(blocks)} blocks (a view holds at most {MAX_VIEW_BLOCKS})")
    return found + blocks_problems(blocks)


def blocks_problems(blocks: list[Any]) -> list[str]:
    found: list[str] = []
    block_ids: set[str] = set()
    for position, block in enumerate(blocks):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            found.append(f"block {position} is not a block")
            continue
        where = f"block {position} ({block['type']})"
        found += [f"{where}: {problem}" for problem in _block_problems(block)]
        block_id = block.get("block_id")
        if isinstance(block_id, str):
            if block_id in block_ids:
                found.append(f"{where}: block_id {block_id!r} is used twice")
            block_ids.add(block_id)
    return found


def _block_problems(block: dict[str, Any]) -> Iterator[str]:
    try:
        parsed = Block.parse(block)
        if parsed is None:
            yield "slack_sdk does not know this block type"
            return
        read_back = parsed.to_dict()  # validates the block and everything in it
    except (SlackObjectFormationError, TypeError, AttributeError, KeyError) as exc:
        yield str(exc)
        return
    for path in _differences(block, read_back):
        yield f"slack_sdk reads {path or 'the block'} differently (unknown or misplaced attribute)"
    yield from _limits(block)


def _differences(sent: Any, read: Any, path: str = "") -> Iterator[str]:
    if isinstance(sent, dict) and isinstance(read, dict):
        for key in sent.keys() | read.keys():
            yield from _differences(sent.get(key), read.get(key), f"{path}.{key}".lstrip("."))
    elif isinstance(sent, list) and isinstance(read, list) and len(sent) == len(read):
        for index, (one, other) in enumerate(zip(sent, read, strict=True)):
            yield from _differences(one, other, f"{path}[{index}]")
    elif sent != read:
        yield path


def _limits(block: dict[str, Any]) -> Iterator[str]:
    for where, text_object in _plain_text_places(block):
        if not isinstance(text_object, dict) or text_object.get("type") != "plain_text":
            yield f"{where} must be a plain_text object"
    for field in block.get("fields") or []:
        if isinstance(field, dict) and len(str(field.get("text") or "")) > MAX_FIELD_TEXT:
            yield f"a field holds more than {MAX_FIELD_TEXT} characters"
    for text_object in _text_objects(block):
        if not str(text_object.get("text") or "").strip():
            yield "a text is empty"
    action_ids: set[str] = set()
    for element in _elements(block):
        action_id = element.get("action_id")
        if isinstance(action_id, str):
            if action_id in action_ids:
                yield f"action_id {action_id!r} is used twice in the block"
            action_ids.add(action_id)
        if element.get("type") == "plain_text_input":
            limit = element.get("max_length", MAX_TEXT_INPUT)
            if not isinstance(limit, int) or not 0 < limit <= MAX_TEXT_INPUT:
                yield f"a text input's max_length is not between 1 and {MAX_TEXT_INPUT}"
            elif len(str(element.get("initial_value") or "")) > limit:
                yield "a text input's initial_value is longer than its max_length"


def _plain_text_places(block: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Where Slack takes plain text only: a header, an input's label and hint, a button's text,
    a placeholder, an option's text."""
    if block.get("type") == "header":
        yield "the header's text", block.get("text")
    if block.get("type") == "input":
        yield "the input's label", block.get("label")
        if "hint" in block:
            yield "the input's hint", block["hint"]
    for element in _elements(block):
        if element.get("type") == "button":
            yield "a button's text", element.get("text")
        if "placeholder" in element:
            yield "a placeholder", element["placeholder"]
        for option in element.get("options") or []:
            if isinstance(option, dict) and element.get("type") not in MRKDWN_OPTIONS:
                yield "an option's text", option.get("text")


def _elements(block: dict[str, Any]) -> Iterator[dict[str, Any]]:
    candidates = [*(block.get("elements") or []), block.get("element"), block.get("accessory")]
    yield from (element for element in candidates if isinstance(element, dict))


def _text_objects(value: Any) -> Iterator[dict[str, Any]]:
    """Every text object (``{"type": "plain_text"|"mrkdwn", "text": ...}``) inside ``value``."""
    if isinstance(value, dict):
        if value.get("type") in ("plain_text", "mrkdwn") and "text" in value:
            yield value
        for item in value.values():
            yield from _text_objects(item)
    elif isinstance(value, list):
        for item in value:
            yield from _text_objects(item)
