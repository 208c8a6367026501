"""Declaring an absence from Slack (DOMAIN: Transfer on absence): ``/verwijsindex afwezig
<van> <tot> [@vervanger]`` and the App Home's *Afwezigheid melden*, which opens a modal with
the same three fields (two date pickers, a colleague to stand in). Both declare it through
:func:`declare_for`, with ``core.absence.declare_absence`` deciding what is allowed.

The modal's submission is carried out before it is acknowledged (``bot.submission``), so a
refusal naming a field (an end before the start, a stand-in of another institution) shows on
that field; a retried submission (the same view) declares nothing twice. Afterwards the Home
is published again, saying what was recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import Session

from bot import arguments
from bot.access import acting
from bot.blocks import plain, section
from bot.context import Bot
from bot.home import DECLARE_ABSENCE
from bot.home_tab import publish_home
from bot.identity import Linked
from bot.interactions import Press, on_press, submitted
from core.absence import declare_absence
from core.errors import DomainError, InvalidInput
from core.models import Professional

CALLBACK_ID = "afwezigheid"
TITLE = "Afwezigheid melden"
FIELDS = ("van", "tot", "vervanger")  # block ids; also the field names core.absence refuses


def declare_for(
    bot: Bot, linked: Linked, starts_on: date, ends_on: date, stand_in_email: str | None
) -> Callable[[Session], dict[str, Any]]:
    """The work of declaring ``linked``'s absence; returns what the confirmation shows."""

    def declare(session: Session) -> dict[str, Any]:
        absence = declare_absence(
            linked.email,
            starts_on,
            ends_on,
            stand_in_email,
            session=session,
            config=bot.config,
            actor=acting(session, linked),
        )
        stand_in = session.get(Professional, absence.stand_in_id) if absence.stand_in_id else None
        return {
            "starts_on": absence.starts_on,
            "ends_on": absence.ends_on,
            "stand_in": {"name": stand_in.name, "email": stand_in.email} if stand_in else None,
        }

    return declare


def absence_modal(today: date) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": CALLBACK_ID,
        "title": plain(TITLE),
        "submit": plain("Vastleggen"),
        "close": plain("Annuleren"),
        "blocks": [
            section(
                "Bent u een tijd afwezig? Een vervanger van uw instelling ontvangt dan ook uw "
                "berichten, en wie u zoekt, ziet de vervanger. Langer dan een jaar weg of "
                "vertrokken: vraag een overdracht van uw signalen aan."
            ),
            {
                "type": "input",
                "block_id": "van",
                "label": plain("Afwezig van"),
                "element": {
                    "type": "datepicker",
                    "action_id": "datum",
                    "initial_date": today.isoformat(),
                },
            },
            {
                "type": "input",
                "block_id": "tot",
                "label": plain("Tot en met"),
                "element": {
                    "type": "datepicker",
                    "action_id": "datum",
                    "placeholder": plain("Kies de laatste dag"),
                },
            },
            {
                "type": "input",
                "block_id": "vervanger",
                "label": plain("Vervanger"),
                "optional": True,
                "hint": plain("Een collega van uw eigen instelling; leeg: geen vervanger."),
                "element": {
                    "type": "users_select",
                    "action_id": "collega",
                    "placeholder": plain("Kies een collega"),
                },
            },
        ],
    }


def _state(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    values = ((view.get("state") or {}).get("values") or {}).get(block_id) or {}
    element = next(iter(values.values()), None) if isinstance(values, dict) else None
    return element if isinstance(element, dict) else {}


def _day(view: dict[str, Any], block_id: str, today: date) -> date:
    value = str(_state(view, block_id).get("selected_date") or "").strip()
    if not value:
        raise InvalidInput("kies een datum", field=block_id)
    return arguments.day(value, field=block_id, today=today)


def _field_errors(error: DomainError) -> dict[str, str] | None:
    if error.field in FIELDS:
        return {error.field: error.message[:150]}
    return None


def register(app: AsyncApp, bot: Bot) -> None:
    @on_press(app, bot, DECLARE_ABSENCE)
    async def open_absence_form(press: Press, action: dict[str, Any]) -> None:
        await press.open(
            absence_modal(bot.config.today()),
            unopened="Het formulier kon niet worden geopend. Probeer de knop nog eens.",
            what="the absence form",
        )

    @app.view(CALLBACK_ID)
    @bot.listener
    async def submit_absence(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        form = await submitted(bot, ack, body, view, client, title=TITLE)
        if form is None:
            return
        try:
            today = bot.config.today()
            starts_on = _day(view, "van", today)
            ends_on = _day(view, "tot", today)
            stand_in = str(_state(view, "vervanger").get("selected_user") or "")
            # A chosen colleague counts only when linked, as an @-mention in the command does.
            stand_in_email = (
                await arguments.person_email(
                    bot.identity, client, f"<@{stand_in}>", field="vervanger"
                )
                if stand_in
                else None
            )
        except Exception as error:
            await form.submission.refuse(error, _field_errors)
            return
        work = declare_for(bot, form.linked, starts_on, ends_on, stand_in_email)
        done = await form.once(work, busy_field="tot", field_errors=_field_errors)
        if done is not None:
            notice = bot.texts.render("afwezig", **done.value)
            await publish_home(bot, client, form.reply.user_id, notice=notice)
