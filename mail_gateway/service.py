"""The gateway's roles as coroutines, for ``verwijsindex serve``: all in one asyncio process, or
the listeners in the parent and processing and delivery in each child of ``serve --workers N``;
any number of processes may share one database, and their workers wake each other (core.wake).

Each role runs until ``stop`` is set and then finishes what it is doing: the SMTP listener stops
accepting connections and lets sessions in progress end, the processing worker finishes the
message in hand, the delivery worker the batch in hand. Nothing accepted is lost: a message
answered ``250`` is in the database, and whatever was not finished is taken up by the next start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from core.roles import Serve, run_together
from mail_gateway.context import Gateway

log = logging.getLogger(__name__)

SMTP_DRAIN_SECONDS = 30.0

Role = Callable[[Gateway, asyncio.Event], Coroutine[Any, Any, None]]


async def open_smtp(gateway: Gateway) -> Serve:
    """Bind the SMTP listener (a taken port raises: ``serve`` binds every listener before any
    other role starts, core.roles) and return what serves it until ``stop``."""
    from mail_gateway.smtp_server import start_smtp

    server = await start_smtp(gateway)

    async def serve(stop: asyncio.Event) -> None:
        try:
            await stop.wait()
        finally:
            server.close()  # no new connections; sessions in progress may finish their message
            try:
                await asyncio.wait_for(server.wait_closed(), SMTP_DRAIN_SECONDS)
            except TimeoutError:
                log.warning("SMTP sessions still open after %.0f s; closing", SMTP_DRAIN_SECONDS)

    return serve


async def run_smtp(gateway: Gateway, stop: asyncio.Event) -> None:
    serve = await open_smtp(gateway)
    await serve(stop)


async def run_processing(gateway: Gateway, stop: asyncio.Event) -> None:
    from mail_gateway.processing.worker import run_processing as worker

    await worker(gateway, stop=stop)


async def run_delivery(gateway: Gateway, stop: asyncio.Event) -> None:
    from mail_gateway.delivery.worker import run_mail_delivery

    await run_mail_delivery(
        gateway.engine,
        gateway.settings,
        region_name=gateway.config.covenant.region.name,
        stop=stop,
        wake=gateway.outbox_waiting,
    )


async def run_imap(gateway: Gateway, stop: asyncio.Event) -> None:
    if not gateway.settings.imap_url:
        return
    from mail_gateway.imap_poller import run_imap_poller

    await run_imap_poller(gateway, stop=stop)


ROLES: dict[str, Role] = {
    "smtp": run_smtp,
    "imap": run_imap,
    "processing": run_processing,
    "delivery": run_delivery,
}


async def run_roles(gateway: Gateway, roles: list[str], stop: asyncio.Event) -> None:
    """Run ``roles`` until ``stop``; a role that crashes stops the others and is raised
    (:class:`core.roles.RoleFailed`: ``serve`` exits non-zero; nothing is lost)."""
    tasks = [asyncio.create_task(ROLES[name](gateway, stop), name=name) for name in roles]
    await run_together(tasks, stop)
