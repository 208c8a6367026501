"""Transfer of a professional's active signals (DOMAIN: Transfer on absence), from Slack.

The secretariat asks with ``/verwijsindex overdracht @van @naar [@senior]``; the law wants the
instructing senior on record, so without one a modal asks which senior of the institution gave
the instruction. The institution's coordinators get the request as a notification with a button
``overdracht_uitvoeren`` (value: the transfer number), which executes it. The core checks who
may request and who may execute.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import Session

from bot.access import acting
from bot.blocks import plain, section
from bot.context import Bot
from bot.identity import Linked
from bot.interactions import Press, on_press, submitted
from bot.signal_form import decode_metadata, encode_metadata
from core.actors import (
    active_professionals_with_role,
    professionals_by_id,
    require_professional,
)
from core.clock import utcnow
from core.errors import InvalidInput
from core.models import Role
from core.transfer import execute_transfer, request_transfer

log = logging.getLogger(__name__)

SENIOR_VIEW = "overdracht_senior"
EXECUTE_ACTION = "overdracht_uitvoeren"
INPUT_ACTION = "waarde"


def request_transfer_for(
    bot: Bot, linked: Linked, from_email: str, to_email: str, senior_email: str
) -> Callable[[Session], dict[str, Any]]:
    def run(session: Session) -> dict[str, Any]:
        transfer = request_transfer(
            from_email,
            to_email,
            senior_email,
            session=session,
            config=bot.config,
            actor=acting(session, linked),
        )
        people = professionals_by_id(
            session,
            (transfer.from_professional_id, transfer.to_professional_id, transfer.instructed_by_id),
        )
        names = {i: p.name for i, p in people.items()}
        return {
            "number": transfer.number,
            "from_name": names.get(transfer.from_professional_id, from_email),
            "to_name": names.get(transfer.to_professional_id, to_email),
            "senior_name": names.get(transfer.instructed_by_id, senior_email),
        }

    return run


def seniors_of(from_email: str) -> Callable[[Session], list[tuple[str, str]]]:
    """(e-mail, name) of the active seniors of the institution whose professional leaves."""

    def run(session: Session) -> list[tuple[str, str]]:
        source = require_professional(session, from_email, field="van")
        seniors = active_professionals_with_role(session, source.institution_id, Role.SENIOR)
        return [(p.email, p.name) for p in seniors]

    return run


def _senior_modal(seniors: list[tuple[str, str]], metadata: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": SENIOR_VIEW,
        "title": plain("Overdracht aanvragen"),
        "submit": plain("Aanvragen"),
        "close": plain("Annuleren"),
        "private_metadata": encode_metadata(metadata),
        "blocks": [
            section(
                f"De actieve signalen van *{metadata['from']}* gaan naar *{metadata['to']}*. "
                "Een overdracht wordt aangevraagd in opdracht van een senior: wie gaf de opdracht?"
            ),
            {
                "type": "input",
                "block_id": "senior",
                "label": plain("In opdracht van"),
                "element": {
                    "type": "static_select",
                    "action_id": INPUT_ACTION,
                    "placeholder": plain("Kies een senior"),
                    "options": [
                        {"text": plain(name, 75), "value": email} for email, name in seniors[:100]
                    ],
                },
            },
        ],
    }


async def ask_for_senior(
    bot: Bot, client: AsyncWebClient, command: dict[str, Any], from_email: str, to_email: str
) -> None:
    """Open the modal that names the senior (raises a user error when there is none)."""
    seniors = await bot.run(seniors_of(from_email))
    if not seniors:
        raise InvalidInput(
            "er staat geen senior van deze instelling in het convenant; een overdracht vraagt de "
            "opdracht van een senior",
            field="senior",
        )
    metadata = {
        "from": from_email,
        "to": to_email,
        "response_url": str(command.get("response_url") or ""),
    }
    try:
        await client.views_open(
            trigger_id=command["trigger_id"], view=_senior_modal(seniors, metadata)
        )
    except SlackApiError as exc:
        log.warning("views.open for a transfer failed: %s", exc.response.get("error"))
        raise InvalidInput("het venster kon niet worden geopend; probeer het nog eens") from exc


def register(app: AsyncApp, bot: Bot) -> None:
    @app.view(SENIOR_VIEW)
    @bot.listener
    async def submit_transfer(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        metadata = decode_metadata(view.get("private_metadata"))
        form = await submitted(
            bot,
            ack,
            body,
            view,
            client,
            title="Overdracht aanvragen",
            response_url=metadata.get("response_url"),
        )
        if form is None:
            return
        values = ((view.get("state") or {}).get("values") or {}).get("senior") or {}
        senior = str(
            ((values.get(INPUT_ACTION) or {}).get("selected_option") or {}).get("value") or ""
        )
        work = request_transfer_for(
            bot, form.linked, metadata.get("from", ""), metadata.get("to", ""), senior
        )
        done = await form.once(
            work,
            busy_field="senior",
            field_errors=lambda e: {"senior": e.message[:150]} if e.field == "senior" else None,
        )
        if done is not None:
            await form.reply(bot.texts.render("overdracht-aangevraagd", **done.value))

    @on_press(app, bot, EXECUTE_ACTION)
    async def execute(press: Press, action: dict[str, Any]) -> None:
        linked = press.linked
        number = str(action.get("value") or "")

        def run(session: Session) -> int:
            transfer = execute_transfer(
                number, session=session, config=bot.config, actor=acting(session, linked)
            )
            return transfer.signals_moved

        done = await press.once(action, run, failed=f"executing transfer {number}")
        if done is not None:
            line = bot.texts.render(
                "overdracht-uitgevoerd",
                number=number,
                name=linked.name,
                moment=utcnow(),
                moved=done.value,
            )
            await press.show(line)
