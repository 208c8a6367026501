"""Unit tests of the listener's limits (mail_gateway.smtp_limits), on a clock the test turns,
and of the stand-in hash an unknown login is checked against (core.passwords)."""

from __future__ import annotations

import pytest

from core.passwords import HASH_ITERATIONS, hash_password, stand_in_hash, verify_password
from mail_gateway.smtp_limits import (
    MAX_FAILURE_DELAY_SECONDS,
    FailureWindow,
    LoginThrottle,
    SessionSlots,
)

PEER = "192.0.2.10"
OTHER_PEER = "198.51.100.7"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def throttle(clock: Clock, *, max_failures: int = 3, base_delay: float = 1.0) -> LoginThrottle:
    return LoginThrottle(max_failures=max_failures, window=60.0, base_delay=base_delay, clock=clock)


def test_sessions_are_capped_per_peer_and_in_total() -> None:
    slots = SessionSlots(total=3, per_peer=2)
    assert slots.take(PEER) and slots.take(PEER)
    assert not slots.take(PEER)  # the peer's cap
    assert slots.take(OTHER_PEER)
    assert not slots.take("203.0.113.1")  # the total cap, though this peer has none open
    slots.give_back(PEER)
    assert slots.open_sessions() == 2 and slots.open_sessions(PEER) == 1
    assert slots.take("203.0.113.1")


def test_giving_back_a_slot_never_held_changes_nothing() -> None:
    slots = SessionSlots(total=1, per_peer=1)
    slots.give_back(PEER)
    assert slots.open_sessions() == 0
    assert slots.take(PEER) and not slots.take(OTHER_PEER)


def test_failures_leave_the_window() -> None:
    clock = Clock()
    window = FailureWindow(window=60.0, clock=clock)
    assert window.add("k") == 1
    clock.now += 30
    assert window.add("k") == 2
    clock.now += 31  # the first is now older than the window
    assert window.count("k") == 1
    clock.now += 30
    assert window.count("k") == 0
    assert window.keys_held() == 0


def test_forgotten_keys_are_swept_so_memory_stays_bounded() -> None:
    clock = Clock()
    window = FailureWindow(window=60.0, clock=clock)
    for n in range(1000):
        window.add(f"old-{n}")
    clock.now += 61
    for n in range(100):
        window.add(f"new-{n}")
    assert window.keys_held() == 100


def test_the_delay_doubles_with_each_failure_up_to_the_cap() -> None:
    clock = Clock()
    limiter = throttle(clock, max_failures=100, base_delay=1.0)
    delays = [limiter.failed(PEER, "ggd-groningen").delay for _ in range(6)]
    assert delays == [1.0, 2.0, 4.0, 8.0, MAX_FAILURE_DELAY_SECONDS, MAX_FAILURE_DELAY_SECONDS]
    assert throttle(clock, base_delay=0).failed(PEER, "x").delay == 0.0


def test_the_last_failure_blocks_the_peer_until_its_failures_leave_the_window() -> None:
    clock = Clock()
    limiter = throttle(clock)
    outcomes = [limiter.failed(PEER, f"guess-{n}").blocked for n in range(3)]
    assert outcomes == [False, False, True]
    assert limiter.refuses(PEER, "ggd-groningen")  # any login, from this peer
    assert not limiter.refuses(OTHER_PEER, "ggd-groningen")
    clock.now += 61
    assert not limiter.refuses(PEER, "ggd-groningen")


def test_a_login_guessed_from_many_peers_is_blocked_for_every_peer() -> None:
    clock = Clock()
    limiter = throttle(clock)
    for n in range(3):
        limiter.failed(f"203.0.113.{n}", "jeugdhulp-noord")
    assert limiter.refuses("192.0.2.99", "jeugdhulp-noord")
    assert not limiter.refuses("192.0.2.99", "ggd-groningen")


def test_a_login_that_looks_like_an_address_has_a_count_of_its_own() -> None:
    clock = Clock()
    limiter = throttle(clock)
    for _ in range(3):
        limiter.failed(PEER, "someone")
    assert not limiter.refuses(OTHER_PEER, PEER)


@pytest.mark.parametrize("iterations", [1000, 5000])
def test_the_stand_in_hash_costs_what_the_costliest_real_hash_costs(iterations: int) -> None:
    stored = [hash_password("a", iterations=1000), hash_password("b", iterations=iterations)]
    stand_in = stand_in_hash([*stored, "not-a-hash"])
    assert stand_in.split("$")[1] == str(iterations)
    assert not verify_password("a", stand_in) and not verify_password("", stand_in)
    assert stand_in != stand_in_hash(stored)  # a fresh random digest each time


def test_without_real_hashes_the_stand_in_costs_a_new_hash() -> None:
    assert stand_in_hash([]).split("$")[1] == str(HASH_ITERATIONS)
