"""The ``slack`` role of ``verwijsindex serve``: the Bolt app's endpoint (HTTP, or Socket Mode
when ``SLACK_APP_TOKEN`` is set), the Slack delivery worker and, with it, the recovery worker of
stored forms (``bot.submission_recovery``), until ``stop`` is set.

Slack is off unless its secrets are set (CONTRACT §1, §2): the bot token (one workspace) or the
client id and secret (a distributed app, many workspaces), and the signing secret (HTTP) or the
app token (Socket Mode). :func:`slack_missing` says what is missing, :func:`slack_mode` what
runs; whatever reports on it (``serve``'s start, ``serve --only slack``) asks them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from enum import StrEnum

from sqlalchemy.engine import Engine

from bot.app import create_app
from bot.context import Bot, build_bot
from bot.installations import distributed
from bot.server import open_http, serve_socket_mode
from bot.submission_recovery import run_submission_recovery
from core.config import CoreConfig
from core.ops_http import add_routes, shares_the_slack_endpoint
from core.roles import Serve, run_together
from core.settings import Settings

log = logging.getLogger(__name__)

# On stop, listener work that Slack was already answered for may take this long to finish.
DRAIN_SECONDS = 30.0
IDENTITY_SETTLE_SECONDS = 2.0  # a users.info check still under way (bot.identity)


class SlackMode(StrEnum):
    OFF = "off"
    HTTP = "http"
    SOCKET = "socket-mode"


# One thing Slack needs, met by any one of its alternatives: variables set together.
Requirement = tuple[tuple[str, ...], ...]
CREDENTIALS: Requirement = (("SLACK_BOT_TOKEN",), ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"))
WAY_IN: Requirement = (("SLACK_SIGNING_SECRET",), ("SLACK_APP_TOKEN",))  # HTTP, Socket Mode


def slack_missing(settings: Settings) -> list[Requirement]:
    """What Slack needs before it runs, still unset: a way to call Slack (the bot token, or a
    distributed app's client id and secret — half of that pair names the other half) and a
    way in for Slack's requests. Empty exactly when :func:`slack_mode` is not ``OFF``."""
    missing: list[Requirement] = []
    if settings.slack_bot_token is None and not distributed(settings):
        if settings.slack_client_id is not None:
            missing.append((("SLACK_CLIENT_SECRET",),))
        elif settings.slack_client_secret is not None:
            missing.append((("SLACK_CLIENT_ID",),))
        else:
            missing.append(CREDENTIALS)
    if settings.slack_app_token is None and settings.slack_signing_secret is None:
        missing.append(WAY_IN)
    return missing


def describe_missing(missing: list[Requirement], *, either: str, both: str) -> str:
    """``missing`` in words, the conjunctions given (``of``/``en``; ``or``/``and``):
    ``SLACK_BOT_TOKEN of SLACK_CLIENT_ID + SLACK_CLIENT_SECRET, en SLACK_SIGNING_SECRET of
    SLACK_APP_TOKEN``."""
    return f", {both} ".join(
        f" {either} ".join(" + ".join(names) for names in requirement) for requirement in missing
    )


def slack_mode(settings: Settings) -> SlackMode:
    if slack_missing(settings):
        return SlackMode.OFF
    return SlackMode.SOCKET if settings.slack_app_token is not None else SlackMode.HTTP


async def open_endpoint(bot: Bot) -> Serve:
    """Bind Slack's HTTP endpoint (a taken port raises; Socket Mode connects out and binds
    nothing) and return what takes Slack's requests until ``stop``, then finishes the work
    already acknowledged."""
    settings = bot.settings
    app = create_app(bot)
    listen: Serve
    if slack_mode(settings) == SlackMode.SOCKET:
        assert settings.slack_app_token is not None
        listen = functools.partial(
            serve_socket_mode, app, settings.slack_app_token.get_secret_value()
        )
    else:
        also = None
        if settings.http_port and shares_the_slack_endpoint(settings):
            also = functools.partial(add_routes, engine=bot.engine)
        listen = await open_http(app, settings.slack_host, settings.slack_port, also)

    async def serve(stop: asyncio.Event) -> None:
        try:
            await listen(stop)
        finally:
            await bot.in_flight.drain(DRAIN_SECONDS)
            await bot.identity.settle(IDENTITY_SETTLE_SECONDS)

    return serve


async def run_endpoint(bot: Bot, stop: asyncio.Event) -> None:
    """Take Slack's requests until ``stop``; then finish the work already acknowledged."""
    serve = await open_endpoint(bot)
    await serve(stop)


async def run_slack(
    settings: Settings,
    engine: Engine,
    config: CoreConfig,
    stop: asyncio.Event,
    *,
    bot: Bot | None = None,
    endpoint: bool = True,
    delivery: bool = True,
    linking: bool = True,
    opened_endpoint: Serve | None = None,
) -> None:
    """The endpoint and the delivery worker; a crash of one stops the other (the supervisor
    restarts the service; nothing accepted is lost). ``serve --workers N`` runs the endpoint
    in its parent process and the delivery worker in each child; the proactive linking of
    professionals (bot.proactive_linking) runs beside the endpoint, once per service.
    ``opened_endpoint``: the endpoint already bound (:func:`open_endpoint`; ``serve`` binds
    every listener before any worker starts, core.roles)."""
    missing = slack_missing(settings)
    if missing:
        log.info("Slack is off: set %s", describe_missing(missing, either="or", both="and"))
        return
    from bot.delivery import run_slack_delivery

    bot = bot or build_bot(settings, engine, config)
    tasks = []
    if endpoint:
        serve_endpoint = opened_endpoint or await open_endpoint(bot)
        tasks.append(asyncio.create_task(serve_endpoint(stop), name="slack-endpoint"))
    if endpoint and linking:
        tasks.append(
            asyncio.create_task(_proactive_linking(settings, engine, stop), name="slack-linking")
        )
    if delivery:
        tasks.append(
            asyncio.create_task(
                run_slack_delivery(
                    settings, stop, engine=engine, config=config, wake=bot.outbox_waiting
                ),
                name="slack-delivery",
            )
        )
        # Forms stored and acknowledged but never processed (a process died): processed now.
        tasks.append(
            asyncio.create_task(run_submission_recovery(bot, stop), name="slack-form-recovery")
        )
    await run_together(tasks, stop)


async def _proactive_linking(settings: Settings, engine: Engine, stop: asyncio.Event) -> None:
    from bot import proactive_linking
    from bot.delivery import slack_client

    linker = proactive_linking.ProactiveLinker(
        engine,
        slack_client(settings),
        distributed=distributed(settings),
        spacing=proactive_linking.DEFAULT_SPACING,
        ring=settings.keyring(),
    )
    await proactive_linking.run_proactive_linking(linker, stop, tick=proactive_linking.DEFAULT_TICK)
