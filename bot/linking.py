"""``/verwijsindex koppel <e-mailadres>`` and ``/verwijsindex koppel <code>`` (CONTRACT §5): a
Slack user whose e-mail address Slack does not show the app (a Slack Connect guest, a workspace
that hides addresses) links themselves to their covenant account with a one-time code mailed to
that account's address (``core.slack_codes``). Anyone else is told who they already are, or why
not: a visible address is what links them, and a code cannot override it.
"""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from bot.access import refusal_text
from bot.context import Bot
from bot.errors import error_text
from bot.identity import Linked, RefusalReason
from bot.reply import ReplyTo
from core.errors import InvalidInput, UserError
from core.slack_codes import (
    CODE_LIFETIME,
    Redeemed,
    looks_like_code,
    redeem_link_code,
    request_link_code,
)

SUBCOMMAND = "koppel"
USAGE = "/verwijsindex koppel <e-mailadres> en daarna /verwijsindex koppel <code uit de mail>"


def _address(word: str) -> str:
    """An address as Slack sends it (``<mailto:a@b|a@b>`` when it formats links) or typed."""
    if word.startswith("<mailto:") and word.endswith(">"):
        word = word[len("<mailto:") : -1].split("|", 1)[0]
    address = word.strip().lower()
    local, at, domain = address.partition("@")
    if not (local and at and "." in domain) or any(c in address for c in " <>|"):
        raise InvalidInput(f"gebruik: {USAGE}", field="e-mailadres")
    return address


async def koppel(
    bot: Bot, client: AsyncWebClient, user_id: str, args: list[str], reply: ReplyTo
) -> None:
    resolution = await bot.identity.resolve(client, user_id)
    if isinstance(resolution, Linked):
        await reply(bot.texts.render("koppel", outcome="already", name=resolution.name))
        return
    if resolution.reason != RefusalReason.NO_EMAIL:
        await reply(refusal_text(bot, resolution))
        return
    user = bot.identity.slack_user(user_id)
    try:
        if len(args) != 1:
            raise InvalidInput(f"gebruik: {USAGE}", field="koppel")
        word = args[0]
        if looks_like_code(word):
            redemption = await bot.run(
                lambda s: redeem_link_code(s, bot.config, code=word, user=user)
            )
            if redemption.outcome != Redeemed.LINKED or redemption.professional is None:
                await reply(bot.texts.render("koppel", outcome="wrong", name=""))
                return
            bot.identity.forget(user)
            name = redemption.professional.name
            await reply(bot.texts.render("koppel", outcome="linked", name=name))
            return
        address = _address(word)
        await bot.run(lambda s: request_link_code(s, bot.config, email=address, user=user))
        bot.outbox_waiting.set()
        minutes = int(CODE_LIFETIME.total_seconds() // 60)
        await reply(
            bot.texts.render("koppel", outcome="sent", name="", email=address, minutes=minutes)
        )
    except UserError as error:
        await reply(error_text(error))
