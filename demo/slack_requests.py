"""Requests to the Bolt endpoint as Slack sends them: signed (``v0:{timestamp}:{body}``,
HMAC-SHA256 with the signing secret), form-encoded, with a user's own ids. For the demo, which
plays the professionals' side of Slack."""

from __future__ import annotations

import itertools
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

TEAM_ID = "T0VERWIJS"
APP_ID = "A0VERWIJS"


@dataclass(frozen=True)
class SlackAnswer:
    status: int
    body: str

    def json(self) -> dict[str, Any]:
        return json.loads(self.body) if self.body.strip().startswith("{") else {}


class SignedSlackRequests:
    def __init__(self, endpoint: str, signing_secret: str, response_url_base: str) -> None:
        self.endpoint = endpoint
        self.signer = SignatureVerifier(signing_secret)
        self.response_url_base = response_url_base
        self._ids = itertools.count(1)

    def _next(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}"

    def _post(self, body: str) -> SlackAnswer:
        timestamp = str(int(time.time()))
        signature = self.signer.generate_signature(timestamp=timestamp, body=body) or ""
        request = urllib.request.Request(
            self.endpoint,
            data=body.encode(),
            method="POST",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": timestamp,
                "X-Slack-Signature": signature,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return SlackAnswer(response.status, response.read().decode())
        except urllib.error.HTTPError as error:
            return SlackAnswer(error.code, error.read().decode())

    def command(self, user_id: str, name: str, text: str) -> SlackAnswer:
        return self._post(
            urlencode(
                {
                    "team_id": TEAM_ID,
                    "channel_id": "CDEMO0001",
                    "user_id": user_id,
                    "command": name,
                    "text": text,
                    "api_app_id": APP_ID,
                    "response_url": self.response_url_base + self._next("cmd"),
                    "trigger_id": self._next("trigger."),
                }
            )
        )

    def submit_as_filled_in(
        self, user_id: str, view: dict[str, Any], *, typed: dict[str, str] | None = None
    ) -> SlackAnswer:
        """Press "Versturen" on a modal as the app opened it, after typing ``typed`` (block id
        -> text) into its text inputs: every other input keeps the value the app put in it (the
        demo pre-fills the form from the command's text)."""
        payload = {
            "type": "view_submission",
            "team": {"id": TEAM_ID},
            "user": {"id": user_id, "team_id": TEAM_ID},
            "api_app_id": APP_ID,
            "trigger_id": self._next("trigger."),
            "view": {
                **view,
                "id": view.get("id") or self._next("V"),
                "team_id": TEAM_ID,
                "hash": self._next("hash."),
                "state": {"values": _initial_values(view, typed or {})},
            },
        }
        return self._post(urlencode({"payload": json.dumps(payload)}))

    def press_button(
        self, user_id: str, message: dict[str, Any], action_id: str
    ) -> SlackAnswer | None:
        """Press the button ``action_id`` of a message the app posted; None when it has none."""
        button = next(
            (
                element
                for block in message.get("blocks") or []
                if block.get("type") == "actions"
                for element in block.get("elements", [])
                if element.get("action_id") == action_id
            ),
            None,
        )
        if button is None:
            return None
        payload = {
            "type": "block_actions",
            "team": {"id": TEAM_ID},
            "user": {"id": user_id, "team_id": TEAM_ID},
            "api_app_id": APP_ID,
            "trigger_id": self._next("trigger."),
            "container": {
                "type": "message",
                "message_ts": message["ts"],
                "channel_id": message["channel"],
            },
            "channel": {"id": message["channel"]},
            "message": {"type": "message", "ts": message["ts"], "blocks": message["blocks"]},
            "response_url": self.response_url_base + self._next("act"),
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": "antwoord",
                    "value": button.get("value", ""),
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        return self._post(urlencode({"payload": json.dumps(payload)}))


def _initial_values(view: dict[str, Any], typed: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for block in view.get("blocks", []):
        if block.get("type") != "input":
            continue
        element = block["element"]
        kind, action_id = element["type"], element["action_id"]
        if kind in ("static_select", "radio_buttons"):
            state = {"type": kind, "selected_option": element.get("initial_option")}
        elif kind == "datepicker":
            state = {"type": kind, "selected_date": element.get("initial_date")}
        elif kind == "checkboxes":
            state = {"type": kind, "selected_options": element.get("initial_options", [])}
        else:
            value = typed.get(block["block_id"], element.get("initial_value"))
            state = {"type": kind, "value": value}
        values[block["block_id"]] = {action_id: state}
    return values
