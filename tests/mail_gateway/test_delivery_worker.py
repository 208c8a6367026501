"""The asynchronous delivery loop ``serve`` runs: woken by new outbox rows, polling for the
rest, and stopping cleanly (the batch in hand finished, nothing lost)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from core.models import OutboxStatus
from core.outbox import DeliveryReport
from mail_gateway.delivery.worker import MailDelivery, run_mail_delivery
from tests.mail_gateway.relay_sink import RelaySink
from tests.mail_gateway.test_delivery import (
    REGION,
    delivery_settings,
    enqueue_notification,
    outbox_rows,
)


@pytest.fixture
def sink() -> Iterator[RelaySink]:
    with RelaySink() as relay:
        yield relay


async def eventually(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {condition}")


def start(
    engine: Engine,
    tmp_path: Path,
    sink: RelaySink,
    stop: asyncio.Event,
    **options: Any,
) -> asyncio.Task[None]:
    return asyncio.create_task(
        run_mail_delivery(
            engine,
            delivery_settings(tmp_path, sink.url),
            region_name=REGION,
            stop=stop,
            **options,
        )
    )


async def test_the_worker_delivers_when_woken_and_stops_on_the_stop_event(
    engine: Engine, sink: RelaySink, tmp_path: Path
) -> None:
    stop, wake = asyncio.Event(), asyncio.Event()
    worker = start(engine, tmp_path, sink, stop, wake=wake, poll_interval=30.0, worker_id="w-1")
    await asyncio.sleep(0.1)  # the first (empty) round is over; now it waits for a wake-up
    enqueue_notification(engine, 1)
    started = time.monotonic()
    wake.set()
    await eventually(lambda: sink.messages())
    assert time.monotonic() - started < 1.0, "woken, not polled"
    stop.set()
    await asyncio.wait_for(worker, timeout=5)
    [row] = outbox_rows(engine)
    assert (row.status, row.claimed_by) == (OutboxStatus.SENT, "w-1")


async def test_without_a_wake_up_the_worker_polls(
    engine: Engine, sink: RelaySink, tmp_path: Path
) -> None:
    stop = asyncio.Event()
    worker = start(engine, tmp_path, sink, stop, poll_interval=0.2)
    await asyncio.sleep(0.1)
    enqueue_notification(engine, 2)  # written by another process: nobody wakes this one
    await eventually(lambda: sink.messages(), timeout=5)
    stop.set()
    await asyncio.wait_for(worker, timeout=5)


async def test_stop_finishes_the_batch_in_hand_and_loses_nothing(
    engine: Engine, sink: RelaySink, tmp_path: Path
) -> None:
    sink.handler.data_delay = 0.05  # a slow relay: the stop comes in the middle of the batch
    for number in range(10, 22):
        enqueue_notification(engine, number)
    stop = asyncio.Event()
    worker = start(engine, tmp_path, sink, stop, poll_interval=30.0)
    await eventually(lambda: sink.messages())
    stop.set()
    await asyncio.wait_for(worker, timeout=10)
    rows = outbox_rows(engine)
    assert {row.status for row in rows} == {OutboxStatus.SENT}, "the batch was finished"
    assert len(sink.messages()) == len(rows) == 12, "each exactly once"


async def test_a_stop_while_waiting_returns_at_once(
    engine: Engine, sink: RelaySink, tmp_path: Path
) -> None:
    stop = asyncio.Event()
    worker = start(engine, tmp_path, sink, stop, poll_interval=60.0)
    await asyncio.sleep(0.1)
    started = time.monotonic()
    stop.set()
    await asyncio.wait_for(worker, timeout=5)
    assert time.monotonic() - started < 1.0


async def test_a_failing_round_is_logged_and_the_worker_carries_on(
    engine: Engine, sink: RelaySink, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    delivery = MailDelivery(engine, delivery_settings(tmp_path, sink.url), region_name=REGION)
    real = delivery.deliver_batch
    rounds: list[int] = []

    def flaky(**kwargs: Any) -> DeliveryReport:
        rounds.append(1)
        if len(rounds) == 1:
            raise ConnectionError("database away")
        return real(**kwargs)

    delivery.deliver_batch = flaky  # type: ignore[method-assign]
    enqueue_notification(engine, 30)
    stop = asyncio.Event()
    worker = start(
        engine, tmp_path, sink, stop, poll_interval=0.1, delivery_factory=lambda: delivery
    )
    await eventually(lambda: sink.messages())
    stop.set()
    await asyncio.wait_for(worker, timeout=5)
    assert "mail delivery round failed" in caplog.text
    assert [row.status for row in outbox_rows(engine)] == [OutboxStatus.SENT]


async def test_a_busy_worker_keeps_its_relay_connection_and_lets_go_when_idle(
    engine: Engine, sink: RelaySink, tmp_path: Path
) -> None:
    settings = delivery_settings(tmp_path, sink.url)
    delivery = MailDelivery(engine, settings, region_name=REGION, batch_size=2)
    stop, wake = asyncio.Event(), asyncio.Event()
    worker = start(
        engine,
        tmp_path,
        sink,
        stop,
        wake=wake,
        poll_interval=1.0,
        delivery_factory=lambda: delivery,
    )
    for number in range(60, 65):  # three batches, one after the other
        enqueue_notification(engine, number)
    wake.set()
    await eventually(lambda: len(sink.messages()) == 5)
    enqueue_notification(engine, 65)
    wake.set()  # woken again before it went idle
    await eventually(lambda: len(sink.messages()) == 6)
    assert sink.connections() == 1, "one connection for everything while busy"
    await asyncio.sleep(1.8)  # idle for longer than poll_interval: the connection is closed
    enqueue_notification(engine, 66)
    wake.set()
    await eventually(lambda: len(sink.messages()) == 7)
    stop.set()
    await asyncio.wait_for(worker, timeout=5)
    assert sink.connections() == 2
