"""The buttons on notifications (CONTRACT §5): accept, decline (with a reason), hand over (to an
involved institution) for coordination; "contact gelegd" and consent asked / given / refused for
a match; "verlengen" for an expiring signal; "geïnformeerd" on the reminder to inform. Each
button's ``value`` is the notification's reply token, the same token an e-mail reply
(``antwoord+TOKEN@``) carries, so the core handles both alike (``core.replies``): the answer
must come from the professional, or from someone of the institution, it was sent to.

After the answer the message shows who did what and when, without its buttons.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import Session

from bot.answered import MessagePlace, mark_answered, pack, unpack
from bot.blocks import plain, section
from bot.context import Bot
from bot.errors import error_text
from bot.home_tab import from_home, refresh_home
from bot.identity import Linked
from bot.interactions import Press, on_press, submitted
from core.clock import utcnow
from core.errors import DomainError, UserError
from core.rendering import slack_escape
from core.replies import ReplyAction, answer, hand_over_options, regie_assign_options

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
# The municipality's answers to an escalation (core.regie): REGIE is a direct answer (above);
# AANWIJZEN asks for the institution, AFGEROND for the toelichting, each in a modal, as
# declining and handing over do.
ASSIGN_VIEW = "antwoord_aanwijzen_keuze"
CLOSE_VIEW = "antwoord_afronden_toelichting"
INPUT_ACTION = "waarde"

Choices = list[tuple[str, str]]  # (institution id, name)
ChoicesOf = Callable[[str, Linked], Callable[[Session], Choices]]


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


def hand_over_choices(token: str, linked: Linked) -> Callable[[Session], Choices]:
    """The form's choices: the core resolves the token and checks the sender as for the answer
    itself (core.replies.hand_over_options)."""

    def choices(session: Session) -> Choices:
        return hand_over_options(token, sender=linked.email, session=session)

    return choices


def regie_choices(token: str, linked: Linked) -> Callable[[Session], Choices]:
    """The form's choices: the core resolves the token and checks that the presser is the
    municipality's contact (core.replies.regie_assign_options)."""

    def choices(session: Session) -> Choices:
        return regie_assign_options(token, sender=linked.email, session=session)

    return choices


