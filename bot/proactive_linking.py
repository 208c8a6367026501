"""Proactive linking (CONTRACT §5): a covenant professional who never used the bot is found in
Slack by their covenant address (``users.lookupByEmail``, scope ``users:read.email``) in every
workspace the app is installed in, and linked (``core.slack_links.link_found``, in the
logboek as ``slack-linked`` by ``lookup``), so their notifications reach them as DMs too.

A background job of the ``slack`` role (:func:`run_proactive_linking`): every ``tick`` seconds
it looks for what is new — an installation (just installed through OAuth), a professional
without a link (a covenant sync added them, or Slack unlinked them) — and asks each
installation about each such professional once; an address a workspace did not know is asked
there again after ``recheck`` seconds (people join workspaces). With ``SLACK_BOT_TOKEN`` the one
workspace is the token's (``auth.test``).

Rate limits: ``users.lookupByEmail`` is a Tier 3 method (50+ calls a minute per workspace), so
the calls to one workspace are ``spacing`` seconds apart (the workspaces run side by side), and
an HTTP 429 pauses that workspace for Slack's ``Retry-After``. Logs hold counts, never an
address or a Slack id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.engine import Engine

from bot.delivery import retry_after_of
from core import metrics
from core.db import run_in_transaction
from core.keyring import KeyRing
from core.slack_installations import bot_token, installations, workspace_key
from core.slack_links import SlackUser, Unlinked, link_found, unlinked_professionals

log = logging.getLogger(__name__)

DEFAULT_TICK = 10.0  # seconds between looks for a new installation or professional
DEFAULT_RECHECK = 6 * 3600.0  # an address a workspace did not know is asked again after this
DEFAULT_SPACING = 1.2  # seconds between calls to one workspace: Tier 3, 50 a minute
MAX_RATE_LIMITED = 5  # 429s in a row before a workspace's pass is given up until the next tick


@dataclass(frozen=True)
class LinkWorkspace:
    key: str
    enterprise_id: str | None
    team_id: str | None
    client: AsyncWebClient


class _WorkspaceUnusable(Exception):
    """The token is refused, lacks a scope, or Slack is unreachable: try at the next tick."""


class ProactiveLinker:
    def __init__(
        self,
        engine: Engine,
        client: AsyncWebClient,
        *,
        distributed: bool,
        recheck: float = DEFAULT_RECHECK,
        spacing: float = DEFAULT_SPACING,
        clock: Callable[[], float] = time.monotonic,
        ring: KeyRing | None = None,  # distributed: the installations' tokens are sealed under it
    ) -> None:
        if distributed and ring is None:
            raise ValueError("a distributed app's installation tokens need the region's key ring")
        self.engine = engine
        self.client = client  # the bot token's, or the template of each installation's client
        self.distributed = distributed
        self.ring = ring
        self.recheck = recheck
        self.spacing = spacing
        self.clock = clock
        self._asked: dict[tuple[str, int], float] = {}  # (workspace, professional) → when
        self._clients: dict[str, AsyncWebClient] = {}
        self._single: LinkWorkspace | None = None

    async def _db(self, work: Callable[..., object]) -> object:
        return await asyncio.to_thread(run_in_transaction, self.engine, work)

    async def workspaces(self) -> list[LinkWorkspace]:
        if not self.distributed:
            if self._single is None:
                answer = await self.client.auth_test()
                team_id = answer.get("team_id")
                enterprise_id = answer.get("enterprise_id")
                self._single = LinkWorkspace(
                    workspace_key(enterprise_id, team_id), enterprise_id, team_id, self.client
                )
            return [self._single]
        rows = await self._db(installations)
        found = []
        assert self.ring is not None  # distributed (__init__)
        for row in rows if isinstance(rows, list) else []:
            token = bot_token(self.ring, row)
            client = self._clients.get(token)
            if client is None:
                client = self._clients[token] = AsyncWebClient(
                    token=token,
                    base_url=self.client.base_url,
                    timeout=self.client.timeout,
                    retry_handlers=[],
                )
            # An org-wide installation serves the org: identities are (org, -, user) there,
            # as bot.workspace keys a request from it.
            team_id = None if row.is_enterprise_install else row.team_id
            found.append(LinkWorkspace(row.workspace_key, row.enterprise_id, team_id, client))
        return found

    async def run_once(self) -> int:
        """One pass: ask every installation about every unlinked professional not asked there
        within ``recheck``. Returns how many were linked."""
        try:
            spaces = await self.workspaces()
        except (SlackApiError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning(
                "proactive Slack linking: the workspace is unknown (%s)", type(exc).__name__
            )
            return 0
        unlinked = await self._db(unlinked_professionals)
        people = unlinked if isinstance(unlinked, list) else []
        if not spaces or not people:
            return 0
        counts = await asyncio.gather(*(self._pass(space, people) for space in spaces))
        linked = sum(counts)
        if linked:
            log.info("proactive Slack linking: %d professionals linked", linked)
        return linked

    async def _pass(self, space: LinkWorkspace, people: list[Unlinked]) -> int:
        linked = 0
        first = True
        for person in people:
            asked = self._asked.get((space.key, person.professional_id))
            if asked is not None and self.clock() - asked < self.recheck:
                continue
            if not first and self.spacing:
                await asyncio.sleep(self.spacing)
            first = False
            try:
                user = await self._lookup(space, person.email)
            except _WorkspaceUnusable as exc:
                log.warning("proactive Slack linking in a workspace stopped: %s", exc)
                return linked
            self._asked[(space.key, person.professional_id)] = self.clock()
            if user is None:
                continue
            done = await self._db(lambda s, p=person, u=user: link_found(s, p.professional_id, u))
            linked += bool(done)
        return linked

    async def _lookup(self, space: LinkWorkspace, email: str) -> SlackUser | None:
        for _ in range(MAX_RATE_LIMITED):
            try:
                answer = await space.client.users_lookupByEmail(email=email)
            except SlackApiError as exc:
                status = getattr(exc.response, "status_code", None)
                data = getattr(exc.response, "data", None)
                code = str(data.get("error", "")) if isinstance(data, dict) else ""
                if status == 429 or code == "ratelimited":
                    metrics.slack_rate_limited()
                    await asyncio.sleep(retry_after_of(exc).total_seconds())
                    continue
                if code in ("users_not_found", "user_not_found"):
                    return None
                raise _WorkspaceUnusable(code or f"HTTP {status}") from None
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                raise _WorkspaceUnusable(type(exc).__name__) from None
            user = answer.get("user") or {}
            if not user.get("id") or user.get("deleted") or user.get("is_bot"):
                return None
            return SlackUser(space.enterprise_id, space.team_id, str(user["id"]))
        raise _WorkspaceUnusable("Slack keeps asking to slow down")


async def run_proactive_linking(
    linker: ProactiveLinker, stop: asyncio.Event, *, tick: float = DEFAULT_TICK
) -> None:
    """A pass at the start and every ``tick`` seconds until ``stop``; a failed pass is logged
    and the next one tries again."""
    while not stop.is_set():
        # A pass paces its lookups (seconds apart); a stop must not wait for it to end.
        lookups = asyncio.ensure_future(linker.run_once())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({lookups, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not lookups.done():
            lookups.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await lookups
            return
        if lookups.exception() is not None:
            log.error(
                "proactive Slack linking failed; trying again in %.0f s",
                tick,
                exc_info=lookups.exception(),
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=tick)
