"""What every listener of the Slack bot needs, built once by ``serve`` (nothing at import time).

The core is synchronous; :meth:`Bot.run` carries one unit of work to a worker thread and runs
it in one transaction (retried when it lost a race), so the event loop that answers Slack is
never blocked by the database (ARCHITECTURE, Processes).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.identity import SlackIdentity
from bot.texts import BotTexts
from core.config import CoreConfig
from core.db import run_in_transaction
from core.rendering import TemplateRenderer
from core.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
Listener = Callable[..., Awaitable[None]]


class InFlight:
    """Listener work that goes on after Slack got its answer (the signal is placed after the
    modal closed). On a clean stop the endpoint waits for it: SIGTERM loses nothing that was
    acknowledged (ARCHITECTURE, Processes)."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def track(self, listener: Listener) -> Listener:
        # functools.wraps: Bolt reads the listener's arguments through __wrapped__.
        @functools.wraps(listener)
        async def tracked(**kwargs: Any) -> None:
            self.count += 1
            self._idle.clear()
            try:
                await listener(**kwargs)
            finally:
                self.count -= 1
                if self.count == 0:
                    self._idle.set()

        return tracked

    async def drain(self, timeout: float) -> bool:
        """Wait until no listener runs (at most ``timeout`` seconds); whether it got there."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            log.warning(
                "%d Slack listeners still running after %.0f s; stopping", self.count, timeout
            )
            return False
        return True


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
    in_flight: InFlight = field(default_factory=InFlight)

    def listener(self, function: Listener) -> Listener:
        """Mark a listener whose work a clean stop waits for (see :class:`InFlight`)."""
        return self.in_flight.track(function)

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
