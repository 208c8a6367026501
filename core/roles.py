"""Running a service's roles side by side (``verwijsindex serve``): until they all end, and a
role that fails stops the others — which finish what they hold — and then the service, with
the failure named (a supervisor restarts it; nothing accepted is lost).

A service starts in two steps: first every listener binds its port (:func:`open_listeners`),
then the other roles start. A taken port so stops the service before the scheduler swept or a
worker sent anything (issue 13.1).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any

log = logging.getLogger(__name__)

Serve = Callable[[asyncio.Event], Coroutine[Any, Any, None]]
"""A bound listener's work: take requests until ``stop`` is set, then close (at once when it
already is)."""

OpenListener = Callable[[], Awaitable[Serve]]
"""Binds a listener's port (raising when it cannot) and returns its :data:`Serve`."""


class RoleFailed(Exception):
    """A role of the service stopped with an error (a port taken, a lost connection, ...)."""

    def __init__(self, role: str, cause: BaseException):
        super().__init__(f"{role}: {cause}")
        self.role = role
        self.cause = cause


async def open_listeners(
    listeners: Mapping[str, OpenListener], stop: asyncio.Event
) -> dict[str, Serve]:
    """Bind every listener, one after the other; the caller runs each one's :data:`Serve`. The
    first that cannot bind sets ``stop``, closes those already bound and is raised as
    :class:`RoleFailed`, so nothing else of the service has started."""
    opened: dict[str, Serve] = {}
    for name, open_listener in listeners.items():
        try:
            opened[name] = await open_listener()
        except Exception as exc:
            stop.set()
            closing = (serve(stop) for serve in opened.values())
            await asyncio.gather(*closing, return_exceptions=True)
            log.error("role %s failed", name, exc_info=exc)
            raise RoleFailed(name, exc) from exc
    return opened


async def run_together(tasks: Sequence[asyncio.Task[None]], stop: asyncio.Event) -> None:
    """Wait for ``tasks``; the first failure sets ``stop`` and, once every task has ended, is
    raised as :class:`RoleFailed` (the innermost role's name when roles are nested; logged once,
    where it is first caught)."""
    if not tasks:
        return
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        if any(task.exception() is not None for task in done):
            stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            error = None if task.cancelled() else task.exception()
            if isinstance(error, RoleFailed):
                raise error  # an inner run_together named and logged it
            if error is not None:
                log.error("role %s failed", task.get_name(), exc_info=error)
                raise RoleFailed(task.get_name(), error)
    finally:
        for task in tasks:
            task.cancel()
