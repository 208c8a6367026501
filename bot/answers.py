"""The buttons on notifications (CONTRACT §5): accept, decline (with a reason), hand over (to an
involved institution) for coordination; "contact gelegd" and consent asked / given / refused for
a match; "verlengen" for an expiring signal; "geïnformeerd" on the reminder to inform. Each
button's ``value`` is the notification's reply token, the same token an e-mail reply
(``antwoord+TOKEN@``) carries, so the core handles both alike (``core.replies``): the answer
must come from the professional, or from someone of the institution, it was sent to.

After the answer the message shows who did what and when, without its buttons.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import Session

from bot.access import who_is, who_submits
from bot.answered import MessagePlace, mark_answered, pack, unpack
from bot.blocks import plain, section
from bot.context import Bot
from bot.dedupe import AlreadyDone, SlackRequest, once
from bot.errors import error_text
from bot.home_tab import from_home, refresh_home
from bot.identity import Linked
from bot.reply import ReplyTo
from bot.submission import Submission
from core.clock import utcnow
from core.errors import DomainError, UserError
from core.rendering import slack_escape
from core.replies import ReplyAction, answer, hand_over_options, regie_assign_options

log = logging.getLogger(__name__)

DIRECT_ANSWERS = {
    "antwoord_akkoord": "accept",
    "antwoord_contact": "contacted",
    "antwoord_verlengen": "extend",
    "antwoord_geinformeerd": "informed",
    "antwoord_regie": "take-up",  # the municipality takes an escalation up (core.regie)
}
# Consent after a match (core.consent): the message keeps these buttons, as the status may
# change again; the press is confirmed to the presser alone.
CONSENT_ANSWERS = {
    "toestemming_gevraagd": "asked",
    "toestemming_gegeven": "given",
    "toestemming_geweigerd": "refused",
}
DECLINE_VIEW = "antwoord_weiger_reden"
HAND_OVER_VIEW = "antwoord_overdragen_keuze"
INPUT_ACTION = "waarde"


def answerer(bot: Bot, linked: Linked, token: str, action: ReplyAction) -> Callable[[Session], str]:
    def run(session: Session) -> str:
        return answer(
            token, action, sender=linked.email, channel="slack", session=session, config=bot.config
        )

    return run


def answered_line(
    bot: Bot, linked: Linked, action: str, *, argument: str = "", detail: str = ""
) -> str:
    return bot.texts.render(
        "antwoord-verwerkt",
        name=linked.name,
        action=action,
        argument=argument,
        detail=detail,
        moment=utcnow(),
    )


def hand_over_choices(token: str, linked: Linked) -> Callable[[Session], list[tuple[str, str]]]:
    """The form's choices: the core resolves the token and checks the sender as for the answer
    itself (core.replies.hand_over_options)."""

    def choices(session: Session) -> list[tuple[str, str]]:
        return hand_over_options(token, sender=linked.email, session=session)

    return choices


def _input_value(view: dict[str, Any], block_id: str) -> str:
    element = (((view.get("state") or {}).get("values") or {}).get(block_id) or {}).get(
        INPUT_ACTION
    ) or {}
    value = element.get("value")
    if value is None:
        value = (element.get("selected_option") or {}).get("value")
    return str(value or "").strip()


def _selected_label(view: dict[str, Any], block_id: str) -> str:
    element = (((view.get("state") or {}).get("values") or {}).get(block_id) or {}).get(
        INPUT_ACTION
    ) or {}
    return str(((element.get("selected_option") or {}).get("text") or {}).get("text") or "")


def _reason_modal(metadata: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": DECLINE_VIEW,
        "title": plain("Coördinatie weigeren"),
        "submit": plain("Weigeren"),
        "close": plain("Annuleren"),
        "private_metadata": metadata,
        "blocks": [
            section(
                "Waarom kan uw instelling de procescoördinatie niet op zich nemen? De reden "
                "gaat mee naar de volgende instelling; noem geen inhoud over de jongere."
            ),
            {
                "type": "input",
                "block_id": "reden",
                "label": plain("Reden"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": INPUT_ACTION,
                    "multiline": True,
                    "max_length": 500,
                },
            },
        ],
    }


def _hand_over_modal(metadata: str, choices: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": HAND_OVER_VIEW,
        "title": plain("Coördinatie overdragen"),
        "submit": plain("Overdragen"),
        "close": plain("Annuleren"),
        "private_metadata": metadata,
        "blocks": [
            section(
                "Aan welke betrokken instelling draagt u de procescoördinatie over? Die "
                "instelling moet de coördinatie daarna nog accepteren."
            ),
            {
                "type": "input",
                "block_id": "instelling",
                "label": plain("Instelling"),
                "element": {
                    "type": "static_select",
                    "action_id": INPUT_ACTION,
                    "placeholder": plain("Kies een instelling"),
                    "options": [
                        {"text": plain(name, 75), "value": institution_id}
                        for institution_id, name in choices[:100]
                    ],
                },
            },
        ],
    }


def _field_errors(block_id: str) -> Callable[[DomainError], dict[str, str] | None]:
    def errors(error: DomainError) -> dict[str, str] | None:
        return {block_id: error.message[:150]} if error.field == block_id else None

    return errors


def register(app: AsyncApp, bot: Bot) -> None:
    @app.action(re.compile(r"^toestemming_(gevraagd|gegeven|geweigerd)$"))
    @bot.listener
    async def consent_answer(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        user_id = body["user"]["id"]
        reply = ReplyTo(client, user_id, response_url=body.get("response_url"))
        linked = await who_is(bot, client, user_id, reply)
        if linked is None:
            return
        status = CONSENT_ANSWERS[action["action_id"]]
        request = SlackRequest(
            "action", f"{action.get('action_ts')}:{action['action_id']}", user_id
        )
        work = answerer(bot, linked, str(action.get("value") or ""), ReplyAction("consent", status))
        try:
            outcome = await bot.run(once(request, work))
        except Exception as error:
            if not isinstance(error, UserError):
                log.exception("a Slack consent answer (%s) failed", status)
            await reply(error_text(error))
            return
        bot.outbox_waiting.set()
        if isinstance(outcome, AlreadyDone):
            return
        if from_home(body):  # the App Home shows it, and the item's new state
            await refresh_home(bot, client, body, notice=slack_escape(outcome.value))
        else:
            await reply(slack_escape(outcome.value))

    @app.action(re.compile(r"^antwoord_(akkoord|contact|verlengen|geinformeerd|regie)$"))
    @bot.listener
    async def direct_answer(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        user_id = body["user"]["id"]
        reply = ReplyTo(client, user_id, response_url=body.get("response_url"))
        linked = await who_is(bot, client, user_id, reply)
        if linked is None:
            return
        keyword = DIRECT_ANSWERS[action["action_id"]]
        request = SlackRequest(
            "action", f"{action.get('action_ts')}:{action['action_id']}", user_id
        )
        work = answerer(bot, linked, str(action.get("value") or ""), ReplyAction(keyword))
        try:
            outcome = await bot.run(once(request, work))
        except Exception as error:
            if not isinstance(error, UserError):
                log.exception("a Slack answer (%s) failed", keyword)
            await reply(error_text(error))
            return
        bot.outbox_waiting.set()
        if isinstance(outcome, AlreadyDone):
            return
        place = MessagePlace.of_action(body)
        detail = outcome.value if keyword == "extend" else ""
        if place is not None:
            await mark_answered(client, place, answered_line(bot, linked, keyword, detail=detail))
        elif from_home(body):  # pressed on the App Home: the item leaves its list
            notice = answered_line(bot, linked, keyword, detail=detail)
            await refresh_home(bot, client, body, notice=notice)

    @app.action("antwoord_weiger")
    @bot.listener
    async def ask_decline_reason(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        user_id = body["user"]["id"]
        reply = ReplyTo(client, user_id, response_url=body.get("response_url"))
        if await who_is(bot, client, user_id, reply) is None:
            return
        metadata = _metadata(body, action)
        await _open(client, body, _reason_modal(metadata), reply)

    @app.action("antwoord_overdragen")
    @bot.listener
    async def ask_hand_over_target(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        await _open_institution_choice(
            bot,
            client,
            body,
            action,
            hand_over_choices,
            _hand_over_modal,
            none_left="Er is geen andere betrokken instelling die de procescoördinatie mag "
            "overnemen. U kunt accepteren of weigeren.",
        )

    @app.view(DECLINE_VIEW)
    @bot.listener
    async def decline(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        reason = _input_value(view, "reden")
        await _submit_answer(
            bot,
            ack,
            body,
            view,
            client,
            ReplyAction("decline", reason),
            shown=reason,
            title="Coördinatie weigeren",
            block_id="reden",
        )

    @app.view(HAND_OVER_VIEW)
    @bot.listener
    async def hand_over(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        target = _input_value(view, "instelling")
        await _submit_answer(
            bot,
            ack,
            body,
            view,
            client,
            ReplyAction("hand-over", target),
            shown=_selected_label(view, "instelling") or target,
            title="Coördinatie overdragen",
            block_id="instelling",
        )

    _register_regie(app, bot)


def _metadata(body: dict[str, Any], action: dict[str, Any]) -> str:
    place = MessagePlace.of_action(body) or MessagePlace("", "")
    return pack(
        place,
        token=str(action.get("value") or ""),
        response_url=str(body.get("response_url") or ""),
        # Pressed on the App Home: refreshed after the modal (bot.home_tab).
        **({"home": str(body["user"]["id"])} if from_home(body) else {}),
    )


async def _open_institution_choice(
    bot: Bot,
    client: AsyncWebClient,
    body: dict[str, Any],
    action: dict[str, Any],
    choices_of: Callable[[str, Any], Any],
    modal_of: Callable[[str, Any], dict[str, Any]],
    *,
    none_left: str,
) -> None:
    """A button that names an institution (OVERDRAGEN, AANWIJZEN): the core says which may be
    chosen for the sender, and the form offers those (or the sender hears there are none)."""
    user_id = body["user"]["id"]
    reply = ReplyTo(client, user_id, response_url=body.get("response_url"))
    linked = await who_is(bot, client, user_id, reply)
    if linked is None:
        return
    try:
        choices = await bot.run(choices_of(str(action.get("value") or ""), linked))
    except UserError as error:
        await reply(error_text(error))
        return
    if not choices:
        await reply(none_left)
        return
    await _open(client, body, modal_of(_metadata(body, action), choices), reply)


async def _open(
    client: AsyncWebClient, body: dict[str, Any], view: dict[str, Any], reply: ReplyTo
) -> None:
    try:
        await client.views_open(trigger_id=body["trigger_id"], view=view)
    except SlackApiError as exc:
        log.warning("views.open for an answer failed: %s", exc.response.get("error"))
        await reply("Het venster kon niet worden geopend. Probeer de knop nog eens.")


async def _submit_answer(
    bot: Bot,
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    action: ReplyAction,
    *,
    shown: str,
    title: str,
    block_id: str,
) -> None:
    place, extra = unpack(view.get("private_metadata"))
    user_id = body["user"]["id"]
    reply = ReplyTo(client, user_id, response_url=extra.get("response_url") or None)
    submission = Submission(ack, reply, title=title)
    linked = await who_submits(bot, client, user_id, submission)
    if linked is None:
        return
    request = SlackRequest("view", str(view["id"]), user_id)
    work = answerer(bot, linked, extra.get("token", ""), action)
    try:
        outcome = await submission.outcome(bot.run(once(request, work)), busy_field=block_id)
    except Exception as error:
        await submission.refuse(error, _field_errors(block_id))
        return
    await submission.close()
    bot.outbox_waiting.set()
    if isinstance(outcome, AlreadyDone):
        return
    line = answered_line(bot, linked, action.keyword, argument=shown)
    if place is not None:
        await mark_answered(client, place, line)
    elif extra.get("home"):
        await refresh_home(bot, client, {"user": {"id": user_id}}, notice=line)


# --- the municipality's answers to an escalation (core.regie) ---------------------------------
# REGIE is a direct answer (above); AANWIJZEN asks for the institution, AFGEROND for the
# toelichting, each in a modal, as declining and handing over do.

ASSIGN_VIEW = "antwoord_aanwijzen_keuze"
CLOSE_VIEW = "antwoord_afronden_toelichting"


def regie_choices(token: str, linked: Linked) -> Callable[[Session], list[tuple[str, str]]]:
    """The form's choices: the core resolves the token and checks that the presser is the
    municipality's contact (core.replies.regie_assign_options)."""

    def choices(session: Session) -> list[tuple[str, str]]:
        return regie_assign_options(token, sender=linked.email, session=session)

    return choices


