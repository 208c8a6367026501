"""``serve`` fails loudly (issue 13.1): a role that cannot start stops the service with a clear
message and a non-zero exit code, and a role asked for by name that has nothing to run is
refused before anything starts."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from tests.bot.conftest import serve_environment


def _serve(tmp_path: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    environment = serve_environment(
        tmp_path,
        f"sqlite:///{tmp_path / 'verwijsindex.db'}",
        COLUMNS="500",
        VERWIJSINDEX_SMTP_HOST="127.0.0.1",
        **settings,
    )
    return subprocess.run(
        [sys.executable, "-m", "cli", "serve", "--workers", "0", *args],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


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
