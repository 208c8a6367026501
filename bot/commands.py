"""``/verwijsindex help | mijn | afwezig | terug | overdracht | intrekken | verleng |
geinformeerd | toestemming``
(CONTRACT §5). Answers are ephemeral, in Dutch.

The command is acknowledged first; the work follows. Every subcommand that changes something
runs once per ``trigger_id`` (:mod:`bot.dedupe`), and its refusal is given once too.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import Session

from bot import arguments, linking
from bot.absence_form import declare_for
from bot.access import acting, professional_of, who_is
from bot.context import Bot
from bot.dedupe import AlreadyDone, SlackRequest, once, remember_refused
from bot.errors import error_text
from bot.identity import Linked
from bot.mrkdwn import split_message
from bot.reply import ReplyTo
from bot.transfers import ask_for_senior, request_transfer_for
from core.absence import end_absence
from core.consent import ConsentOutcome, record_consent
from core.errors import InvalidInput, UserError
from core.free_text import quote
from core.informing import InformingOutcome, record_informed
from core.models import Professional
from core.overview import my_work
from core.rendering import slack_escape
from core.signals import extend_signal, withdraw_signal

log = logging.getLogger(__name__)

T = TypeVar("T")

USAGE = {
    "afwezig": "/verwijsindex afwezig <van> <tot> [@vervanger]",
    "overdracht": "/verwijsindex overdracht @van @naar [@senior]",
    "intrekken": "/verwijsindex intrekken <S-nummer> onterecht|risico-weg",
    "verleng": "/verwijsindex verleng <S-nummer> [maanden]",
    "geinformeerd": "/verwijsindex geinformeerd <S-nummer>",
    "toestemming": "/verwijsindex toestemming <M-nummer> gevraagd|gegeven|geweigerd",
}


@dataclass(frozen=True)
class Invocation:
    bot: Bot
    client: AsyncWebClient
    linked: Linked
    reply: ReplyTo
    args: list[str]
    command: dict[str, Any]

    @property
    def request(self) -> SlackRequest:
        return SlackRequest("command", str(self.command.get("trigger_id")), self.linked.user_id)

    async def once(self, work: Callable[[Session], T]) -> T | None:
        """``work`` unless this command was carried out before (a retry): then ``None``."""
        outcome = await self.bot.run(once(self.request, work))
        self.bot.outbox_waiting.set()
        return None if isinstance(outcome, AlreadyDone) else outcome.value

    def usage(self, name: str) -> InvalidInput:
        return InvalidInput(f"gebruik: `{USAGE[name]}`")


Handler = Callable[[Invocation], Awaitable[str | None]]


async def mine(inv: Invocation) -> str:
    bot, linked = inv.bot, inv.linked

    def view(session: Session) -> Any:
        return my_work(
            session, bot.config, professional_of(session, linked), actor=acting(session, linked)
        )

    return bot.texts.render("mijn", work=await bot.run(view))


async def absent(inv: Invocation) -> str | None:
    if len(inv.args) not in (2, 3):
        raise inv.usage("afwezig")
    bot, linked = inv.bot, inv.linked
    today = bot.config.today()
    starts_on = arguments.day(inv.args[0], field="van", today=today)
    ends_on = arguments.day(inv.args[1], field="tot", today=today)
    stand_in_email = (
        await arguments.person_email(bot.identity, inv.client, inv.args[2], field="vervanger")
        if len(inv.args) == 3
        else None
    )
    # The same declaration as the App Home's form (bot.absence_form).
    done = await inv.once(declare_for(bot, linked, starts_on, ends_on, stand_in_email))
    return None if done is None else bot.texts.render("afwezig", **done)


async def back(inv: Invocation) -> str | None:
    bot, linked = inv.bot, inv.linked

    def end(session: Session) -> dict[str, Any]:
        absence = end_absence(
            linked.email, session=session, config=bot.config, actor=acting(session, linked)
        )
        stand_in = session.get(Professional, absence.stand_in_id) if absence.stand_in_id else None
        return {
            "starts_on": absence.starts_on,
            "ends_on": absence.ends_on,
            "stand_in_name": stand_in.name if stand_in else "",
        }

    done = await inv.once(end)
    return None if done is None else bot.texts.render("terug", **done)


async def transfer(inv: Invocation) -> str | None:
    if len(inv.args) not in (2, 3):
        raise inv.usage("overdracht")
    bot, client = inv.bot, inv.client
    from_email = await arguments.person_email(bot.identity, client, inv.args[0], field="van")
    to_email = await arguments.person_email(bot.identity, client, inv.args[1], field="naar")
    if len(inv.args) == 2:
        # The secretariat acts on a senior's instruction (DOMAIN: Transfer on absence): ask who.
        await ask_for_senior(bot, inv.client, inv.command, from_email, to_email)
        return None
    senior_email = await arguments.person_email(bot.identity, client, inv.args[2], field="senior")
    done = await inv.once(request_transfer_for(bot, inv.linked, from_email, to_email, senior_email))
    return None if done is None else bot.texts.render("overdracht-aangevraagd", **done)


async def withdraw(inv: Invocation) -> str | None:
    if len(inv.args) != 2:
        raise inv.usage("intrekken")
    bot, linked = inv.bot, inv.linked
    number = arguments.reference(inv.args[0], "S", field="S-nummer")
    reason = inv.args[1].lower()

    def run(session: Session) -> str:
        return withdraw_signal(
            number, reason, session=session, config=bot.config, actor=acting(session, linked)
        )

    done = await inv.once(run)
    return None if done is None else bot.texts.render("ingetrokken", number=done, reason=reason)


async def extend(inv: Invocation) -> str | None:
    if len(inv.args) not in (1, 2):
        raise inv.usage("verleng")
    bot, linked = inv.bot, inv.linked
    number = arguments.reference(inv.args[0], "S", field="S-nummer")
    months = arguments.months(inv.args[1] if len(inv.args) == 2 else None)

    def run(session: Session) -> dict[str, Any]:
        ends_on = extend_signal(
            number, months, session=session, config=bot.config, actor=acting(session, linked)
        )
        return {"number": number, "ends_on": ends_on}

    done = await inv.once(run)
    return None if done is None else bot.texts.render("verlengd", **done)


async def informed(inv: Invocation) -> str | None:
    if len(inv.args) != 1:
        raise inv.usage("geinformeerd")
    bot, linked = inv.bot, inv.linked
    number = arguments.reference(inv.args[0], "S", field="S-nummer")

    def run(session: Session) -> InformingOutcome:
        return record_informed(
            number, session=session, config=bot.config, actor=acting(session, linked)
        )

    done = await inv.once(run)
    return None if done is None else bot.texts.render("geinformeerd", outcome=done)


async def consent(inv: Invocation) -> str | None:
    if len(inv.args) != 2:
        raise inv.usage("toestemming")
    bot, linked = inv.bot, inv.linked
    number = arguments.reference(inv.args[0], "M", field="M-nummer")
    status = inv.args[1]

    def run(session: Session) -> ConsentOutcome:
        return record_consent(
            number, status, session=session, config=bot.config, actor=acting(session, linked)
        )

    done = await inv.once(run)
    return None if done is None else bot.texts.render("toestemming", outcome=done)


SUBCOMMANDS: dict[str, Handler] = {
    "mijn": mine,
    "afwezig": absent,
    "terug": back,
    "overdracht": transfer,
    "intrekken": withdraw,
    "verleng": extend,
    "geinformeerd": informed,
    "geïnformeerd": informed,
    "toestemming": consent,
}
HELP_WORDS = ("", "help", "hulp", "?")


def register(app: AsyncApp, bot: Bot) -> None:
    @app.command("/verwijsindex")
    @bot.listener
    async def verwijsindex(ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient) -> None:
        words = str(command.get("text") or "").split()
        name = words[0].lower() if words else ""
        if name in HELP_WORDS:
            # Help needs neither the database nor Slack: it is the acknowledgement itself.
            await ack(text=bot.help_text(), response_type="ephemeral")
            return
        await ack()
        user_id = command["user_id"]
        reply = ReplyTo(client, user_id, response_url=command.get("response_url"))
        if name == linking.SUBCOMMAND:  # for those not linked yet (Slack hides their address)
            await linking.koppel(bot, client, user_id, words[1:], reply)
            return
        linked = await who_is(bot, client, user_id, reply)
        if linked is None:
            return
        handler = SUBCOMMANDS.get(name)
        if handler is None:
            await reply(f"{slack_escape(quote(name, limit=30))} ken ik niet.\n{bot.help_text()}")
            return
        invocation = Invocation(bot, client, linked, reply, words[1:], command)
        try:
            text = await handler(invocation)
        except UserError as error:
            if await bot.run(remember_refused(invocation.request)):
                await reply(error_text(error))
            return
        except Exception as error:
            log.exception("/verwijsindex %s failed", name)
            await reply(error_text(error))
            return
        if text:
            # A long overview (mijn) comes in parts, each under Slack's advised 4,000 characters.
            for part in split_message(text):
                await reply(part)