def _assign_modal(metadata: str, choices: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": ASSIGN_VIEW,
        "title": plain("Coördinator aanwijzen"),
        "submit": plain("Aanwijzen"),
        "close": plain("Annuleren"),
        "private_metadata": metadata,
        "blocks": [
            section(
                "Welke instelling wijst de gemeente aan als procescoördinator? Die instelling "
                "krijgt de toewijzing met een reactietermijn en moet de coördinatie nog "
                "accepteren."
            ),
            {
                "type": "input",
                "block_id": "instelling",
                "label": plain("Instelling"),
                "element": {
                    "type": "static_select",
                    "action_id": INPUT_ACTION,
                    "placeholder": plain("Kies een instelling"),
                    "options": [
                        {"text": plain(name, 75), "value": institution_id}
                        for institution_id, name in choices[:100]
                    ],
                },
            },
        ],
    }


def _close_modal(metadata: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": CLOSE_VIEW,
        "title": plain("Afronden"),
        "submit": plain("Afronden"),
        "close": plain("Annuleren"),
        "private_metadata": metadata,
        "blocks": [
            section(
                "Waarom rondt de gemeente dit af? De toelichting gaat naar de betrokken "
                "instellingen en melders; noem geen inhoud over de jongere."
            ),
            {
                "type": "input",
                "block_id": "toelichting",
                "label": plain("Toelichting"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": INPUT_ACTION,
                    "multiline": True,
                    "max_length": 500,
                },
            },
        ],
    }


