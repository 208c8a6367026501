"""Who is this Slack user? A covenant professional, linked by the e-mail address Slack reports
for the user (``users.info`` → ``profile.email``; needs the ``users:read.email`` scope), or by a
one-time code mailed to their covenant address when Slack hides it (``core.slack_codes``).

A Slack identity is ``(enterprise_id, team_id, user_id)`` (``core.slack_links.SlackUser``): the
workspace is the request's (``bot.workspace``), so the same user reached through two
installations is asked about, cached and linked through each. ``users.info`` goes out with the
request's client, that is with the token of the installation the request came through.

A link is cached for ``ttl`` seconds and then checked again with Slack, so a user whose address
changed, who was deactivated, or who left the covenant loses access within that time. A refusal
is cached briefly too (``negative_ttl``), so a stranger who keeps typing does not cost a Web API
call each time. The link itself is written by ``core.slack_links``: the core routes a linked
professional's notifications to Slack as well (``core.notifications.recipients``).

Slack waits 3 seconds for a request's answer (and a ``trigger_id`` lasts as long), and a view
submission is answered only after the user is known: ``users.info`` is therefore awaited at
most ``lookup_timeout`` seconds. A slower Slack gets the known link (even if its time is up) or,
for someone not known yet, ``UNAVAILABLE``; the call goes on in the background and its answer is
cached for the next request. A link in the second half of its ``ttl`` is refreshed in the
background too, so an active professional never waits for Slack.

Only identity is decided here; what the professional may do is decided by the core.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aiohttp import ClientError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.workspace import current_workspace
from core.actors import find_professional
from core.db import run_in_transaction
from core.models import Professional
from core.slack_links import SlackUser, link, linked_professional, unlink_user

log = logging.getLogger(__name__)

DEFAULT_TTL = 600.0
DEFAULT_NEGATIVE_TTL = 60.0
# Seconds a request waits for users.info: within Slack's 3 s with room for the work after it.
DEFAULT_LOOKUP_TIMEOUT = 1.5


class RefusalReason(StrEnum):
    UNKNOWN_USER = "unknown-user"  # Slack does not know the user (or it is a bot)
    DEACTIVATED = "deactivated"  # the Slack account is deactivated (deleted: true)
    NO_EMAIL = "no-email"  # Slack reports no address (missing scope, or none set)
    NOT_IN_COVENANT = "not-in-covenant"  # no active professional has this address
    UNAVAILABLE = "unavailable"  # Slack could not be asked just now


@dataclass(frozen=True)
class Linked:
    user_id: str
    professional_id: int
    email: str
    name: str
    institution_id: str


@dataclass(frozen=True)
class Refused:
    reason: RefusalReason
    email: str | None = None


Resolution = Linked | Refused


class SlackIdentity:
    def __init__(
        self,
        engine: Engine,
        *,
        region: str,
        ttl: float = DEFAULT_TTL,
        negative_ttl: float = DEFAULT_NEGATIVE_TTL,
        clock: Callable[[], float] = time.monotonic,
        lookup_timeout: float = DEFAULT_LOOKUP_TIMEOUT,
    ) -> None:
        self.engine = engine
        self.region = region
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.lookup_timeout = lookup_timeout
        self._clock = clock
        # The users.info call under way per user: requests share it, and it outlives a request
        # that stopped waiting (its answer is cached when it comes).
        self._checks: dict[SlackUser, asyncio.Task[Resolution]] = {}
        self._cache: dict[SlackUser, tuple[float, Resolution]] = {}
        self._locks: dict[SlackUser, asyncio.Lock] = {}

    @staticmethod
    def slack_user(user_id: str) -> SlackUser:
        """The identity of ``user_id`` in the workspace of the request being handled."""
        workspace = current_workspace()
        if workspace is None:
            return SlackUser(None, None, user_id)
        return SlackUser(workspace.enterprise_id, workspace.team_id, user_id)

    def forget(self, user: SlackUser) -> None:
        self._cache.pop(user, None)

    def forget_workspace(self, enterprise_id: str | None, team_id: str | None) -> None:
        """Drop what is cached for an installation that is gone (uninstalled, revoked)."""
        for key in list(self._cache):
            same_org = key.enterprise_id == enterprise_id
            if same_org and (team_id is None or key.team_id == team_id):
                self._cache.pop(key, None)

    async def resolve(self, client: AsyncWebClient, user_id: str) -> Resolution:
        user = self.slack_user(user_id)
        cached = self._fresh(user)
        if cached is not None:
            self._refresh_when_due(client, user)
            return cached
        # One users.info call per user at a time: a burst of requests shares the answer.
        lock = self._locks.setdefault(user, asyncio.Lock())
        async with lock:
            cached = self._fresh(user)
            if cached is not None:
                return cached
            resolution = await self._checked(client, user)
            if isinstance(resolution, Refused) and resolution.reason == RefusalReason.UNAVAILABLE:
                stale = self._cache.get(user)
                if stale is not None and isinstance(stale[1], Linked):
                    # Slack is slow or briefly unreachable: keep a known link rather than lock
                    # out a professional; it is checked again on the next request.
                    return stale[1]
            return resolution

    async def _checked(self, client: AsyncWebClient, user: SlackUser) -> Resolution:
        """Slack's answer within ``lookup_timeout``, else ``UNAVAILABLE`` (the call goes on)."""
        task = self._check_in_background(client, user)
        try:
            return await asyncio.wait_for(asyncio.shield(task), self.lookup_timeout)
        except TimeoutError:
            log.warning(
                "users.info for %s takes longer than %.1f s; answering without it",
                user.user_id,
                self.lookup_timeout,
            )
            return Refused(RefusalReason.UNAVAILABLE)

    async def settle(self, timeout: float) -> None:
        """On stopping: let the checks under way finish (at most ``timeout`` seconds), then
        cancel the rest, so none is cut off mid-request when the event loop ends."""
        pending = [task for task in self._checks.values() if not task.done()]
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=timeout)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    def _refresh_when_due(self, client: AsyncWebClient, user: SlackUser) -> None:
        """A link in the second half of its lifetime is checked again, without waiting."""
        entry = self._cache.get(user)
        if entry is None or not isinstance(entry[1], Linked):
            return
        if entry[0] - self._clock() < self.ttl / 2:
            self._check_in_background(client, user)

    def _check_in_background(
        self, client: AsyncWebClient, user: SlackUser
    ) -> asyncio.Task[Resolution]:
        task = self._checks.get(user)
        if task is None or task.done():
            task = asyncio.create_task(self._check_and_cache(client, user))
            self._checks[user] = task
            task.add_done_callback(lambda done: self._checked_done(user, done))
        return task

    def _checked_done(self, user: SlackUser, task: asyncio.Task[Resolution]) -> None:
        if self._checks.get(user) is task:
            del self._checks[user]
        if not task.cancelled() and task.exception() is not None:
            log.error("checking Slack user %s failed", user.user_id, exc_info=task.exception())

    async def _check_and_cache(self, client: AsyncWebClient, user: SlackUser) -> Resolution:
        resolution = await self._check(client, user)
        if isinstance(resolution, Refused) and resolution.reason == RefusalReason.UNAVAILABLE:
            return resolution
        lifetime = self.ttl if isinstance(resolution, Linked) else self.negative_ttl
        self._cache[user] = (self._clock() + lifetime, resolution)
        return resolution

    async def email_of(self, client: AsyncWebClient, user_id: str) -> str | None:
        """The linked professional's address for a mentioned user (``<@U123>``), if linked."""
        resolution = await self.resolve(client, user_id)
        return resolution.email if isinstance(resolution, Linked) else None

    def _fresh(self, user: SlackUser) -> Resolution | None:
        entry = self._cache.get(user)
        if entry is None or entry[0] <= self._clock():
            return None
        return entry[1]

    async def _check(self, client: AsyncWebClient, user: SlackUser) -> Resolution:
        user_id = user.user_id
        try:
            response = await client.users_info(user=user_id)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            if error in ("user_not_found", "users_not_found"):
                return await self._refuse_and_unlink(user, RefusalReason.UNKNOWN_USER)
            log.warning("users.info for %s failed: %s", user_id, error)
            return Refused(RefusalReason.UNAVAILABLE)
        except (ClientError, TimeoutError) as exc:
            log.warning("users.info for %s failed: %s", user_id, type(exc).__name__)
            return Refused(RefusalReason.UNAVAILABLE)
        profile: dict[str, Any] = response.get("user") or {}
        if profile.get("is_bot"):
            return Refused(RefusalReason.UNKNOWN_USER)
        if profile.get("deleted"):
            return await self._refuse_and_unlink(user, RefusalReason.DEACTIVATED)
        email = str((profile.get("profile") or {}).get("email") or "").strip().lower()
        if not email:
            # Hidden (a Slack Connect guest, a workspace that hides addresses): a link made
            # with a code (/verwijsindex koppel) stands; the hiding says nothing of a move.
            return await asyncio.to_thread(run_in_transaction, self.engine, _code_link(user))
        return await asyncio.to_thread(run_in_transaction, self.engine, _linker(user, email))

    async def _refuse_and_unlink(self, user: SlackUser, reason: RefusalReason) -> Refused:
        await asyncio.to_thread(run_in_transaction, self.engine, _unlinker(user))
        return Refused(reason)


def _linked(user: SlackUser, professional: Professional) -> Linked:
    return Linked(
        user_id=user.user_id,
        professional_id=professional.id or 0,
        email=professional.email,
        name=professional.name,
        institution_id=professional.institution_id,
    )


def _linker(user: SlackUser, email: str) -> Callable[[Session], Resolution]:
    def resolve_by_email(session: Session) -> Resolution:
        professional = find_professional(session, email)
        if professional is None or not professional.active:
            unlink_user(session, user)
            return Refused(RefusalReason.NOT_IN_COVENANT, email)
        link(session, professional, user, how="email")
        return _linked(user, professional)

    return resolve_by_email


def _code_link(user: SlackUser) -> Callable[[Session], Resolution]:
    def resolve_by_code_link(session: Session) -> Resolution:
        professional = linked_professional(session, user)
        if professional is None:
            return Refused(RefusalReason.NO_EMAIL)
        return _linked(user, professional)

    return resolve_by_code_link


def _unlinker(user: SlackUser) -> Callable[[Session], None]:
    def unlink(session: Session) -> None:
        unlink_user(session, user)

    return unlink
