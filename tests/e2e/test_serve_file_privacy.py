"""Files are private (issue 9): a fresh ``verwijsindex serve`` creates its database ``0600`` under
a permissive umask, and warns at start about each existing private file others can read.

``serve --only slack`` without Slack's secrets starts (settings, covenant, database), runs the
start-up check and stops at once: the quickest real start."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.conftest import TEST_SECRET

REPOSITORY = Path(__file__).resolve().parents[2]


def _serve(tmp_path: Path, *, umask: int = 0o022) -> str:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLACK_", "VERWIJSINDEX_"))
    }
    environment.update(
        {
            "PYTHONPATH": str(REPOSITORY),
            "COLUMNS": "500",  # rich folds log lines at the console width; keep paths whole
            "VERWIJSINDEX_DATABASE_URL": f"sqlite:///{tmp_path / 'verwijsindex.db'}",
            "VERWIJSINDEX_SECRET_KEY": TEST_SECRET,
            "VERWIJSINDEX_RELAY_URL": f"maildir:{tmp_path / 'verzonden'}",
        }
    )
    result = subprocess.run(
        [sys.executable, "-m", "cli", "serve", "--only", "slack"],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        umask=umask,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Slack staat uit" in output
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

    named = {
        line.split("WARNING", 1)[1].split()[0]: line.split("(mode ", 1)[1][:4]
        for line in output.splitlines()
        if "readable by others" in line
    }
    # SQLite gives the -wal and -shm files (open while serve runs) the database file's mode.
    companions = {f"{database}-wal", f"{database}-shm"}
    assert set(named) - companions == {str(database), str(maildir)}, output
    assert (named[str(database)], named[str(maildir)]) == ("0644", "0755")
