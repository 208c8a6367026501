"""Health and metrics (issue 13.2) against a running ``serve --workers 2``: ``/healthz``,
``/readyz`` and ``/metrics`` (Prometheus text, the children's counts included)."""

from __future__ import annotations

import contextlib
import json
import signal
import smtplib
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from core.db import create_db_engine
from tests.bsns import valid_bsns
from tests.mail_gateway.conftest import MAIL_DOMAIN, free_port, wait_until
from tests.mail_gateway.serve_process import SENDER, Service, all_processed, registration


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _delivered(engine: Engine) -> bool:
    from sqlmodel import Session, select

    from core.models import OutboxMessage, OutboxStatus

    with Session(engine) as session:
        rows = session.exec(select(OutboxMessage)).all()
    return bool(rows) and all(row.status == OutboxStatus.SENT for row in rows)


def test_healthz_readyz_and_metrics_of_a_running_service(
    tmp_path: Path, database_url: str
) -> None:
    http_port = free_port()
    service = Service(tmp_path, database_url, workers=2)
    service.env["VERWIJSINDEX_HTTP_PORT"] = str(http_port)
    engine = create_db_engine(database_url)
    bsn = valid_bsns(1, start_prefix=53_000_000)[0]
    try:
        service.start()
        service.wait_for_children(2)
        assert _get(http_port, "/healthz") == (200, '{"status": "ok"}')

        with smtplib.SMTP("127.0.0.1", service.port, timeout=30) as smtp:
            with contextlib.suppress(smtplib.SMTPRecipientsRefused):  # unknown: refused
                smtp.sendmail(SENDER, [f"onbekend@{MAIL_DOMAIN}"], b"Subject: x\r\n\r\nx\r\n")
            smtp.sendmail(SENDER, [f"registratie@{MAIL_DOMAIN}"], registration(bsn, 1))
        wait_until(lambda: all_processed(engine), timeout=60, what="the mail processed")
        wait_until(lambda: _delivered(engine), timeout=60, what="the receipt delivered")

        status, body = _get(http_port, "/readyz")
        ready = json.loads(body)
        assert status == 200, body
        assert ready["status"] == "ready"
        assert {"database", "migrations", "outbox", "scheduler"} <= ready["checks"].keys()
        assert all(check["ok"] for check in ready["checks"].values())

        status, text = _get(http_port, "/metrics")
        assert status == 200
        samples = _samples(text)
        assert samples[("verwijsindex_smtp_sessions_total", ())] >= 1
        refusal = ("verwijsindex_smtp_refusals_total", (("reason", "unknown-mailbox"),))
        assert samples[refusal] == 1
        # Counted in a worker process, shown by the parent's endpoint.
        latency = ("verwijsindex_delivery_latency_seconds_count", (("channel", "email"),))
        assert samples[latency] >= 1
        assert samples[("verwijsindex_inbound_backlog", ())] == 0
        assert samples[("verwijsindex_inbound_failed", ())] == 0
        sent = ("verwijsindex_outbox_messages", (("channel", "email"), ("status", "sent")))
        assert samples[sent] >= 1
        for name in (
            "verwijsindex_smtp_auth_failures_total",
            "verwijsindex_processing_failures_total",
            "verwijsindex_slack_rate_limit_pauses_total",
        ):
            assert (name, ()) in samples, name  # present from the start, for dashboards
        assert bsn not in text
        assert service.kill(signal.SIGTERM) == 0
    finally:
        service.stop()
        engine.dispose()


def test_a_taken_http_port_stops_the_service(tmp_path: Path, database_url: str) -> None:
    import socket

    service = Service(tmp_path, database_url, workers=0)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        service.env["VERWIJSINDEX_HTTP_PORT"] = str(taken.getsockname()[1])
        try:
            service.start("processing")  # no SMTP: nothing to wait for
            assert service.process is not None
            assert service.process.wait(60) == 3
        finally:
            service.stop()
    assert "de rol http faalde" in service.output()