def _register_regie(app: AsyncApp, bot: Bot) -> None:
    @app.action("antwoord_aanwijzen")
    @bot.listener
    async def ask_assign_target(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        await _open_institution_choice(
            bot,
            client,
            body,
            action,
            regie_choices,
            _assign_modal,
            none_left="Er is geen instelling die u kunt aanwijzen: er loopt geen "
            "procescoördinatie, of geen instelling mag die volgens het convenant op zich "
            "nemen. U kunt regie nemen of afronden.",
        )

    @app.action("antwoord_afronden")
    @bot.listener
    async def ask_close_note(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        user_id = body["user"]["id"]
        reply = ReplyTo(client, user_id, response_url=body.get("response_url"))
        if await who_is(bot, client, user_id, reply) is None:
            return
        await _open(client, body, _close_modal(_metadata(body, action)), reply)

    @app.view(ASSIGN_VIEW)
    @bot.listener
    async def assign(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        target = _input_value(view, "instelling")
        await _submit_answer(
            bot,
            ack,
            body,
            view,
            client,
            ReplyAction("assign", target),
            shown=_selected_label(view, "instelling") or target,
            title="Coördinator aanwijzen",
            block_id="instelling",
        )

    @app.view(CLOSE_VIEW)
    @bot.listener
    async def close(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        note = _input_value(view, "toelichting")
        await _submit_answer(
            bot,
            ack,
            body,
            view,
            client,
            ReplyAction("close", note),
            shown=note,
            title="Afronden",
            block_id="toelichting",
        )
