"""How Slack reaches the app: HTTP (``POST /slack/events`` on ``VERWIJSINDEX_SLACK_PORT``) or
Socket Mode (an outgoing WebSocket, when ``SLACK_APP_TOKEN`` is set: no public URL needed). A
distributed app also serves ``GET /slack/install`` and ``GET /slack/oauth_redirect`` over HTTP
(bot.installations).

Both run until ``stop`` is set. The HTTP endpoint is a small aiohttp application around Bolt's
dispatch: events, slash commands and interactivity all arrive at the one path, and Bolt answers
``/slack/events`` itself for Slack's URL verification and SSL checks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from core.ops_http import open_web_app
from core.roles import Serve

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
# Slack's payloads are small (a view submission is a few kB); anything much larger is not Slack.
MAX_REQUEST_BYTES = 1024 * 1024


def http_application(
    app: AsyncApp, also: Callable[[web.Application], None] | None = None
) -> web.Application:
    """Slack's path, and whatever ``also`` adds (the health and metrics routes, when they share
    this server's address: core.ops_http)."""

    async def events(request: web.Request) -> web.Response:
        bolt_request = await to_bolt_request(request)
        bolt_response = await app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    web_app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    web_app.router.add_post(EVENTS_PATH, events)
    flow = app.oauth_flow
    if flow is not None:  # a distributed app: its install page and OAuth redirect

        async def install(request: web.Request) -> web.Response:
            answer = await flow.handle_installation(await to_bolt_request(request))
            return await to_aiohttp_response(answer)

        async def redirect(request: web.Request) -> web.Response:
            answer = await flow.handle_callback(await to_bolt_request(request))
            return await to_aiohttp_response(answer)

        web_app.router.add_get(flow.install_path, install)
        web_app.router.add_get(flow.redirect_uri_path, redirect)
    if also is not None:
        also(web_app)
    return web_app


async def open_http(
    app: AsyncApp, host: str, port: int, also: Callable[[web.Application], None] | None = None
) -> Serve:
    """Bind the endpoint (a taken port raises before anything else of ``serve`` started,
    core.roles); the result serves it until ``stop``."""
    serve = await open_web_app(http_application(app, also), host, port)
    log.info("Slack endpoint on http://%s:%d%s", host, port, EVENTS_PATH)
    return serve


async def serve_socket_mode(app: AsyncApp, app_token: str, stop: asyncio.Event) -> None:
    """Connect out to Slack; slack_sdk keeps trying (every 10 s) while Slack cannot be reached,
    and reconnects a dropped connection, until ``stop``."""
    handler = AsyncSocketModeHandler(app, app_token)
    connecting = asyncio.create_task(handler.connect_async(), name="slack-socket-mode")
    log.info("Slack Socket Mode: connecting")
    try:
        await stop.wait()
    finally:
        connecting.cancel()
        await handler.close_async()
