"""What every listener of the Slack bot needs, built once by ``serve`` (nothing at import time).

The core is synchronous; :meth:`Bot.run` carries one unit of work to a worker thread and runs
it in one transaction (retried when it lost a race), so the event loop that answers Slack is
never blocked by the database (ARCHITECTURE, Processes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.identity import SlackIdentity
from bot.texts import BotTexts
from core.config import CoreConfig
from core.db import run_in_transaction
from core.rendering import TemplateRenderer
from core.settings import Settings

T = TypeVar("T")


@dataclass
class Bot:
    settings: Settings
    engine: Engine
    config: CoreConfig
    identity: SlackIdentity
    texts: BotTexts
    renderer: TemplateRenderer
    # Set when a command enqueued notifications, so a Slack delivery worker in this process can
    # start at once instead of at its next poll.
    outbox_waiting: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, work: Callable[[Session], T]) -> T:
        """``work`` in one transaction, in a worker thread."""
        return await asyncio.to_thread(run_in_transaction, self.engine, work)

    @property
    def region(self) -> str:
        return self.config.covenant.region.name

    def help_text(self) -> str:
        municipalities = self.config.covenant.municipalities
        return self.texts.render(
            "help",
            region=self.region,
            example_municipality=municipalities[0].name if municipalities else "...",
        )


def build_bot(settings: Settings, engine: Engine, config: CoreConfig) -> Bot:
    return Bot(
        settings=settings,
        engine=engine,
        config=config,
        identity=SlackIdentity(engine, region=config.covenant.region.name),
        texts=BotTexts(settings.templates_dir, timezone=config.tz),
        renderer=TemplateRenderer(settings.templates_dir, timezone=config.tz),
    )
