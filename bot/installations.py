"""The distributed app (CONTRACT §5): installed into many workspaces through Slack's OAuth flow,
its installations kept in the project's database (``core.slack_installations``).

* **Install.** With ``SLACK_CLIENT_ID``/``SLACK_CLIENT_SECRET`` set, Bolt serves
  ``GET /slack/install`` (the "Add to Slack" page, a ``state`` bound to the browser by a cookie
  and stored here) and ``GET /slack/oauth_redirect`` (``oauth.v2.access`` with the code, then
  :class:`DatabaseInstallationStore` saves the installation: one per workspace, or per
  Enterprise Grid org for an org-wide install).
* **Authorize.** Every request gets the token of its workspace's installation
  (:class:`StoredInstallationAuthorize`), read from the database without a Web API call on the
  path to ``ack()`` (Bolt's own would call ``auth.test`` on each request).
* **Deliver.** :class:`InstallationClients` gives the delivery worker the client of the
  recipient's installation (``core.slack_links.workspace_of``).
* **Uninstall.** ``app_uninstalled`` and ``tokens_revoked`` (the bot's) remove the installation
  and the links made through it, in the logboek; those professionals get mail only from then on.

Bot tokens are stored sealed under the region's key (``core.slack_installations``), not as
slack_sdk's own SQL stores keep them: a copy of the database or a backup without the key holds
no working token. Each reader here asks ``core.slack_installations.bot_token``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import UTC, timedelta
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.oauth.installation_store import Bot as SlackBot
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.context import Bot
from bot.workspace import workspace_of
from core.db import run_in_transaction
from core.keyring import KeyRing
from core.models import SlackInstallation
from core.outbox import OutboundNotification
from core.settings import Settings
from core.slack_installations import (
    bot_token,
    consume_oauth_state,
    find_installation,
    issue_oauth_state,
    remove_installation,
    save_installation,
)
from core.slack_links import SlackWorkspace
from core.slack_links import workspace_of as recipient_workspace

log = logging.getLogger(__name__)

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
STATE_LIFETIME = timedelta(minutes=10)
# What the bot asks for when installed (api.slack.com/scopes): slash commands; posting DMs and
# channel messages; reading a user and their e-mail address (the link, users.lookupByEmail);
# the DMs users write to it (message.im) and the App Home.
BOT_SCOPES = ("commands", "chat:write", "users:read", "users:read.email", "im:history")


def distributed(settings: Settings) -> bool:
    """Whether the app runs as a distributed app (OAuth) rather than on one bot token."""
    return settings.slack_client_id is not None and settings.slack_client_secret is not None


def _row(installation: Installation) -> SlackInstallation:
    scopes = installation.bot_scopes
    return SlackInstallation(
        workspace_key="",  # core.slack_installations.save_installation sets these two
        bot_token_sealed=b"",
        enterprise_id=installation.enterprise_id,
        team_id=installation.team_id,
        is_enterprise_install=bool(installation.is_enterprise_install),
        team_name=installation.team_name,
        app_id=installation.app_id,
        bot_id=installation.bot_id,
        bot_user_id=installation.bot_user_id,
        bot_scopes=",".join(scopes) if isinstance(scopes, list | tuple) else str(scopes or ""),
        installer_user_id=installation.user_id,
    )


def _installed_at(row: SlackInstallation) -> float:
    moment = row.installed_at
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _bot(row: SlackInstallation, ring: KeyRing) -> SlackBot:
    return SlackBot(
        app_id=row.app_id,
        enterprise_id=row.enterprise_id,
        team_id=row.team_id,
        team_name=row.team_name,
        bot_token=bot_token(ring, row),
        bot_id=row.bot_id or "",
        bot_user_id=row.bot_user_id or "",
        bot_scopes=row.bot_scopes,
        is_enterprise_install=row.is_enterprise_install,
        installed_at=_installed_at(row),
    )


class DatabaseInstallationStore(AsyncInstallationStore):
    """slack_sdk's installation store interface on the project's database (bot tokens only:
    the app asks for no user scopes), the tokens sealed under ``ring``."""

    def __init__(self, engine: Engine, ring: KeyRing) -> None:
        self.engine = engine
        self.ring = ring

    async def _run(self, work: Any) -> Any:
        return await asyncio.to_thread(run_in_transaction, self.engine, work)

    async def async_save(self, installation: Installation) -> None:
        row = _row(installation)
        token = installation.bot_token
        if not token:
            raise ValueError("oauth.v2.access gave no bot token: the app must ask for bot scopes")

        def save(session: Session) -> None:
            save_installation(session, self.ring, row, token=token)

        await self._run(save)
        log.info("installed in Slack workspace %s", row.team_id or row.enterprise_id)

    async def async_save_bot(self, bot: SlackBot) -> None:
        await self.async_save(Installation(**{**bot.to_dict(), "user_id": None}))

    async def find_row(
        self, enterprise_id: str | None, team_id: str | None
    ) -> SlackInstallation | None:
        def find(session: Session) -> SlackInstallation | None:
            row = find_installation(session, enterprise_id=enterprise_id, team_id=team_id)
            if row is not None:
                session.expunge(row)
            return row

        result: SlackInstallation | None = await self._run(find)
        return result

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> SlackBot | None:
        row = await self.find_row(enterprise_id, None if is_enterprise_install else team_id)
        return _bot(row, self.ring) if row is not None else None

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        row = await self.find_row(enterprise_id, None if is_enterprise_install else team_id)
        if row is None:
            return None
        bot = _bot(row, self.ring)
        return Installation(
            app_id=bot.app_id,
            enterprise_id=bot.enterprise_id,
            team_id=bot.team_id,
            team_name=bot.team_name,
            bot_token=bot.bot_token,
            bot_id=bot.bot_id,
            bot_user_id=bot.bot_user_id,
            bot_scopes=bot.bot_scopes,
            user_id=row.installer_user_id or "",
            is_enterprise_install=bot.is_enterprise_install,
            installed_at=bot.installed_at,
        )

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self.async_delete_all(enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        if user_id is None:  # a user's own token: the app keeps none
            await self.async_delete_all(enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        workspace = SlackWorkspace(enterprise_id, team_id)
        await self._run(lambda s: remove_installation(s, workspace, reason="removed"))


class DatabaseOAuthStateStore(AsyncOAuthStateStore):
    """The ``state`` of each install under way, hashed, used once, for ten minutes."""

    def __init__(self, engine: Engine, lifetime: timedelta = STATE_LIFETIME) -> None:
        self.engine = engine
        self.lifetime = lifetime

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        state = secrets.token_urlsafe(32)
        await asyncio.to_thread(
            run_in_transaction,
            self.engine,
            lambda s: issue_oauth_state(s, state, lifetime=self.lifetime),
        )
        return state

    async def async_consume(self, state: str) -> bool:
        if not state:
            return False
        consumed: bool = await asyncio.to_thread(
            run_in_transaction, self.engine, lambda s: consume_oauth_state(s, state)
        )
        return consumed


class StoredInstallationAuthorize(AsyncAuthorize):
    """The request's installation from the database, with no ``auth.test`` call: what Bolt's
    authorize would learn from it (bot id, bot user) was stored at install time."""

    def __init__(self, store: DatabaseInstallationStore) -> None:
        super().__init__()
        self.store = store

    async def __call__(
        self,
        *,
        context: AsyncBoltContext,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        actor_enterprise_id: str | None = None,
        actor_team_id: str | None = None,
        actor_user_id: str | None = None,
    ) -> AuthorizeResult | None:
        row = await self.store.find_row(enterprise_id, team_id)
        if row is None:
            log.warning("a request from a Slack workspace without an installation of the app")
            return None
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=team_id,
            team=row.team_name,
            bot_user_id=row.bot_user_id,
            bot_id=row.bot_id,
            bot_token=bot_token(self.store.ring, row),
            bot_scopes=row.bot_scopes,
            user_id=user_id,
        )


def oauth_settings(settings: Settings, engine: Engine, ring: KeyRing) -> AsyncOAuthSettings:
    assert settings.slack_client_id is not None and settings.slack_client_secret is not None
    store = DatabaseInstallationStore(engine, ring)
    return AsyncOAuthSettings(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret.get_secret_value(),
        scopes=list(BOT_SCOPES),
        user_scopes=[],
        redirect_uri=settings.slack_redirect_uri,
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        installation_store=store,
        installation_store_bot_only=True,
        state_store=DatabaseOAuthStateStore(engine),
        state_expiration_seconds=int(STATE_LIFETIME.total_seconds()),
    )


def authorize(engine: Engine, ring: KeyRing) -> StoredInstallationAuthorize:
    return StoredInstallationAuthorize(DatabaseInstallationStore(engine, ring))


# -- uninstall ---------------------------------------------------------------------------------


async def _remove(bot: Bot, context: AsyncBoltContext, reason: str) -> None:
    workspace = workspace_of(context)
    if workspace is None:
        return
    unlinked = await bot.run(lambda s: remove_installation(s, workspace, reason=reason))
    bot.identity.forget_workspace(workspace.enterprise_id, workspace.team_id)
    if unlinked is not None:
        log.info(
            "Slack installation of %s removed (%s): %d professionals now by mail only",
            workspace.team_id or workspace.enterprise_id,
            reason,
            unlinked,
        )


def register(app: AsyncApp, bot: Bot) -> None:
    """The two events that end an installation (Slack sends both on an uninstall)."""

    @app.event("app_uninstalled")
    @bot.listener
    async def app_uninstalled(context: AsyncBoltContext) -> None:
        await _remove(bot, context, "app_uninstalled")

    @app.event("tokens_revoked")
    @bot.listener
    async def tokens_revoked(event: dict[str, Any], context: AsyncBoltContext) -> None:
        if (event.get("tokens") or {}).get("bot"):
            await _remove(bot, context, "tokens_revoked")


# -- delivery ----------------------------------------------------------------------------------


class InstallationClients:
    """The Web API client of the installation a notification goes out through, one client per
    token (they share ``template``'s base URL, timeout and retry handlers)."""

    def __init__(self, engine: Engine, template: AsyncWebClient, ring: KeyRing) -> None:
        self.store = DatabaseInstallationStore(engine, ring)
        self.engine = engine
        self.template = template
        self._clients: dict[str, AsyncWebClient] = {}

    async def client_for(self, notification: OutboundNotification) -> AsyncWebClient | None:
        """None when the recipient's workspace has no installation (any more)."""

        def find(session: Session) -> SlackWorkspace | None:
            return recipient_workspace(
                session,
                professional_id=notification.professional_id,
                institution_id=notification.institution_id,
            )

        workspace = await asyncio.to_thread(run_in_transaction, self.engine, find)
        if workspace is None:
            return None
        row = await self.store.find_row(workspace.enterprise_id, workspace.team_id)
        if row is None:
            return None
        token = bot_token(self.store.ring, row)
        client = self._clients.get(token)
        if client is None:
            template = self.template
            client = self._clients[token] = AsyncWebClient(
                token=token,
                base_url=template.base_url,
                timeout=template.timeout,
                retry_handlers=list(template.retry_handlers),
            )
        return client
