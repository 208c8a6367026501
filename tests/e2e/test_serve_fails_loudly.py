"""``serve`` fails loudly (issue 13.1): a role that cannot start stops the service with a clear
message and a non-zero exit code, and a role asked for by name that has nothing to run is
refused before anything starts."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from sqlmodel import Session, select

from core import outbox
from core.db import service_engine, transaction
from core.models import OutboxMessage, OutboxStatus
from core.settings import Settings
from tests.bot.conftest import serve_environment
from tests.conftest import TEST_SECRET


def _verwijsindex(tmp_path: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    environment = serve_environment(
        tmp_path,
        f"sqlite:///{tmp_path / 'verwijsindex.db'}",
        COLUMNS="500",
        VERWIJSINDEX_SMTP_HOST="127.0.0.1",
        **settings,
    )
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _serve(tmp_path: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    return _verwijsindex(tmp_path, "serve", "--workers", "0", *args, **settings)


def _a_notification_due(tmp_path: Path) -> Settings:
    """A database with one mail due: delivery would send it at once."""
    made = _verwijsindex(tmp_path, "db", "upgrade")
    assert made.returncode == 0, made.stdout + made.stderr
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite:///{tmp_path / 'verwijsindex.db'}",
        secret_key=TEST_SECRET,
    )
    engine = service_engine(settings)
    try:
        with transaction(engine) as session:
            outbox.enqueue(
                session,
                kind="match",
                channel="email",
                recipient="hulp@example.org",
                recipient_role="professional",
                reference="M-1",
                context={},
                idempotency_key="due-before-serve",
            )
    finally:
        engine.dispose()
    return settings


def _outbox(settings: Settings) -> list[tuple[str, str, int]]:
    engine = service_engine(settings)
    try:
        with Session(engine) as session:
            rows = session.exec(select(OutboxMessage)).all()
            return [(row.idempotency_key, row.status, row.attempts) for row in rows]
    finally:
        engine.dispose()


def _failure_lines(stderr: str) -> list[str]:
    """The log's records of a role's failure (JSON lines: stderr is no terminal)."""
    records = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [r["message"] for r in records if r.get("level") == "ERROR"]


def test_a_taken_smtp_port_stops_the_whole_service_with_exit_3(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        # Every role: the others (processing, delivery, scheduler) stop with the one that failed.
        result = _serve(tmp_path, VERWIJSINDEX_SMTP_PORT=port)
    output = result.stdout + result.stderr
    assert result.returncode == 3, output
    assert "Gestopt: de rol smtp faalde" in result.stderr
    assert "niets is verloren gegaan" not in output, "no all-clear after a failure"


def test_a_taken_port_stops_the_service_before_the_scheduler_or_delivery_did_anything(
    tmp_path: Path,
) -> None:
    settings = _a_notification_due(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = _serve(tmp_path, VERWIJSINDEX_SMTP_PORT=str(taken.getsockname()[1]))
    assert result.returncode == 3, result.stdout + result.stderr
    # Delivery never ran (the mail due is untouched, nothing was written to the maildir) and
    # neither did the scheduler (its sweep would have queued the day's logboek anchor).
    assert _outbox(settings) == [("due-before-serve", OutboxStatus.PENDING, 0)]
    assert not (tmp_path / "verzonden").exists() or not any((tmp_path / "verzonden").rglob("*.*"))
    # The failure is logged once, by its role's name.
    assert _failure_lines(result.stderr) == ["role smtp failed"], result.stderr


def test_a_role_named_without_its_settings_is_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    imap = _serve(tmp_path, "--only", "imap")
    assert imap.returncode == 2, imap.stdout + imap.stderr
    assert "VERWIJSINDEX_IMAP_URL" in imap.stderr
    slack = _serve(tmp_path, "--only", "slack", "--only", "processing")
    assert slack.returncode == 2, slack.stdout + slack.stderr
    assert "SLACK_BOT_TOKEN" in slack.stderr
    assert not (tmp_path / "verwijsindex.db").exists(), "refused before the database is touched"
