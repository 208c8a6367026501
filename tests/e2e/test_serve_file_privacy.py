"""Files are private (issue 9): a fresh ``verwijsindex serve`` creates its database ``0600`` under
a permissive umask, and warns at start about each existing private file others can read.

``serve --only smtp`` on a port that is taken starts (settings, covenant, database), runs the
start-up check and stops at once with its role's failure: the quickest real start."""

from __future__ import annotations

import json
import socket
import stat
import subprocess
import sys
from pathlib import Path

from tests.bot.conftest import serve_environment


def _serve(tmp_path: Path, *, umask: int = 0o022) -> str:
    environment = serve_environment(
        tmp_path,
        f"sqlite:///{tmp_path / 'verwijsindex.db'}",
        COLUMNS="500",  # rich folds log lines at the console width; keep paths whole
        VERWIJSINDEX_SMTP_HOST="127.0.0.1",
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        environment["VERWIJSINDEX_SMTP_PORT"] = str(taken.getsockname()[1])
        result = subprocess.run(
            [sys.executable, "-m", "cli", "serve", "--workers", "0", "--only", "smtp"],
            env=environment,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            umask=umask,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 3, output
    assert "de rol smtp faalde" in output
    return output


def test_a_fresh_start_creates_a_private_database_and_warns_about_nothing(
    tmp_path: Path,
) -> None:
    output = _serve(tmp_path, umask=0o002)
    assert stat.S_IMODE((tmp_path / "verwijsindex.db").stat().st_mode) == 0o600
    assert "readable by others" not in output


def test_serve_names_each_existing_private_file_others_can_read(tmp_path: Path) -> None:
    _serve(tmp_path)  # a database with its schema
    database = tmp_path / "verwijsindex.db"
    database.chmod(0o644)
    maildir = tmp_path / "verzonden"
    maildir.mkdir(mode=0o700)
    maildir.chmod(0o755)
    secret = tmp_path / ".verwijsindex-secret"  # an old generated key, still lying about
    secret.write_text("oude-sleutel\n")
    secret.chmod(0o600)

    output = _serve(tmp_path)

    warnings = [  # serve's stderr is no terminal here: its log lines are JSON (issue 13.3)
        json.loads(line)["message"]
        for line in output.splitlines()
        if line.startswith("{") and "readable by others" in line
    ]
    named = {
        message.split(" is readable", 1)[0]: message.split("(mode ", 1)[1][:4]
        for message in warnings
    }
    # SQLite gives the -wal and -shm files (open while serve runs) the database file's mode.
    companions = {f"{database}-wal", f"{database}-shm"}
    assert set(named) - companions == {str(database), str(maildir)}, output
    assert (named[str(database)], named[str(maildir)]) == ("0644", "0755")
