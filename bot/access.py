"""Who may talk to the bot at all (identity), and as whom they act in the core.

Every listener asks :func:`who_is` after acknowledging: a linked professional goes on; anyone
else gets a polite refusal and nothing else. What a linked professional may *do* is decided by
the core, with the :class:`~core.audit.Actor` from :func:`acting`.
"""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import Session

from bot.context import Bot
from bot.identity import Linked, Refused
from bot.reply import ReplyTo
from bot.submission import Submission
from core.actors import professional_actor
from core.audit import Actor
from core.errors import NotAllowed
from core.models import Channel, Professional


def refusal_text(bot: Bot, refused: Refused) -> str:
    return bot.texts.render(
        "geweigerd", reason=refused.reason.value, email=refused.email or "", region=bot.region
    )


async def who_is(bot: Bot, client: AsyncWebClient, user_id: str, reply: ReplyTo) -> Linked | None:
    resolution = await bot.identity.resolve(client, user_id)
    if isinstance(resolution, Linked):
        return resolution
    await reply(refusal_text(bot, resolution))
    return None


def professional_of(session: Session, linked: Linked) -> Professional:
    professional = session.get(Professional, linked.professional_id)
    if professional is None or not professional.active:
        raise NotAllowed("uw account is niet (meer) actief in het convenant")
    return professional


def acting(session: Session, linked: Linked) -> Actor:
    return professional_actor(professional_of(session, linked), Channel.SLACK.value)


async def who_submits(
    bot: Bot, client: AsyncWebClient, user_id: str, submission: Submission
) -> Linked | None:
    """:func:`who_is` for a view submission: a refusal replaces the modal."""
    resolution = await bot.identity.resolve(client, user_id)
    if isinstance(resolution, Linked):
        return resolution
    await submission.refuse_with(refusal_text(bot, resolution))
    return None
