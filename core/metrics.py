"""What ``/metrics`` tells Prometheus (issue 13.2), and the one place events are counted.

Two kinds of figures:

* **Counted where they happen** (this process and, under ``serve --workers``, its children):
  SMTP sessions, refusals by reason, AUTH failures, processing failures, delivery latency, Slack
  429 pauses. With worker processes they are shared through prometheus-client's multiprocess
  mode: the parent picks a fresh folder (:func:`share_with_child_processes`) before any metric
  exists, the children inherit it through the environment, and a scrape adds them up.
* **Read from the database at scrape time** (:class:`QueueCollector`): the inbound backlog and
  failures, and the outbox by channel and status. These hold across every process and instance
  sharing the database, so any instance's ``/metrics`` shows them.

prometheus-client is imported on first use, never at import time: multiprocess mode is decided
by an environment variable when the library is first imported.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import col

from core.db import reading
from core.models import Channel, InboundMessage, InboundStatus, OutboxMessage, OutboxStatus

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


def share_with_child_processes() -> Path:
    """A fresh folder for the counts of this process and its children (``serve --workers``);
    call before the first metric is counted and before any child starts."""
    folder = Path(tempfile.mkdtemp(prefix="verwijsindex-metrics-"))
    os.environ[MULTIPROCESS_VARIABLE] = str(folder)
    return folder


def stop_sharing(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


class _Metrics:
    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        self.smtp_sessions = Counter(
            "verwijsindex_smtp_sessions", "SMTP connections opened (refused ones included)"
        )
        self.smtp_refusals = Counter(
            "verwijsindex_smtp_refusals",
            "SMTP commands answered with a refusal, by reason",
            ["reason"],
        )
        self.smtp_auth_failures = Counter(
            "verwijsindex_smtp_auth_failures", "SMTP AUTH attempts with a wrong login or password"
        )
        self.processing_failures = Counter(
            "verwijsindex_processing_failures",
            "Attempts to process stored messages that failed (each is tried again)",
        )
        self.delivery_latency = Histogram(
            "verwijsindex_delivery_latency_seconds",
            "From a notification's creation to its delivery, by channel",
            ["channel"],
            buckets=_LATENCY_BUCKETS,
        )
        self.slack_rate_limited = Counter(
            "verwijsindex_slack_rate_limit_pauses",
            "Times Slack answered 429 and delivery paused for its Retry-After",
        )


@cache
def _metrics() -> _Metrics:
    return _Metrics()


# -- counting (one function per event, called where it happens) -------------------------------


def smtp_session_opened() -> None:
    _metrics().smtp_sessions.inc()


def smtp_refused(reason: str) -> None:
    """``reason``: a short fixed word (``unknown-mailbox``, ``sender-not-allowed``, ...), never
    an address."""
    _metrics().smtp_refusals.labels(reason=reason).inc()


def smtp_auth_failed() -> None:
    _metrics().smtp_auth_failures.inc()


def processing_failed(messages: int = 1) -> None:
    _metrics().processing_failures.inc(messages)


def delivered(channel: str, seconds: float) -> None:
    _metrics().delivery_latency.labels(channel=channel).observe(max(0.0, seconds))


def slack_rate_limited() -> None:
    _metrics().slack_rate_limited.inc()


# -- the scrape ---------------------------------------------------------------------------------


class QueueCollector:
    """The queues, as the database has them now."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        with reading(self.engine).connect() as connection:
            status = col(InboundMessage.status)
            inbound: dict[str, int] = {
                row[0]: row[1]
                for row in connection.execute(select(status, func.count()).group_by(status))
            }
            channel, state = col(OutboxMessage.channel), col(OutboxMessage.status)
            outbox: dict[tuple[str, str], int] = {
                (str(row[0]), str(row[1])): row[2]
                for row in connection.execute(
                    select(channel, state, func.count()).group_by(channel, state)
                )
            }
        backlog = GaugeMetricFamily(
            "verwijsindex_inbound_backlog", "Stored messages not yet processed"
        )
        backlog.add_metric([], inbound.get(InboundStatus.RECEIVED.value, 0))
        yield backlog
        failed = GaugeMetricFamily(
            "verwijsindex_inbound_failed", "Stored messages that could not be processed"
        )
        failed.add_metric([], inbound.get(InboundStatus.FAILED.value, 0))
        yield failed
        messages = GaugeMetricFamily(
            "verwijsindex_outbox_messages",
            "Notifications by channel and status (pending, sending, sent, failed: dead letters)",
            labels=["channel", "status"],
        )
        # Every series, 0 included: an alert on failed > 0 or a rate() needs the series to
        # exist before its first notification (Prometheus: "avoid missing metrics").
        every = {(c.value, s.value) for c in Channel for s in OutboxStatus}
        for channel_name, status_name in sorted(every | outbox.keys()):
            messages.add_metric(
                [channel_name, status_name], outbox.get((channel_name, status_name), 0)
            )
        yield messages


def exposition(engine: Engine) -> bytes:
    """The text ``/metrics`` answers: this process's counts (and its children's), then the
    queues."""
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

    _metrics()  # every metric exists, counted or not, so a dashboard finds it from the start
    registry: CollectorRegistry = CollectorRegistry()
    if os.environ.get(MULTIPROCESS_VARIABLE):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
        registry.register(QueueCollector(engine))
        return generate_latest(registry)
    return generate_latest(REGISTRY) + generate_latest(_queues_only(engine))


def _queues_only(engine: Engine) -> CollectorRegistry:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    registry.register(QueueCollector(engine))
    return registry
