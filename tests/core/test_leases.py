"""Keeping leases: renewals every third of the lease, from one clock thread per process."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import timedelta

from core.leases import LeaseKeeper

LEASE = timedelta(seconds=0.3)  # a renewal every 0.1 s


def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        time.sleep(0.01)


def test_a_keeper_renews_every_third_of_its_lease_until_stopped() -> None:
    renewals: list[float] = []
    with LeaseKeeper(lambda: renewals.append(time.monotonic()), LEASE, name="test") as keeper:
        wait_until(lambda: len(renewals) >= 3)
        assert keeper.remaining() > 0
    count = len(renewals)
    time.sleep(0.3)
    assert len(renewals) == count  # none after stop
    gaps = [later - earlier for earlier, later in itertools.pairwise(renewals)]
    assert all(gap >= 0.09 for gap in gaps)


def test_short_work_costs_no_thread_of_its_own() -> None:
    LeaseKeeper(lambda: None, LEASE, name="warm").start().stop()  # the clock thread is up
    threads = threading.active_count()
    for number in range(500):
        with LeaseKeeper(lambda: None, timedelta(minutes=1), name=f"short-{number}"):
            assert threading.active_count() == threads


def test_stop_waits_for_a_renewal_in_progress_and_none_starts_after() -> None:
    started, release, finished = threading.Event(), threading.Event(), threading.Event()
    calls: list[int] = []

    def slow_renewal() -> None:
        calls.append(1)
        started.set()
        release.wait(5)
        finished.set()

    keeper = LeaseKeeper(slow_renewal, LEASE, name="slow").start()
    assert started.wait(5)
    stopper = threading.Thread(target=keeper.stop)
    stopper.start()
    time.sleep(0.1)
    assert stopper.is_alive()  # held by the renewal in progress
    release.set()
    stopper.join(5)
    assert finished.is_set() and not stopper.is_alive()
    time.sleep(0.3)
    assert len(calls) == 1


def test_a_hanging_renewal_delays_no_other_keeper() -> None:
    hang = threading.Event()
    other: list[float] = []
    stuck = LeaseKeeper(lambda: hang.wait(5), LEASE, name="stuck").start()
    try:
        with LeaseKeeper(lambda: other.append(time.monotonic()), LEASE, name="other"):
            wait_until(lambda: len(other) >= 3, timeout=2)
    finally:
        hang.set()
        stuck.stop()


def test_failing_renewals_let_the_known_lease_run_out() -> None:
    failures: list[int] = []

    def failing() -> None:
        failures.append(1)
        raise ConnectionError("the database is away")

    with LeaseKeeper(failing, LEASE, name="failing") as keeper:
        wait_until(lambda: len(failures) >= 3)
        wait_until(lambda: keeper.remaining() < 0)
