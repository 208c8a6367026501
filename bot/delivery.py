"""The Slack delivery worker (ARCHITECTURE, step 4): claims due ``slack`` rows from the outbox,
renders them from ``templates/slack/<kind>.blocks.j2`` and posts them with ``chat.postMessage``.

* **Recipients.** A professional's row (also a stand-in's: the core addresses stand-ins itself,
  ``core.notifications.recipients``) holds a Slack user id: posting to a user id lands in the
  app's direct messages with that user. An institution's row holds the covenant's
  ``slack_channel``; the bot must be a member of it.
* **Outcomes** (``core.outbox``): HTTP 429 is a temporary failure retried after Slack's
  ``Retry-After``, and the worker sends nothing else through that token until then (Slack's
  limits are per workspace: the others' messages go out meanwhile; the rows of the paused one
  wait in the outbox for the pause, each wait an attempt); a refusal that no retry can change
  (``channel_not_found``, ``user_not_found``, ``account_inactive``, ``not_in_channel``,
  ``is_archived``, ``invalid_blocks``, ...) is permanent: a dead letter at once, listed by
  ``verwijsindex outbox list --status failed``.
  Connection errors, timeouts, Slack's own 5xx and token problems are temporary: a revoked or
  mistyped token is fixed by an administrator, and the messages should then still go out.
* **Which token.** One workspace: the bot's. A distributed app: the token of the installation
  the recipient is linked through (``bot.installations.InstallationClients``); with none (the
  workspace uninstalled the app) the Slack copy is a dead letter, the mail copy went out.
* **Message reference.** The posted message's channel and ``ts`` are stored as the row's
  ``message_id`` (``slack:<channel>:<ts>``), so the message can be found for ``chat.update``.
* **Threads.** A message about a subject the recipient already had one about goes in the first
  one's thread; when the subject is answered elsewhere (by mail, by someone else's button) the
  worker replaces the buttons of those messages by who answered how (``bot.threads``).
* **At least once.** ``chat.postMessage`` takes no idempotency key; a worker that dies between
  posting and recording the outcome posts the message again after its lease. slack_sdk's own
  retries are switched off, so the outbox is the only place that decides to send again.
* **Privacy.** Logs name the outbox id, kind, reference and recipient role, never the context
  and never the Slack id (STYLE; ``core.outbox`` keeps the logboek the same way).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import jinja2
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.engine import Engine

from bot.installations import InstallationClients, distributed
from bot.texts import BotTexts
from bot.threads import SlackThreads
from core import metrics, outbox
from core.config import CoreConfig
from core.db import service_engine
from core.models import Channel, OutboxStatus
from core.outbox import (
    DEFAULT_LEASE,
    DeliveryReport,
    OutboundNotification,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from core.rendering import RenderedSlack, TemplateRenderer
from core.settings import Settings
from core.slack_threads import ThreadRoot

log = logging.getLogger(__name__)

BATCH_SIZE = 20
REQUEST_TIMEOUT = 15  # seconds; the batch's lease is renewed while a call takes its time
DEFAULT_RETRY_AFTER = timedelta(seconds=30)  # a 429 without a usable Retry-After header

# Slack's answers that no retry will change: the address is wrong or gone, or the message
# itself is refused. (docs.slack.dev/reference/methods/chat.postMessage, "Errors")
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "user_not_found",
        "users_not_found",
        "account_inactive",
        "user_disabled",
        "not_in_channel",
        "is_archived",
        "channel_is_archived",
        "cannot_dm_bot",
        "messages_tab_disabled",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "restricted_action_non_threadable_channel",
        "team_access_not_granted",
        "ekm_access_denied",
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_arguments",
        "msg_too_long",
        "msg_blocks_too_long",
        "no_text",
        "too_many_attachments",
    }
)
# The bot's token is wrong, revoked or lacks a scope: an administrator must act, and the
# notifications should still go out afterwards, so these stay temporary (and are logged loudly).
CONFIGURATION_ERRORS = frozenset(
    {
        "not_authed",
        "invalid_auth",
        "token_revoked",
        "token_expired",
        "missing_scope",
        "not_allowed_token_type",
        "no_permission",
    }
)

# A Slack user (U..., W... on Enterprise Grid) or conversation (C..., G..., D...) id.
_SLACK_ID = re.compile(r"[UWCGD][A-Z0-9]{2,39}")


@dataclass(frozen=True)
class SlackMessageRef:
    """Where a notification was posted: enough for ``chat.update``."""

    channel: str
    ts: str

    def __str__(self) -> str:
        return f"slack:{self.channel}:{self.ts}"

    @classmethod
    def parse(cls, value: str | None) -> SlackMessageRef | None:
        """The reference stored as an outbox row's ``message_id``, or None for another kind."""
        if not value or not value.startswith("slack:"):
            return None
        channel, _, ts = value.removeprefix("slack:").partition(":")
        return cls(channel, ts) if channel and ts else None


