"""Worker processes for ``verwijsindex serve --workers N``: both sides of the arrangement.

The parent (:class:`WorkerProcesses`) keeps ``N`` children running one command line; which
command is the caller's business (``cli.serve`` starts itself in worker mode). Each child:

* runs in a process group of its own, so a Ctrl-C at the terminal reaches the parent only,
  which then stops the children in order instead of racing them;
* has a pipe from the parent as its stdin and stops, like on SIGTERM, when that pipe closes
  (:func:`stop_when_parent_exits`): a parent killed with SIGKILL leaves no orphans working on;
* is restarted when it exits while the parent is not stopping, after a back-off that doubles
  from :data:`RESTART_FIRST_SECONDS` to :data:`RESTART_MAX_SECONDS` and starts afresh once a
  child has run :data:`STABLE_SECONDS`;
* on stop gets SIGTERM, finishes the work in hand, and is killed only after
  :data:`DRAIN_SECONDS` (what it held comes back when its lease runs out: nothing is lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence

log = logging.getLogger(__name__)

RESTART_FIRST_SECONDS = 1.0
RESTART_MAX_SECONDS = 30.0
STABLE_SECONDS = 60.0
DRAIN_SECONDS = 60.0


class WorkerProcesses:
    def __init__(
        self,
        command: Sequence[str],
        count: int,
        *,
        env: Mapping[str, str] | None = None,
        drain_seconds: float = DRAIN_SECONDS,
    ) -> None:
        if count < 1:
            raise ValueError("at least one worker process")
        self.command = list(command)
        self.count = count
        self.env = dict(env) if env is not None else None
        self.drain_seconds = drain_seconds
        self.pids: dict[int, int] = {}  # worker number -> pid of its current process

    async def run(self, stop: asyncio.Event) -> None:
        """Keep the children running until ``stop``; return once every one has stopped."""
        await asyncio.gather(*(self._keep(number, stop) for number in range(1, self.count + 1)))

    async def _keep(self, number: int, stop: asyncio.Event) -> None:
        delay = RESTART_FIRST_SECONDS
        while not stop.is_set():
            started = time.monotonic()
            try:
                process = await self._start(number)
            except OSError:
                log.exception("worker %d could not start", number)
            else:
                code = await self._until_exit(process, stop)
                self.pids.pop(number, None)
                if stop.is_set():
                    log.info("worker %d (pid %d) stopped (exit %s)", number, process.pid, code)
                    return
                if time.monotonic() - started >= STABLE_SECONDS:
                    delay = RESTART_FIRST_SECONDS
                log.error(
                    "worker %d (pid %d) exited unexpectedly (exit %s); restarting in %.0f s",
                    number,
                    process.pid,
                    code,
                    delay,
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, RESTART_MAX_SECONDS)

    async def _start(self, number: int) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            *self.command,
            stdin=subprocess.PIPE,  # closed when this process ends, however it ends
            env=self.env,
            process_group=0,
        )
        self.pids[number] = process.pid
        log.info("worker %d started (pid %d)", number, process.pid)
        return process

    async def _until_exit(self, process: asyncio.subprocess.Process, stop: asyncio.Event) -> int:
        exited = asyncio.ensure_future(process.wait())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not exited.done():
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)  # finish the work in hand, then exit
            try:
                await asyncio.wait_for(asyncio.shield(exited), self.drain_seconds)
            except TimeoutError:
                log.warning(
                    "worker pid %d still busy after %.0f s; killing it (its claims come back "
                    "when their lease runs out)",
                    process.pid,
                    self.drain_seconds,
                )
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        return await exited


class _ParentWatch(asyncio.Protocol):
    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop.set()


async def stop_when_parent_exits(stop: asyncio.Event) -> None:
    """In a child: set ``stop`` when the parent's end of stdin closes (the parent is gone)."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_read_pipe(lambda: _ParentWatch(stop), sys.stdin)
    try:
        await stop.wait()
    finally:
        transport.close()
