"""Placing a signal from Slack: ``/signaal`` opens the form, its submission places the signal
(CONTRACT §5). The form is the only Slack path that takes a youth's identity: text after
``/signaal`` pre-fills only the other fields (:mod:`bot.typed_signal`), and a direct message that
looks like a signal gets a button (:mod:`bot.direct_messages`) that opens the form here.

A submission is checked before it is acknowledged — the fields by ``core.fields``, the rest that
needs no database by ``core.signals.check_signal`` — so mistakes show on the form's fields
(``response_action: errors``). Then the form is stored, sealed, in the commit that dedupes
Slack's retry (``bot.stored_submissions.FormIntake``): only then does the modal close, so a
crash after "ok" loses nothing. The signal is placed from what was stored
(``bot.submission_processing``; after a crash, by the recovery worker); the core decides who may
signal, and its confirmation (the signal number) or refusal follows as an ephemeral message
(after a restart: a DM). A retried submission (the same view) places nothing and says nothing
twice.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.access import who_is
from bot.context import Bot
from bot.dedupe import AlreadyDone, SlackRequest
from bot.interactions import Press, on_press, submitted
from bot.reply import ReplyTo
from bot.signal_form import (
    CALLBACK_ID,
    decode_metadata,
    field_errors,
    signal_modal,
    submitted_pairs,
    unusable_prefill,
)
from bot.signal_placement import FORM_KIND
from bot.stored_submissions import FormIntake, StoredForm, submission_lease
from bot.submission_processing import LiveProcessing
from bot.typed_signal import TypedSignal, from_button_value, typed_signal
from core.errors import InvalidInput
from core.fields import collect_fields, parse_signal
from core.signals import check_signal

log = logging.getLogger(__name__)

FORM_TITLE = "Signaal afgeven"
# Shown on the form's first field when storing it takes longer than Slack waits (bot.submission).
BUSY = {
    "bsn": "Het is even druk: uw signaal is nog niet opgeslagen. Druk zo nog eens op Plaatsen "
    "(het wordt nooit dubbel geplaatst)."
}
OPEN_FORM_ACTION = "signaal_formulier"  # the button on the answer to a DM that looks like a signal


async def open_form(
    bot: Bot,
    client: AsyncWebClient,
    reply: ReplyTo,
    *,
    trigger_id: str,
    typed: TypedSignal,
    channel: str,
) -> None:
    """Open the form pre-filled with ``typed`` (which never holds identity fields)."""
    view = signal_modal(
        bot.config,
        typed.prefill,
        notes=typed.form_notes() + unusable_prefill(bot.config, typed.prefill),
        metadata={"response_url": reply.response_url or "", "channel": channel},
    )
    try:
        await client.views_open(trigger_id=trigger_id, view=view)
    except SlackApiError as exc:
        log.warning("views.open for the signal form failed: %s", exc.response.get("error"))
        await reply("Het formulier kon niet worden geopend. Probeer `/signaal` nog eens.")


def register(app: AsyncApp, bot: Bot) -> None:
    intake = FormIntake(bot.engine, bot.config.keys.ring, held_for=submission_lease(bot.settings))
    processing = LiveProcessing(bot, intake.vault, stores_idle=intake.idle)

    @app.command("/signaal")
    @bot.listener
    async def open_signal_form(
        ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        user_id = command["user_id"]
        reply = ReplyTo(client, user_id, response_url=command.get("response_url"))
        if await who_is(bot, client, user_id, reply) is None:
            return
        typed = typed_signal(command.get("text") or "")
        # The form first: the trigger_id lasts 3 seconds (api.slack.com/interactivity/handling).
        await open_form(
            bot,
            client,
            reply,
            trigger_id=command["trigger_id"],
            typed=typed,
            channel=command.get("channel_id") or "",
        )
        if typed.carries_identity:
            await reply(bot.texts.render("identiteit-in-chat", where="opdracht"))

    @on_press(app, bot, OPEN_FORM_ACTION)  # on the answer to a DM, and on the App Home
    async def open_signal_form_from_button(press: Press, action: dict[str, Any]) -> None:
        await open_form(
            bot,
            press.client,
            press.reply,
            trigger_id=press.body["trigger_id"],
            typed=from_button_value(str(action.get("value") or "")),
            channel=str((press.body.get("channel") or {}).get("id") or ""),
        )

    @app.view(CALLBACK_ID)
    @bot.listener
    async def submit_signal(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        metadata = decode_metadata(view.get("private_metadata"))
        response_url = metadata.get("response_url")
        submitting = await submitted(
            bot, ack, body, view, client, title=FORM_TITLE, response_url=response_url
        )
        if submitting is None:
            return
        submission, linked, reply = submitting.submission, submitting.linked, submitting.reply
        pairs = submitted_pairs(view)
        try:
            command = parse_signal(collect_fields(pairs))
            check_signal(command, config=bot.config, today=bot.config.today())
        except InvalidInput as error:
            await submission.refuse(error, field_errors)
            return
        # The form is right: stored first, then the modal closes. Placing waits its turn for
        # the database, which under load can take longer than Slack waits for this answer; the
        # outcome follows as a message.
        request = SlackRequest("view", str(view["id"]), reply.user_id)
        form = StoredForm(FORM_KIND, linked, tuple(pairs), response_url or "")
        try:
            stored = await submission.stored(intake.store(request, form), busy=BUSY)
        except Exception as error:
            await submission.refuse(error)
            return
        await submission.close()
        if isinstance(stored, AlreadyDone):
            return  # a retry: the first submission is placed and answered
        answer = await processing.process(stored.value)
        if answer is not None:
            await reply(answer.text)