class SlackRateLimited(TemporaryDeliveryError):
    """HTTP 429: Slack said how long to wait (``retry_after``)."""


class WorkspacePaused(TemporaryDeliveryError):
    """Not sent: Slack answered 429 through the same token a moment ago, and its
    ``Retry-After`` has not passed (``retry_after``: what is left of it)."""


def workspace_key(client: AsyncWebClient) -> str:
    """What a 429 pauses: the token (one per workspace, or Enterprise Grid org). Kept in memory
    only, never logged."""
    return client.token or ""


def default_worker_id() -> str:
    """Unique per worker: the outbox records outcomes only for the worker holding the claim."""
    return f"slack@{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def recipient_kind(recipient: str) -> str:
    """What the log may say about a recipient."""
    return "user" if recipient[:1] in ("U", "W") else "channel"


def slack_client(settings: Settings, *, timeout: int = REQUEST_TIMEOUT) -> AsyncWebClient:
    """The Web API client: the bot token, and ``VERWIJSINDEX_SLACK_API_URL`` if set. For a
    distributed app it has no token: each installation's client copies it."""
    if settings.slack_bot_token is None and not distributed(settings):
        raise ValueError("SLACK_BOT_TOKEN is not set: Slack delivery needs the bot's token")
    base_url = settings.slack_api_url or AsyncWebClient.BASE_URL
    if not base_url.endswith("/"):
        base_url += "/"  # slack_sdk requests base_url + method
    token = settings.slack_bot_token
    return AsyncWebClient(
        token=None if distributed(settings) or token is None else token.get_secret_value(),
        base_url=base_url,
        timeout=timeout,
        retry_handlers=[],  # the outbox decides about retries (see the module docstring)
    )


def _header(headers: Any, name: str) -> str | None:
    if headers is None:
        return None
    if isinstance(headers, Mapping):
        for key, value in headers.items():
            if str(key).lower() == name.lower():
                return str(value[0] if isinstance(value, list | tuple) and value else value)
    return None


def retry_after_of(error: SlackApiError) -> timedelta:
    """Slack's ``Retry-After`` (seconds), or a default when it is missing or unreadable."""
    raw = _header(getattr(error.response, "headers", None), "Retry-After")
    try:
        seconds = float(raw) if raw is not None else None
    except ValueError:
        seconds = None
    if seconds is None or seconds < 0:
        return DEFAULT_RETRY_AFTER
    return timedelta(seconds=seconds)


def classify(error: SlackApiError, method: str) -> TemporaryDeliveryError | PermanentDeliveryError:
    """A Slack refusal as the outbox sees it. The description names the method, the HTTP status
    and Slack's error code, nothing of the message."""
    status = getattr(error.response, "status_code", None)
    data = getattr(error.response, "data", None)
    code = str(data.get("error", "")) if isinstance(data, dict) else ""
    description = f"Slack {method}: HTTP {status}, {code or 'no error code'}"
    if status == 429 or code == "ratelimited":
        delay = retry_after_of(error)
        return SlackRateLimited(
            f"{description}; Retry-After {delay.total_seconds():g} s", retry_after=delay
        )
    if code in PERMANENT_ERRORS:
        return PermanentDeliveryError(description)
    if code in CONFIGURATION_ERRORS:
        log.error("Slack refuses the bot's token (%s): check SLACK_BOT_TOKEN and its scopes", code)
    return TemporaryDeliveryError(description)


