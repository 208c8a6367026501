"""Keeping a lease while the work it covers runs: the one renewal loop of every claim with a
lease (outbox rows in ``core.outbox``, inbound messages in ``mail_gateway.processing``).

A claim's lease is short, so that work a killed worker held is taken up again soon; a live
worker keeps it by renewing it every third of its length, from a thread of its own (the work may
block: an SMTP relay answering slowly, a large CSV import). Two renewals can fail before the
lease runs out. :meth:`LeaseKeeper.remaining` tells the worker how long the lease is known to
last, counted from the claim or the last renewal that succeeded: when renewals keep failing
(the database is away) the worker stops starting new work before the lease runs out under it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from types import TracebackType

log = logging.getLogger(__name__)

RENEWALS_PER_LEASE = 3


class LeaseKeeper:
    """Calls ``renew`` every ``lease / 3`` from :meth:`start` until :meth:`stop`.

    ``since`` is the ``clock()`` value from before the claim was made (default: now), so the
    keeper never believes in more lease than the database gave.
    """

    def __init__(
        self,
        renew: Callable[[], object],
        lease: timedelta,
        *,
        name: str,
        since: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lease = lease
        self._renew = renew
        self._clock = clock
        self._lock = threading.Lock()
        self._held_until = (clock() if since is None else since) + lease.total_seconds()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._keep, name=name, daemon=True)

    def start(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop renewing; returns once a renewal in progress is over."""
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()

    def remaining(self) -> float:
        """Seconds the lease is known to last (negative once it may have run out)."""
        with self._lock:
            return self._held_until - self._clock()

    def _keep(self) -> None:
        interval = self.lease.total_seconds() / RENEWALS_PER_LEASE
        while not self._done.wait(interval):
            began = self._clock()  # the database's new lease starts after this
            try:
                self._renew()
            except Exception as exc:  # named by type: the database's text is no log material
                log.warning(
                    "%s: could not renew the lease (%s)", self._thread.name, type(exc).__name__
                )
                continue
            with self._lock:
                self._held_until = began + self.lease.total_seconds()

    def __enter__(self) -> LeaseKeeper:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
