"""The workspace a Slack request came from, for the code that runs on its behalf.

A global Bolt middleware (:func:`remember_workspace`, after Bolt's ``authorize``) records the
request's ``(enterprise_id, team_id)`` from Bolt's context in a context variable. Bolt starts
each listener as an asyncio task after the middleware ran, and a task runs in a copy of the
context it was created in, so every listener of the request (and nothing else) sees it; the
identity (``bot.identity``) keys Slack users by it without each listener passing it on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar

from slack_bolt.context.async_context import AsyncBoltContext

from core.slack_links import SlackWorkspace

_current: ContextVar[SlackWorkspace | None] = ContextVar("slack_workspace", default=None)


def current_workspace() -> SlackWorkspace | None:
    return _current.get()


def workspace_of(context: AsyncBoltContext) -> SlackWorkspace | None:
    enterprise_id = context.enterprise_id
    # An org-wide installation serves every workspace of the org: the org is what counts.
    team_id = None if context.is_enterprise_install else context.team_id
    if enterprise_id is None and team_id is None:
        return None
    return SlackWorkspace(enterprise_id, team_id)


async def remember_workspace(
    context: AsyncBoltContext, next: Callable[[], Awaitable[None]]
) -> None:
    _current.set(workspace_of(context))
    await next()