class SlackDelivery:
    """Renders and posts one batch at a time. The database calls run in threads; the Slack
    calls run on the caller's event loop."""

    def __init__(
        self,
        engine: Engine,
        client: AsyncWebClient,
        *,
        renderer: TemplateRenderer | None = None,
        worker_id: str | None = None,
        batch_size: int = BATCH_SIZE,
        lease: timedelta = DEFAULT_LEASE,
        clock: Callable[[], float] = time.monotonic,
        installations: InstallationClients | None = None,
        threads: SlackThreads | None = None,
    ) -> None:
        self.engine = engine
        # Follow-ups in the first message's thread, answered messages updated (bot.threads).
        self.threads = threads
        self.client = client
        # A distributed app: each message goes out with its recipient's installation's token.
        self.installations = installations
        self.renderer = renderer or TemplateRenderer()
        self.worker_id = worker_id or default_worker_id()
        self.batch_size = batch_size
        self.lease = lease
        self.clock = clock
        # Per workspace (workspace_key): the clock() value before which Slack must not be
        # called through its token again (429).
        self.paused_until: dict[str, float] = {}

    # -- one notification ----------------------------------------------------------------------

    def render(self, notification: OutboundNotification) -> RenderedSlack:
        context = dict(notification.context)
        if notification.reply_token:
            context["reply_token"] = notification.reply_token  # the buttons' value
        try:
            return self.renderer.render_slack_message(notification.kind, context)
        except Exception as exc:
            # jinja2's TemplateNotFound is an OSError too, but no retry will make it appear.
            if isinstance(exc, OSError) and not isinstance(exc, jinja2.TemplateError):
                raise  # an unreadable template folder may come back: retried as temporary
            # Named by its type only: a template error's message may quote the context.
            log.warning(
                "outbox:%s %s %s cannot be rendered for Slack (%s): dead letter",
                notification.id,
                notification.kind,
                notification.reference,
                type(exc).__name__,
            )
            raise PermanentDeliveryError(f"rendering failed: {type(exc).__name__}") from None

    async def send(self, notification: OutboundNotification) -> SlackMessageRef:
        """Render and post one notification; raises the outbox's delivery errors."""
        if not _SLACK_ID.fullmatch(notification.recipient):
            raise PermanentDeliveryError("the recipient is not a Slack user or channel id")
        message = self.render(notification)
        client = await self._client_for(notification)
        paused = self.pause_remaining(client)
        if paused > 0:
            raise WorkspacePaused(
                f"Slack answered HTTP 429 for this workspace; {paused:.1f} s of its Retry-After "
                "left",
                retry_after=timedelta(seconds=paused),
            )
        root = await self.threads.root_for(notification) if self.threads else None
        if root is None and self.threads is not None:
            await self.threads.reserve(notification)  # answers given while it is on its way
        in_thread: dict[str, Any] = {}
        if root is not None:
            # A reminder asks for an answer: broadcast, or nobody outside the thread hears it.
            in_thread = {"thread_ts": root.ts, "reply_broadcast": bool(notification.reply_token)}
        try:
            response = await client.chat_postMessage(
                channel=root.channel if root is not None else notification.recipient,
                text=message.text,
                blocks=message.blocks,
                unfurl_links=False,
                unfurl_media=False,
                **in_thread,
            )
        except SlackApiError as exc:
            error = classify(exc, "chat.postMessage")
            if isinstance(error, SlackRateLimited) and error.retry_after is not None:
                self._pause(client, error.retry_after)
            raise error from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TemporaryDeliveryError(f"Slack unreachable: {type(exc).__name__}") from None
        ref = SlackMessageRef(str(response["channel"]), str(response["ts"]))
        if root is None and self.threads is not None:
            await self.threads.remember(notification, ThreadRoot(ref.channel, ref.ts))
        log.info(
            "sent outbox:%s %s %s to %s (Slack %s)",
            notification.id,
            notification.kind,
            notification.reference,
            notification.recipient_role,
            recipient_kind(notification.recipient),
        )
        return ref

    async def show_answers(self) -> int:
        """Update the messages of subjects answered elsewhere (bot.threads); not through a
        workspace's token while Slack asked it to pause (tried again later)."""
        if self.threads is None:
            return 0
        return await self.threads.show_answers(self.render, self._client_for, self._update)

    async def _update(
        self,
        client: AsyncWebClient,
        channel: str,
        ts: str,
        text: str,
        blocks: list[dict[str, Any]],
    ) -> str | None:
        """One ``chat.update``: None when done, else why not (Slack's error code)."""
        if self.pause_remaining(client) > 0:
            return "ratelimited"
        try:
            await client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
        except SlackApiError as exc:
            error = classify(exc, "chat.update")
            if isinstance(error, SlackRateLimited) and error.retry_after is not None:
                self._pause(client, error.retry_after)
            data = getattr(exc.response, "data", None)
            return str(data.get("error", "")) if isinstance(data, dict) else "error"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return f"unreachable: {type(exc).__name__}"
        return None

    async def _client_for(self, notification: OutboundNotification) -> AsyncWebClient:
        if self.installations is None:
            return self.client
        client = await self.installations.client_for(notification)
        if client is None:
            # Uninstalled, or never linked through an installation: the mail copy went out.
            raise PermanentDeliveryError("no Slack installation for the recipient's workspace")
        return client

    async def _deliver_one(
        self, notification: OutboundNotification, now: datetime | None
    ) -> SlackMessageRef | str:
        """Send: the message posted (recorded with the rest of the batch), or the failure,
        recorded (retried, failed or lost)."""
        try:
            ref = await self.send(notification)
        except TemporaryDeliveryError as exc:
            return await self._failed(notification, str(exc), False, exc.retry_after, now)
        except PermanentDeliveryError as exc:
            return await self._failed(notification, str(exc), True, None, now)
        except Exception as exc:
            log.exception(
                "unexpected error sending outbox:%s (%s %s) to Slack",
                notification.id,
                notification.kind,
                notification.reference,
            )
            return await self._failed(notification, type(exc).__name__, False, None, now)
        return ref

    async def _failed(
        self,
        notification: OutboundNotification,
        error: str,
        permanent: bool,
        retry_after: timedelta | None,
        now: datetime | None,
    ) -> str:
        status = await asyncio.to_thread(
            outbox.mark_failed,
            self.engine,
            notification.id,
            worker_id=self.worker_id,
            error=error,
            permanent=permanent,
            retry_after=retry_after,
            now=now,
        )
        return "failed" if status == OutboxStatus.FAILED else "retried"

    # -- a batch -------------------------------------------------------------------------------

    def pause_remaining(self, client: AsyncWebClient | None = None) -> float:
        """Seconds until Slack may be called again through ``client``'s token after a 429 (0
        when it may now); without ``client``, the longest pause of any workspace."""
        now = self.clock()
        if client is None:
            return max((until - now for until in self.paused_until.values()), default=0.0)
        return max(0.0, self.paused_until.get(workspace_key(client), 0.0) - now)

    def _pause(self, client: AsyncWebClient, delay: timedelta) -> None:
        """Slack answered 429 through ``client``'s token: that workspace waits ``delay``."""
        key = workspace_key(client)
        until = self.clock() + delay.total_seconds()
        self.paused_until[key] = max(self.paused_until.get(key, 0.0), until)
        # Done with: the pauses that are over (installations come and go).
        now = self.clock()
        self.paused_until = {k: v for k, v in self.paused_until.items() if v > now}
        metrics.slack_rate_limited()

    async def deliver_batch(
        self, *, now: datetime | None = None, stop: asyncio.Event | None = None
    ) -> DeliveryReport:
        """Claim up to ``batch_size`` due rows and post them one after another, renewing the
        claim meanwhile (``core.outbox.keep_claimed``).

        The unsent rest of the batch goes back to the queue (not counted as an attempt) when
        ``stop`` is set, or when the claim could not be renewed for half a lease. A row for a
        workspace Slack asked to pause waits in the outbox for what is left of the pause.
        """
        started = self.clock()
        batch = await asyncio.to_thread(
            outbox.claim_due,
            self.engine,
            channel=Channel.SLACK.value,
            worker_id=self.worker_id,
            limit=self.batch_size,
            lease=self.lease,
            now=now,
        )
        report = DeliveryReport(claimed=len(batch))
        if not batch:
            return report
        keeper = outbox.keep_claimed(
            self.engine,
            batch,
            worker_id=self.worker_id,
            lease=self.lease,
            since=started,
            now=now,
            clock=self.clock,
        ).start()
        delivered: list[tuple[int, str | None]] = []
        try:
            for position, notification in enumerate(batch):
                out_of_time = outbox.lease_running_out(keeper)
                stopping = stop is not None and stop.is_set()
                if out_of_time or stopping:
                    unsent = [later.id for later in batch[position:]]
                    await asyncio.to_thread(
                        outbox.release, self.engine, unsent, worker_id=self.worker_id
                    )
                    report.released = len(unsent)
                    break
                outcome = await self._deliver_one(notification, now)
                if isinstance(outcome, str):
                    setattr(report, outcome, getattr(report, outcome) + 1)
                else:
                    delivered.append((notification.id, str(outcome)))
        finally:
            try:  # the batch's deliveries in one transaction (core.outbox.mark_sent_many)
                if delivered:
                    recorded = await asyncio.to_thread(
                        outbox.mark_sent_many,
                        self.engine,
                        delivered,
                        worker_id=self.worker_id,
                        now=now,
                    )
                    report.sent = len(recorded)
                    report.lost += len(delivered) - len(recorded)
            finally:
                # In a thread: a renewal in progress may wait for the database, the loop must not.
                await asyncio.to_thread(keeper.stop)
        return report


