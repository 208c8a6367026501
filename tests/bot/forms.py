"""Filling in a modal the way a user does: Slack's ``view.state.values`` for the inputs of a
view as the app opened it (untouched inputs keep their initial values)."""

from __future__ import annotations

from datetime import date
from typing import Any

from tests.bot.conftest import SlackAnswer, SlackSender
from tests.bot.fake_slack_api import FakeSlackApi

View = dict[str, Any]


def opened_views(api: FakeSlackApi) -> list[dict[str, Any]]:
    return [call.args["view"] for call in api.calls_to("views.open", succeeded=True)]


def last_opened_view(api: FakeSlackApi, count: int = 1) -> dict[str, Any]:
    api.wait_for("views.open", count)
    return opened_views(api)[-1]


def input_blocks(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["block_id"]: b for b in view["blocks"] if b.get("type") == "input"}


def form_values(view: dict[str, Any], fields: dict[str, str | None]) -> dict[str, Any]:
    """``fields`` maps block ids to the text typed or the option value chosen (``None``:
    cleared); other inputs keep what the app put in them."""
    values: dict[str, Any] = {}
    for block_id, block in input_blocks(view).items():
        element = block["element"]
        kind, action_id = element["type"], element["action_id"]
        if kind == "plain_text_input":
            typed = fields[block_id] if block_id in fields else element.get("initial_value")
            values[block_id] = {action_id: {"type": kind, "value": typed}}
            continue
        if block_id in fields:
            wanted = fields[block_id]
            chosen = next((o for o in element["options"] if o["value"] == wanted), None)
            assert wanted is None or chosen is not None, f"no option {wanted!r} in {block_id}"
        else:
            chosen = element.get("initial_option")
        values[block_id] = {action_id: {"type": kind, "selected_option": chosen}}
    return values


def open_signal_form(sender: SlackSender, api: FakeSlackApi, email: str, text: str = "") -> View:
    before = len(api.calls_to("views.open"))
    answer = sender.command("/signaal", text, email)
    assert answer.status == 200
    return last_opened_view(api, before + 1)


def signal_fields(bsn: str | None, birth: date, **changes: str | None) -> dict[str, str | None]:
    fields: dict[str, str | None] = {
        "bsn": bsn,
        "naam": "Fenna Testkind",
        "geboortedatum": f"{birth:%d-%m-%Y}",
        "gemeente": "Groningen",
        "code": "laag",
        "kenmerk": "DOSSIER-77",
        "geinformeerd": "ja",
        "folder": "ja",
    }
    fields.update(changes)
    return fields


def submit_signal(
    sender: SlackSender,
    api: FakeSlackApi,
    email: str,
    fields: dict[str, str | None],
    *,
    headers: dict[str, str] | None = None,
) -> tuple[View, SlackAnswer]:
    """Open ``/signaal``, fill in ``fields``, submit; the payload and the endpoint's answer.

    When the form was accepted (the modal closes), this returns once the outcome has arrived:
    the signal is placed after the answer, and confirmed or refused by a message."""
    view = open_signal_form(sender, api, email)
    payload = sender.view_submission(view, form_values(view, fields), email)
    return payload, submit_view(sender, api, payload, headers=headers)


def submit_view(
    sender: SlackSender,
    api: FakeSlackApi,
    payload: dict[str, Any],
    *,
    headers: dict[str, str] | None = None,
) -> SlackAnswer:
    """Submit a ``/signaal`` form; an accepted one returns once its outcome message arrived."""
    before = len(api.calls_to("response_url"))
    answer = sender.interact(payload, headers=headers)
    if answer.status == 200 and answer.body == "":
        api.wait_for("response_url", before + 1)
    return answer
