"""Workers wake across processes (issue 10.7): work stored by one process wakes the workers of
another at once, through PostgreSQL ``LISTEN/NOTIFY`` or, on SQLite, ``PRAGMA data_version``
(core.wake). The workers here poll once an hour, so only a wake can make them react.

The other process is a real ``serve`` on loopback; the workers run in this one, against the
same database (the suite's: SQLite, or PostgreSQL with VERWIJSINDEX_TEST_DATABASE_URL).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import smtplib
import statistics
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from core.config import CoreConfig
from core.db import transaction
from core.wake import Wake, announce, listen
from mail_gateway.context import Gateway, build_gateway
from mail_gateway.delivery.worker import run_mail_delivery
from mail_gateway.processing.worker import run_processing
from tests.bsns import valid_bsns
from tests.mail_gateway.conftest import MAIL_DOMAIN, gateway_settings, wait_until
from tests.mail_gateway.relay_sink import RelaySink
from tests.mail_gateway.serve_process import RECEIPT, SENDER, Service, registration

AN_HOUR = 3600.0
MAILS = 5


class InThread:
    """Coroutines that run until stop, in a thread with an event loop of its own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.stop = asyncio.Event()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._tasks: list[concurrent.futures.Future[None]] = []

    def start(self, *coroutines: Coroutine[Any, Any, None]) -> InThread:
        self._thread.start()
        for coroutine in coroutines:
            self._tasks.append(asyncio.run_coroutine_threadsafe(coroutine, self.loop))
        return self

    def call(self, function: Callable[[], object]) -> None:
        """Call ``function`` in the loop's thread; return once it was called."""

        async def call() -> None:
            function()

        asyncio.run_coroutine_threadsafe(call(), self.loop).result(10)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        for task in self._tasks:
            task.result(30)  # re-raises what went wrong in the task
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


def hourly_workers(gateway: Gateway, roles: tuple[str, ...], running: InThread) -> InThread:
    """The roles' loops polling once an hour, and the wake listener that sets their events."""
    work: list[Coroutine[Any, Any, None]] = []
    listeners: dict[Wake, list[asyncio.Event]] = {}
    if "processing" in roles:
        work.append(run_processing(gateway, stop=running.stop, poll_interval=AN_HOUR))
        listeners[Wake.INBOUND] = [gateway.inbound_waiting]
    if "delivery" in roles:
        work.append(
            run_mail_delivery(
                gateway.engine,
                gateway.settings,
                region_name=gateway.config.covenant.region.name,
                stop=running.stop,
                wake=gateway.outbox_waiting,
                poll_interval=AN_HOUR,
            )
        )
        listeners[Wake.OUTBOX] = [gateway.outbox_waiting]
    return running.start(*work, listen(gateway.engine, listeners, running.stop))


@pytest.mark.parametrize(
    ("elsewhere", "here"),
    [(("smtp",), ("processing", "delivery")), (("smtp", "processing"), ("delivery",))],
    ids=["inbound-wakes-processing", "outbox-wakes-delivery"],
)
def test_work_stored_by_another_process_wakes_a_worker_that_polls_once_an_hour(
    tmp_path: Path,
    database_url: str,
    empty_engine: Engine,
    config: CoreConfig,
    elsewhere: tuple[str, ...],
    here: tuple[str, ...],
) -> None:
    service = Service(tmp_path, database_url)
    service.start(*elsewhere)  # migrates and syncs the covenant before SMTP listens
    latencies: list[float] = []
    with RelaySink() as sink:
        settings = gateway_settings(tmp_path, database_url, relay_url=sink.url)
        running = hourly_workers(build_gateway(settings, empty_engine, config), here, InThread())
        try:
            for number, bsn in enumerate(valid_bsns(MAILS, start_prefix=33_000_000)):
                with smtplib.SMTP("127.0.0.1", service.port, timeout=30) as smtp:
                    smtp.sendmail(SENDER, [f"registratie@{MAIL_DOMAIN}"], registration(bsn, number))
                answered = time.monotonic()  # the 250: the message is committed
                receipt = sink.wait_for(number + 1, kind=RECEIPT, timeout=30)[-1]
                latencies.append(receipt.at - answered)
        finally:
            running.close()
            service.stop()
    # Only a wake reacts within the hour; and well within the old poll of one or two seconds.
    assert statistics.median(latencies) < 0.5, latencies


def _listener_backends(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
                {"name": f"verwijsindex-wake-{os.getpid()}"},
            ).scalars()
        )


def test_the_listener_reconnects_when_postgresql_drops_its_connection(pg_engine: Engine) -> None:
    inbound, outbox = asyncio.Event(), asyncio.Event()
    running = InThread()
    running.start(listen(pg_engine, {Wake.INBOUND: [inbound], Wake.OUTBOX: [outbox]}, running.stop))
    try:
        wait_until(inbound.is_set, timeout=10, what="the listener to connect")  # wakes all
        [backend] = wait_until(lambda: _listener_backends(pg_engine), what="its backend")
        running.call(inbound.clear)
        with pg_engine.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        wait_until(
            lambda: _listener_backends(pg_engine) not in ([], [backend]),
            timeout=10,
            what="the listener to reconnect",
        )
        # After a reconnect it wakes everyone: what was announced meanwhile was not heard.
        wait_until(inbound.is_set, timeout=10, what="the wake after the reconnect")
        running.call(outbox.clear)
        with transaction(pg_engine) as session:
            announce(session, Wake.OUTBOX)
        wait_until(outbox.is_set, timeout=2, what="the NOTIFY on the new connection")
    finally:
        running.close()


def test_a_transaction_notifies_once_per_kind_and_sqlite_needs_no_statement(
    pg_engine: Engine, sqlite_engine: Engine
) -> None:
    """However many rows a transaction writes, one NOTIFY per kind of work (PostgreSQL), and
    none on SQLite, whose listeners see the commit itself."""
    for engine, expected in (
        (pg_engine, ["NOTIFY verwijsindex_outbox", "NOTIFY verwijsindex_inbound"]),
        (sqlite_engine, []),
    ):
        sent: list[str] = []

        def record(
            _conn: Any, _cursor: Any, statement: str, *_args: Any, sent: list[str] = sent
        ) -> None:
            if statement.startswith("NOTIFY"):
                sent.append(statement)

        event.listen(engine, "before_cursor_execute", record)
        try:
            for _ in range(2):  # the next transaction announces afresh
                sent.clear()
                with transaction(engine) as session:
                    for wake in (Wake.OUTBOX, Wake.OUTBOX, Wake.INBOUND, Wake.OUTBOX):
                        announce(session, wake)
                assert sent == expected
        finally:
            event.remove(engine, "before_cursor_execute", record)
