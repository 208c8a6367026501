"""Who is this Slack user? A covenant professional, linked by the e-mail address Slack reports
for the user (``users.info`` → ``profile.email``; needs the ``users:read.email`` scope).

A link is cached for ``ttl`` seconds and then checked again with Slack, so a user whose address
changed, who was deactivated, or who left the covenant loses access within that time. A refusal
is cached briefly too (``negative_ttl``), so a stranger who keeps typing does not cost a Web API
call each time. The link is stored as ``Professional.slack_user_id``: the core routes a linked
professional's notifications to Slack as well (``core.notifications.recipients``).

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

from core import audit
from core.actors import find_professional, professionals_with_slack_user
from core.db import run_in_transaction

log = logging.getLogger(__name__)

LINKER = audit.Actor(kind="system", identifier="slack-identity", channel="slack")
DEFAULT_TTL = 600.0
DEFAULT_NEGATIVE_TTL = 60.0


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
    ) -> None:
        self.engine = engine
        self.region = region
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, Resolution]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def forget(self, user_id: str) -> None:
        self._cache.pop(user_id, None)

    async def resolve(self, client: AsyncWebClient, user_id: str) -> Resolution:
        cached = self._fresh(user_id)
        if cached is not None:
            return cached
        # One users.info call per user at a time: a burst of requests shares the answer.
        lock = self._locks.setdefault(user_id, asyncio.Lock())
        async with lock:
            cached = self._fresh(user_id)
            if cached is not None:
                return cached
            resolution = await self._check(client, user_id)
            if isinstance(resolution, Refused) and resolution.reason == RefusalReason.UNAVAILABLE:
                stale = self._cache.get(user_id)
                if stale is not None and isinstance(stale[1], Linked):
                    # Slack is briefly unreachable: keep a known link rather than lock out a
                    # professional; it is checked again on the next request.
                    return stale[1]
                return resolution
            lifetime = self.ttl if isinstance(resolution, Linked) else self.negative_ttl
            self._cache[user_id] = (self._clock() + lifetime, resolution)
            return resolution

    async def email_of(self, client: AsyncWebClient, user_id: str) -> str | None:
        """The linked professional's address for a mentioned user (``<@U123>``), if linked."""
        resolution = await self.resolve(client, user_id)
        return resolution.email if isinstance(resolution, Linked) else None

    def _fresh(self, user_id: str) -> Resolution | None:
        entry = self._cache.get(user_id)
        if entry is None or entry[0] <= self._clock():
            return None
        return entry[1]

    async def _check(self, client: AsyncWebClient, user_id: str) -> Resolution:
        try:
            response = await client.users_info(user=user_id)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            if error in ("user_not_found", "users_not_found"):
                return await self._refuse_and_unlink(user_id, RefusalReason.UNKNOWN_USER)
            log.warning("users.info for %s failed: %s", user_id, error)
            return Refused(RefusalReason.UNAVAILABLE)
        except (ClientError, TimeoutError) as exc:
            log.warning("users.info for %s failed: %s", user_id, type(exc).__name__)
            return Refused(RefusalReason.UNAVAILABLE)
        user: dict[str, Any] = response.get("user") or {}
        if user.get("is_bot"):
            return Refused(RefusalReason.UNKNOWN_USER)
        if user.get("deleted"):
            return await self._refuse_and_unlink(user_id, RefusalReason.DEACTIVATED)
        email = str((user.get("profile") or {}).get("email") or "").strip().lower()
        if not email:
            return await self._refuse_and_unlink(user_id, RefusalReason.NO_EMAIL)
        return await asyncio.to_thread(run_in_transaction, self.engine, _linker(user_id, email))

    async def _refuse_and_unlink(self, user_id: str, reason: RefusalReason) -> Refused:
        await asyncio.to_thread(run_in_transaction, self.engine, _unlinker(user_id))
        return Refused(reason)


def _linker(user_id: str, email: str) -> Callable[[Session], Resolution]:
    def link(session: Session) -> Resolution:
        professional = find_professional(session, email)
        if professional is None or not professional.active:
            _unlink(session, user_id)
            return Refused(RefusalReason.NOT_IN_COVENANT, email)
        _unlink(session, user_id, keep=professional.id)
        if professional.slack_user_id != user_id:
            previous = professional.slack_user_id
            professional.slack_user_id = user_id
            session.add(professional)
            audit.record(
                session,
                LINKER,
                "slack-linked",
                f"professional:{professional.id}",
                details={"slack_user": user_id, "previous": previous},
            )
        return Linked(
            user_id=user_id,
            professional_id=professional.id or 0,
            email=professional.email,
            name=professional.name,
            institution_id=professional.institution_id,
        )

    return link


def _unlinker(user_id: str) -> Callable[[Session], None]:
    def unlink(session: Session) -> None:
        _unlink(session, user_id)

    return unlink


def _unlink(session: Session, user_id: str, *, keep: int | None = None) -> None:
    """No other professional keeps this Slack user: its notifications would reach the wrong
    person (an address moved to another account, or the account was deactivated)."""
    for professional in professionals_with_slack_user(session, user_id):
        if professional.id == keep:
            continue
        professional.slack_user_id = None
        session.add(professional)
        audit.record(
            session,
            LINKER,
            "slack-unlinked",
            f"professional:{professional.id}",
            details={"slack_user": user_id},
        )
