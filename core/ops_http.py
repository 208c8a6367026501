"""The operator's HTTP endpoint (issue 13.2): ``/healthz``, ``/readyz`` and ``/metrics`` on
``VERWIJSINDEX_HTTP_HOST``:``VERWIJSINDEX_HTTP_PORT``.

When that is also the Slack endpoint's address, the routes are added to the Slack endpoint's
server (:func:`add_routes`) instead of a second server on the same port.
"""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import web
from sqlalchemy.engine import Engine

from core import health, metrics
from core.roles import Serve
from core.settings import Settings

log = logging.getLogger(__name__)


def shares_the_slack_endpoint(settings: Settings) -> bool:
    """Whether the routes go on the Slack endpoint's server (its address is the same)."""
    return (settings.http_host, settings.http_port) == (settings.slack_host, settings.slack_port)


def add_routes(web_app: web.Application, engine: Engine) -> None:
    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_request: web.Request) -> web.Response:
        checks = await asyncio.to_thread(health.readiness, engine)
        ready = all(check.ok for check in checks)
        body = {
            "status": "ready" if ready else "unready",
            "checks": {check.name: {"ok": check.ok, "detail": check.detail} for check in checks},
        }
        return web.Response(
            text=json.dumps(body, ensure_ascii=False),
            status=200 if ready else 503,
            content_type="application/json",
        )

    async def metrics_text(_request: web.Request) -> web.Response:
        body = await asyncio.to_thread(metrics.exposition, engine)
        return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})

    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/readyz", readyz)
    web_app.router.add_get("/metrics", metrics_text)


async def open_ops_http(engine: Engine, host: str, port: int) -> Serve:
    web_app = web.Application()
    add_routes(web_app, engine)
    serve = await open_web_app(web_app, host, port)
    log.info("health and metrics on http://%s:%d (/healthz, /readyz, /metrics)", host, port)
    return serve


async def open_web_app(web_app: web.Application, host: str, port: int) -> Serve:
    """Bind ``web_app`` to ``host``:``port`` (a taken port raises: the service does not start,
    core.roles) and return what serves it until ``stop``; this endpoint's and Slack's."""
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise

    async def serve(stop: asyncio.Event) -> None:
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    return serve
