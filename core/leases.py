"""Keeping a lease while the work it covers runs: the one renewal loop of every claim with a
lease (outbox rows in ``core.outbox``, inbound messages in ``mail_gateway.processing``).

A claim's lease is short, so that work a killed worker held is taken up again soon; a live
worker keeps it by renewing it every third of its length, off the worker's thread (the work may
block: an SMTP relay answering slowly, a large CSV import). Two renewals can fail before the
lease runs out. :meth:`LeaseKeeper.remaining` tells the worker how long the lease is known to
last, counted from the claim or the last renewal that succeeded: when renewals keep failing
(the database is away) the worker stops starting new work before the lease runs out under it.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from types import TracebackType

log = logging.getLogger(__name__)

RENEWALS_PER_LEASE = 3


class _RenewalClock:
    """The one thread per process that wakes keepers when a renewal is due. Most work is over
    long before its first renewal (a run of mails takes milliseconds, a lease a minute), so a
    keeper costs a heap entry, not a thread of its own; the rare renewal runs on a thread of
    its own, so a renewal that hangs (the database away) delays no other keeper's."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._due: list[tuple[float, int, LeaseKeeper]] = []
        self._order = itertools.count()  # ties in time: first come, first renewed
        self._thread: threading.Thread | None = None

    def wake(self, keeper: LeaseKeeper, after: float) -> None:
        with self._changed:
            heapq.heappush(self._due, (time.monotonic() + after, next(self._order), keeper))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="lease-renewals", daemon=True
                )
                self._thread.start()
            self._changed.notify()

    def _run(self) -> None:
        with self._changed:
            while True:
                while self._due and self._due[0][2].stopped:
                    heapq.heappop(self._due)  # stopped keepers leave when they come up
                if not self._due:
                    self._changed.wait()
                    continue
                delay = self._due[0][0] - time.monotonic()
                if delay > 0:
                    self._changed.wait(delay)
                    continue
                keeper = heapq.heappop(self._due)[2]
                threading.Thread(target=keeper._renew_once, name=keeper.name, daemon=True).start()


_renewals = _RenewalClock()


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
        self.name = name
        self._renew = renew
        self._clock = clock
        self._lock = threading.Lock()
        self._renewing = threading.Lock()  # held while a renewal runs
        self._held_until = (clock() if since is None else since) + lease.total_seconds()
        self._done = threading.Event()

    @property
    def stopped(self) -> bool:
        return self._done.is_set()

    def start(self) -> LeaseKeeper:
        _renewals.wake(self, after=self._interval())
        return self

    def stop(self) -> None:
        """Stop renewing; returns once a renewal in progress is over."""
        self._done.set()
        with self._renewing:
            pass  # a renewal that starts after this sees the keeper stopped and does nothing

    def remaining(self) -> float:
        """Seconds the lease is known to last (negative once it may have run out)."""
        with self._lock:
            return self._held_until - self._clock()

    def _interval(self) -> float:
        return self.lease.total_seconds() / RENEWALS_PER_LEASE

    def _renew_once(self) -> None:
        with self._renewing:
            if self.stopped:
                return
            began = self._clock()  # the database's new lease starts after this
            try:
                self._renew()
            except Exception as exc:  # named by type: the database's text is no log material
                log.warning("%s: could not renew the lease (%s)", self.name, type(exc).__name__)
            else:
                with self._lock:
                    self._held_until = began + self.lease.total_seconds()
        if not self.stopped:
            _renewals.wake(self, after=self._interval())

    def __enter__(self) -> LeaseKeeper:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
