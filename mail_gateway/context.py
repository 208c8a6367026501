"""What every part of the gateway needs, built once by ``serve`` (nothing at import time)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from core.config import CoreConfig
from core.settings import Settings
from mail_gateway.authentication import MessageAuthenticator
from mail_gateway.vault import MessageVault


@dataclass
class Gateway:
    settings: Settings
    engine: Engine
    config: CoreConfig
    vault: MessageVault
    authenticator: MessageAuthenticator
    # Set when a message was stored, so the processing worker starts at once instead of at
    # its next poll; set when notifications were enqueued, for the delivery worker. Set here
    # by this process's own writers, and by core.wake.listen for every other process's.
    inbound_waiting: asyncio.Event = field(default_factory=asyncio.Event)
    outbox_waiting: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def mail_domain(self) -> str:
        return self.settings.mail_domain


def build_gateway(settings: Settings, engine: Engine, config: CoreConfig) -> Gateway:
    return Gateway(
        settings=settings,
        engine=engine,
        config=config,
        vault=MessageVault(settings.keyring()),
        authenticator=MessageAuthenticator.from_settings(settings),
    )
