"""The SMTP listener's limits: sessions at once (in total and per peer address), and failed
logins per peer address and per login.

* :class:`SessionSlots` — a session takes a slot when the connection opens and gives it back
  when it closes; beyond either cap the listener answers ``421`` and closes, so one peer (or a
  flood of them) cannot hold every session the gateway has.
* :class:`LoginThrottle` — every failed SMTP AUTH counts against the peer address *and* the
  login tried, within a sliding window. Each failure is answered after a delay that doubles
  with the failures in the window; once either count reaches the limit, further attempts are
  refused with ``421`` until failures leave the window. Counting the login as well as the peer
  stops a guesser who spreads the attempts over many addresses; the price is that such a
  guesser also locks the real coupling out for the window, which the audit log shows.

Both count in the memory of one listener process: with several ``serve --only smtp`` processes
each keeps its own counts, so the limits hold per process.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]

# However many failures: a client is never kept waiting longer than this for an answer, well
# inside any client's command timeout (RFC 5321 §4.5.3.2 advises clients to wait minutes).
MAX_FAILURE_DELAY_SECONDS = 10.0
# Forgotten keys (failures all older than the window) are swept once this many are held, and
# again whenever the number held has doubled since: memory stays bounded by the keys in use.
_SWEEP_FLOOR = 1024


class SessionSlots:
    """How many SMTP sessions are open, in total and per peer address."""

    def __init__(self, *, total: int, per_peer: int) -> None:
        self.total = total
        self.per_peer = per_peer
        self._open: dict[str, int] = {}
        self._count = 0

    def take(self, peer: str) -> bool:
        """A slot for a new session from ``peer``, or False when either cap is reached."""
        held = self._open.get(peer, 0)
        if self._count >= self.total or held >= self.per_peer:
            return False
        self._open[peer] = held + 1
        self._count += 1
        return True

    def give_back(self, peer: str) -> None:
        held = self._open.get(peer, 0)
        if held <= 0:
            return
        if held == 1:
            del self._open[peer]
        else:
            self._open[peer] = held - 1
        self._count -= 1

    def open_sessions(self, peer: str | None = None) -> int:
        return self._count if peer is None else self._open.get(peer, 0)


class FailureWindow:
    """Failures per key within the last ``window`` seconds."""

    def __init__(self, *, window: float, clock: Clock = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._failures: dict[object, deque[float]] = {}
        self._sweep_at = _SWEEP_FLOOR

    def count(self, key: object) -> int:
        times = self._failures.get(key)
        if times is None:
            return 0
        self._forget_old(times, self._clock())
        if not times:
            del self._failures[key]
        return len(times)

    def add(self, key: object) -> int:
        """Record a failure now; the number of failures of ``key`` in the window."""
        now = self._clock()
        times = self._failures.setdefault(key, deque())
        self._forget_old(times, now)
        times.append(now)
        if len(self._failures) >= self._sweep_at:
            self._sweep(now)
        return len(times)

    def keys_held(self) -> int:
        return len(self._failures)

    def _forget_old(self, times: deque[float], now: float) -> None:
        while times and times[0] <= now - self.window:
            times.popleft()

    def _sweep(self, now: float) -> None:
        for key in list(self._failures):
            times = self._failures[key]
            self._forget_old(times, now)
            if not times:
                del self._failures[key]
        self._sweep_at = max(_SWEEP_FLOOR, 2 * len(self._failures))


@dataclass(frozen=True)
class LoginFailure:
    """What one failed login leads to: answer after ``delay`` seconds; with ``blocked``, the
    answer is ``421`` and the session is closed."""

    failures: int  # the higher of the peer's and the login's count in the window
    delay: float
    blocked: bool


class LoginThrottle:
    """Failed logins per peer address and per login: a growing delay, then refusal."""

    def __init__(
        self,
        *,
        max_failures: int,
        window: float,
        base_delay: float,
        max_delay: float = MAX_FAILURE_DELAY_SECONDS,
        clock: Clock = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._window = FailureWindow(window=window, clock=clock)

    def refuses(self, peer: str, login: str) -> bool:
        """Whether an attempt from ``peer`` for ``login`` is refused without being checked."""
        return any(self._window.count(key) >= self.max_failures for key in _keys(peer, login))

    def failed(self, peer: str, login: str) -> LoginFailure:
        failures = max(self._window.add(key) for key in _keys(peer, login))
        return LoginFailure(
            failures=failures,
            delay=self.delay_after(failures),
            blocked=failures >= self.max_failures,
        )

    def delay_after(self, failures: int) -> float:
        if failures <= 0 or self.base_delay <= 0:
            return 0.0
        return min(self.max_delay, self.base_delay * 2 ** min(failures - 1, 32))


def _keys(peer: str, login: str) -> tuple[tuple[str, str], tuple[str, str]]:
    # Tagged, so a login that looks like an address never shares a count with that address.
    return ("peer", peer), ("login", login)
