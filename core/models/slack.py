"""Slack's side of a distributed app (CONTRACT §5): the installations of the app, one per
workspace or Enterprise Grid org, the OAuth ``state`` values of installs under way, and the
one-time codes that link a Slack user whose e-mail address Slack hides (Slack Connect).

Not domain tables: they hold no youth and no covenant data, only how Slack reaches whom. No
Slack secret is kept in clear: a bot token is sealed under the region's key
(core.slack_installations), a link code and an OAuth ``state`` are kept as digests only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.clock import utcnow


class SlackInstallation(SQLModel, table=True):
    """The app installed in one workspace (``team_id``), or org-wide in an Enterprise Grid org
    (``is_enterprise_install``: ``team_id`` empty). ``workspace_key`` makes the pair unique
    even where one of them is empty (a UNIQUE over NULLs holds nothing). The bot token is sealed
    (``bot_token_sealed``; core.slack_installations.bot_token opens it): a copy of the database
    without the region's key gives no working token."""

    __table_args__ = (UniqueConstraint("workspace_key"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_key: str = Field(max_length=90)
    enterprise_id: str | None = Field(default=None, max_length=40)
    team_id: str | None = Field(default=None, max_length=40)
    is_enterprise_install: bool = False
    team_name: str | None = Field(default=None, max_length=200)
    app_id: str | None = Field(default=None, max_length=40)
    bot_id: str | None = Field(default=None, max_length=40)
    bot_user_id: str | None = Field(default=None, max_length=40)
    bot_scopes: str = Field(default="", max_length=2000)
    installer_user_id: str | None = Field(default=None, max_length=40)
    installed_at: datetime = Field(default_factory=utcnow)
    # Last: where revision 0013 added it (the migrated schema is the models', column order too).
    bot_token_sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class SlackOAuthState(SQLModel, table=True):
    """An install under way: the SHA-256 of the ``state`` Slack hands back, until it is used
    once or expires (RFC 6749 §10.12: CSRF protection of the redirect)."""

    state_hash: str = Field(primary_key=True, max_length=64)
    expires_at: datetime


class SlackLinkCode(SQLModel, table=True):
    """A one-time code mailed to a professional's covenant address, which links the Slack user
    who asked for it (``/verwijsindex koppel CODE``). Only its SHA-256 is kept; it expires,
    counts wrong guesses, and is used once."""

    __table_args__ = (UniqueConstraint("code_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    code_hash: str = Field(max_length=64)
    professional_id: int = Field(foreign_key="professional.id", index=True)
    enterprise_id: str | None = Field(default=None, max_length=40)
    team_id: str | None = Field(default=None, max_length=40)
    user_id: str = Field(max_length=40, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    failed_attempts: int = 0
    used_at: datetime | None = None


class SlackThread(SQLModel, table=True):
    """The first Slack message the app posted to one recipient (a user or channel id, as the
    outbox addressed it) about one subject (``C-4``, ``M-3``, ``S-12``, ``T-2``): later messages
    about it go in its thread (core.slack_threads). ``professional_id`` and ``institution_id``
    say whose thread it is (a professional's DM, an institution's channel; neither: the
    municipality contact's): an answer picks the threads whose question it answers by them.

    ``answer`` holds ``{"pending": [...], "through": {kind: outbox id}}``: the answers still to
    show (who answered how and when, the kinds of message that asked it, the newest outbox id
    it covers) and, per kind, the newest message already updated — a thread can hold several
    questions (a signal's expiry warning and its reminder to inform), each answered on its own.
    (A thread answered before the kinds holds one answer, a coordination's, as a flat dict.)
    An answer, by anyone, by mail or Slack, sets ``answered_at`` and ``update_due_at``; the
    Slack worker then replaces the buttons of the thread's messages of its kinds by the line who
    answered how and clears ``update_due_at``, or after a failure sets it later again
    (``update_attempts``, at most core.slack_threads.MAX_UPDATE_ATTEMPTS). A message whose own
    button gave the answer was updated by the button and is passed by.

    The workspace (``enterprise_id``, ``team_id``) is the one it was posted through: a recipient
    linked elsewhere since starts the thread again there, and the messages up to
    ``updated_through`` (an outbox id), posted through the old workspace, are out of reach (the
    old channel is not the new token's)."""

    __table_args__ = (UniqueConstraint("recipient", "subject"),)

    id: int | None = Field(default=None, primary_key=True)
    recipient: str = Field(max_length=40)
    subject: str = Field(max_length=100, index=True)
    channel: str = Field(max_length=40)
    ts: str = Field(max_length=40)
    enterprise_id: str | None = Field(default=None, max_length=40)
    team_id: str | None = Field(default=None, max_length=40)
    professional_id: int | None = None
    institution_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    answer: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    answered_at: datetime | None = None
    updated_through: int = 0
    update_due_at: datetime | None = Field(default=None, index=True)
    update_attempts: int = 0