def _input_element(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    values = ((view.get("state") or {}).get("values") or {}).get(block_id) or {}
    return values.get(INPUT_ACTION) or {}


def _input_value(view: dict[str, Any], block_id: str) -> str:
    element = _input_element(view, block_id)
    value = element.get("value")
    if value is None:
        value = (element.get("selected_option") or {}).get("value")
    return str(value or "").strip()


def _selected_label(view: dict[str, Any], block_id: str) -> str:
    element = _input_element(view, block_id)
    return str(((element.get("selected_option") or {}).get("text") or {}).get("text") or "")


@dataclass(frozen=True)
class AnswerForm:
    """A button whose answer needs one thing more, asked in a modal: a typed reason or note, or
    (with ``choices_of``) an institution chosen from those the core offers the presser. The
    submitted modal answers ``keyword`` with what was filled in, as an e-mail reply would."""

    button: str  # the button's action_id
    view: str  # the modal's callback_id
    keyword: str  # the ReplyAction
    title: str
    submit: str
    intro: str
    block_id: str
    label: str
    choices_of: ChoicesOf | None = None
    none_left: str = ""  # the answer when the core offers no institution

    def modal(self, metadata: str, choices: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
        element: dict[str, Any]
        if self.choices_of is None:
            element = {
                "type": "plain_text_input",
                "action_id": INPUT_ACTION,
                "multiline": True,
                "max_length": 500,
            }
        else:
            element = {
                "type": "static_select",
                "action_id": INPUT_ACTION,
                "placeholder": plain("Kies een instelling"),
                "options": [
                    {"text": plain(name, 75), "value": institution_id}
                    for institution_id, name in choices[:100]
                ],
            }
        return {
            "type": "modal",
            "callback_id": self.view,
            "title": plain(self.title),
            "submit": plain(self.submit),
            "close": plain("Annuleren"),
            "private_metadata": metadata,
            "blocks": [
                section(self.intro),
                {
                    "type": "input",
                    "block_id": self.block_id,
                    "label": plain(self.label),
                    "element": element,
                },
            ],
        }

    def answer_in(self, view: dict[str, Any]) -> tuple[ReplyAction, str]:
        """The answer in the submitted ``view``, and how the answered message names it."""
        value = _input_value(view, self.block_id)
        shown = (_selected_label(view, self.block_id) or value) if self.choices_of else value
        return ReplyAction(self.keyword, value), shown

    def field_errors(self, error: DomainError) -> dict[str, str] | None:
        return {self.block_id: error.message[:150]} if error.field == self.block_id else None


DECLINE = AnswerForm(
    button="antwoord_weiger",
    view=DECLINE_VIEW,
    keyword="decline",
    title="Coördinatie weigeren",
    submit="Weigeren",
    intro="Waarom kan uw instelling de procescoördinatie niet op zich nemen? De reden gaat mee "
    "naar de volgende instelling; noem geen inhoud over de jongere.",
    block_id="reden",
    label="Reden",
)
HAND_OVER = AnswerForm(
    button="antwoord_overdragen",
    view=HAND_OVER_VIEW,
    keyword="hand-over",
    title="Coördinatie overdragen",
    submit="Overdragen",
    intro="Aan welke betrokken instelling draagt u de procescoördinatie over? Die instelling "
    "moet de coördinatie daarna nog accepteren.",
    block_id="instelling",
    label="Instelling",
    choices_of=hand_over_choices,
    none_left="Er is geen andere betrokken instelling die de procescoördinatie mag overnemen. "
    "U kunt accepteren of weigeren.",
)
ASSIGN = AnswerForm(
    button="antwoord_aanwijzen",
    view=ASSIGN_VIEW,
    keyword="assign",
    title="Coördinator aanwijzen",
    submit="Aanwijzen",
    intro="Welke instelling wijst de gemeente aan als procescoördinator? Die instelling krijgt "
    "de toewijzing met een reactietermijn en moet de coördinatie nog accepteren.",
    block_id="instelling",
    label="Instelling",
    choices_of=regie_choices,
    none_left="Er is geen instelling die u kunt aanwijzen: er loopt geen procescoördinatie, of "
    "geen instelling mag die volgens het convenant op zich nemen. U kunt regie nemen of "
    "afronden.",
)
CLOSE = AnswerForm(
    button="antwoord_afronden",
    view=CLOSE_VIEW,
    keyword="close",
    title="Afronden",
    submit="Afronden",
    intro="Waarom rondt de gemeente dit af? De toelichting gaat naar de betrokken instellingen "
    "en melders; noem geen inhoud over de jongere.",
    block_id="toelichting",
    label="Toelichting",
)
ANSWER_FORMS = (DECLINE, HAND_OVER, ASSIGN, CLOSE)

_reason_modal = DECLINE.modal
_hand_over_modal = HAND_OVER.modal
_assign_modal = ASSIGN.modal
_close_modal = CLOSE.modal


def register(app: AsyncApp, bot: Bot) -> None:
    @on_press(app, bot, re.compile(r"^toestemming_(gevraagd|gegeven|geweigerd)$"))
    async def consent_answer(press: Press, action: dict[str, Any]) -> None:
        status = CONSENT_ANSWERS[action["action_id"]]
        token = str(action.get("value") or "")
        work = answerer(bot, press.linked, token, ReplyAction("consent", status))
        done = await press.once(action, work, failed=f"a Slack consent answer ({status})")
        if done is not None:  # the buttons stay; the App Home shows the item's new state
            await press.show(slack_escape(done.value), on_message=False)

    @on_press(app, bot, re.compile(r"^antwoord_(akkoord|contact|verlengen|geinformeerd|regie)$"))
    async def direct_answer(press: Press, action: dict[str, Any]) -> None:
        keyword = DIRECT_ANSWERS[action["action_id"]]
        work = answerer(bot, press.linked, str(action.get("value") or ""), ReplyAction(keyword))
        done = await press.once(action, work, failed=f"a Slack answer ({keyword})")
        if done is not None:
            detail = done.value if keyword == "extend" else ""
            line = answered_line(bot, press.linked, keyword, detail=detail)
            await press.show(line, else_reply=False)

    for form in ANSWER_FORMS:
        _register_form(app, bot, form)


def _register_form(app: AsyncApp, bot: Bot, form: AnswerForm) -> None:
    """The button that opens ``form``'s modal, and the modal's submission."""

    @on_press(app, bot, form.button)
    async def ask(press: Press, action: dict[str, Any]) -> None:
        choices: Choices = []
        if form.choices_of is not None:
            # The core says which institutions may be chosen by the presser (or refuses).
            token = str(action.get("value") or "")
            try:
                choices = await bot.run(form.choices_of(token, press.linked))
            except UserError as error:
                await press.reply(error_text(error))
                return
            if not choices:
                await press.reply(form.none_left)
                return
        await press.open(
            form.modal(_metadata(press.body, action), choices),
            unopened="Het venster kon niet worden geopend. Probeer de knop nog eens.",
            what="an answer",
        )

    @app.view(form.view)
    @bot.listener
    async def submit(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        place, extra = unpack(view.get("private_metadata"))
        answering = await submitted(
            bot, ack, body, view, client, title=form.title, response_url=extra.get("response_url")
        )
        if answering is None:
            return
        reply_action, shown = form.answer_in(view)
        work = answerer(bot, answering.linked, extra.get("token", ""), reply_action)
        done = await answering.once(work, busy_field=form.block_id, field_errors=form.field_errors)
        if done is None:
            return
        line = answered_line(bot, answering.linked, form.keyword, argument=shown)
        if place is not None:
            await mark_answered(client, place, line)
        elif extra.get("home"):
            await refresh_home(bot, client, {"user": {"id": answering.reply.user_id}}, notice=line)


def _metadata(body: dict[str, Any], action: dict[str, Any]) -> str:
    place = MessagePlace.of_action(body) or MessagePlace("", "")
    return pack(
        place,
        token=str(action.get("value") or ""),
        response_url=str(body.get("response_url") or ""),
        # Pressed on the App Home: refreshed after the modal (bot.home_tab).
        **({"home": str(body["user"]["id"])} if from_home(body) else {}),
    )