async def run_slack_delivery(
    settings: Settings,
    stop: asyncio.Event,
    *,
    engine: Engine | None = None,
    config: CoreConfig | None = None,
    client: AsyncWebClient | None = None,
    wake: asyncio.Event | None = None,
    poll_interval: float = 1.0,
    worker_id: str | None = None,
    batch_size: int = BATCH_SIZE,
) -> None:
    """Post Slack notifications until ``stop`` is set; the message in hand is finished first,
    the rest of its batch goes back to the queue.

    A round runs as soon as ``wake`` is set (a command just wrote to the outbox) or
    ``poll_interval`` seconds have passed; while rounds come back full the next starts at once.
    After a 429 the worker waits out Slack's ``Retry-After`` before calling Slack through that
    workspace's token again; the other workspaces' messages go out meanwhile.
    Without ``engine`` it opens (and closes) one on ``settings.database_url``.
    """
    own_engine = engine is None
    database = engine if engine is not None else service_engine(settings)
    timezone = _timezone(settings, config)
    renderer = TemplateRenderer(settings.templates_dir, timezone=timezone)
    client = client or slack_client(settings)
    delivery = SlackDelivery(
        database,
        client,
        installations=(
            InstallationClients(database, client, settings.keyring())
            if distributed(settings)
            else None
        ),
        threads=SlackThreads(database, BotTexts(settings.templates_dir, timezone=timezone)),
        renderer=renderer,
        worker_id=worker_id,
        batch_size=batch_size,
        lease=timedelta(seconds=settings.outbox_lease_seconds),
    )
    wake = wake or asyncio.Event()
    log.info("Slack delivery %s started", delivery.worker_id)
    try:
        while not stop.is_set():
            wake.clear()  # set again while the batch runs: the loop goes round at once
            try:
                report = await delivery.deliver_batch(stop=stop)
                await delivery.show_answers()
            except Exception:
                # The database is away, say: claimed rows come back when their lease ends.
                log.exception("Slack delivery round failed; trying again in %.1f s", poll_interval)
                report = DeliveryReport()
            if report.claimed >= delivery.batch_size and not report.released:
                continue  # there may be more waiting
            await _until_set(wake, stop, timeout=poll_interval)
    finally:
        if own_engine:
            database.dispose()
        log.info("Slack delivery %s stopped", delivery.worker_id)


def _timezone(settings: Settings, config: CoreConfig | None) -> ZoneInfo:
    """Dates in messages are the region's; without a config, the covenant's file says which."""
    if config is not None:
        return config.tz
    from core.covenant import load_covenant

    return ZoneInfo(load_covenant(settings.covenant_path).region.timezone)


async def _until_set(wake: asyncio.Event | None, stop: asyncio.Event, *, timeout: float) -> None:
    waiters = {asyncio.ensure_future(stop.wait())}
    if wake is not None:
        waiters.add(asyncio.ensure_future(wake.wait()))
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
