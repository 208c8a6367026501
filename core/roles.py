"""Running a service's roles side by side (``verwijsindex serve``): until they all end, and a
role that fails stops the others — which finish what they hold — and then the service, with
the failure named (a supervisor restarts it; nothing accepted is lost)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

log = logging.getLogger(__name__)


class RoleFailed(Exception):
    """A role of the service stopped with an error (a port taken, a lost connection, ...)."""

    def __init__(self, role: str, cause: BaseException):
        super().__init__(f"{role}: {cause}")
        self.role = role
        self.cause = cause


async def run_together(tasks: Sequence[asyncio.Task[None]], stop: asyncio.Event) -> None:
    """Wait for ``tasks``; the first failure sets ``stop`` and, once every task has ended, is
    raised as :class:`RoleFailed` (the innermost role's name when roles are nested)."""
    if not tasks:
        return
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        if any(task.exception() is not None for task in done):
            stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            error = None if task.cancelled() else task.exception()
            if error is not None:
                log.error("role %s failed", task.get_name(), exc_info=error)
                raise error if isinstance(error, RoleFailed) else RoleFailed(task.get_name(), error)
    finally:
        for task in tasks:
            task.cancel()
