"""Fixtures for the mail gateway: the real service roles in a background event loop on
loopback, driven by ``smtplib`` from the (synchronous) tests."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from core.config import CoreConfig
from core.covenant.sync import sync_covenant
from core.db import transaction
from core.settings import Settings
from mail_gateway.context import Gateway, build_gateway
from tests.conftest import TEST_SECRET
from tests.core.conftest import config  # noqa: F401  (the session-wide covenant fixture)
from tests.mail_gateway.relay_sink import RelaySink

MAIL_DOMAIN = "verwijsindex.localhost"

# Something else ``serve`` runs in the gateway's event loop (the Slack endpoint), until stop.
Beside = Callable[[Gateway, asyncio.Event], Coroutine[Any, Any, None]]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def gateway_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "secret_key": TEST_SECRET,
        "mail_domain": MAIL_DOMAIN,
        "smtp_host": "127.0.0.1",
        "smtp_port": free_port(),
        "relay_url": f"maildir:{tmp_path / 'verzonden'}",
        "secret_file": tmp_path / "unused-secret",
    }
    values.update(overrides)
    return Settings(**values)


class RunningGateway:
    """The gateway's roles (and what runs ``also`` beside them) in their own thread and event
    loop, as ``serve`` runs them."""

    def __init__(self, gateway: Gateway, roles: list[str], also: Sequence[Beside] = ()):
        self.gateway = gateway
        self.roles = roles
        self.also = also
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="gateway", daemon=True)
        self._started = threading.Event()
        self.failure: BaseException | None = None

    @property
    def smtp_port(self) -> int:
        return self.gateway.settings.smtp_port

    def _run(self) -> None:
        from mail_gateway.service import run_roles

        asyncio.set_event_loop(self._loop)

        async def main() -> None:
            self._stop = asyncio.Event()
            tasks = [run_roles(self.gateway, self.roles, self._stop)]
            tasks.extend(beside(self.gateway, self._stop) for beside in self.also)
            self._started.set()
            await asyncio.gather(*tasks)

        try:
            self._loop.run_until_complete(main())
        except BaseException as exc:  # surfaced by stop()
            self.failure = exc
        finally:
            self._started.set()

    def start(self) -> RunningGateway:
        self._thread.start()
        self._started.wait(10)
        if "smtp" in self.roles:
            wait_for_port(self.smtp_port)
        return self

    def stop(self) -> None:
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        assert not self._thread.is_alive(), "the gateway did not stop within 30 s"
        if self.failure is not None:
            raise self.failure

    def wake(self) -> None:
        self._loop.call_soon_threadsafe(self.gateway.inbound_waiting.set)
        self._loop.call_soon_threadsafe(self.gateway.outbox_waiting.set)


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


def wait_until(condition: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or condition}")


@pytest.fixture
def sink() -> Iterator[RelaySink]:
    """An aiosmtpd relay sink on loopback: the outbound relay the gateway delivers to."""
    relay = RelaySink().start()
    yield relay
    relay.stop()


@pytest.fixture
def synced_engine(engine: Engine, config: CoreConfig) -> Engine:  # noqa: F811
    with transaction(engine) as session:
        sync_covenant(session, config.covenant)
    return engine


@pytest.fixture
def make_gateway(
    tmp_path: Path,
    database_url: str,
    synced_engine: Engine,
    config: CoreConfig,  # noqa: F811
) -> Callable[..., Gateway]:
    def make(**overrides: Any) -> Gateway:
        settings = gateway_settings(tmp_path, database_url, **overrides)
        return build_gateway(settings, synced_engine, config)

    return make


@pytest.fixture
def run_gateway() -> Iterator[Callable[..., RunningGateway]]:
    running: list[RunningGateway] = []

    def start(
        gateway: Gateway, roles: list[str] | None = None, also: Sequence[Beside] = ()
    ) -> RunningGateway:
        instance = RunningGateway(gateway, roles or ["smtp", "processing", "delivery"], also)
        running.append(instance.start())
        return instance

    yield start
    for instance in running:
        instance.stop()
