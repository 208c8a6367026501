"""A real Dovecot on loopback for the IMAP tests (STYLE 12): its own config file, a free port, a
throwaway maildir, one user with a plaintext password — started per test, stopped after.

Dovecot is Debian's ``dovecot-imapd`` (``.ci/run`` installs it). Without it the IMAP tests are
skipped on a developer's machine and *fail* under CI, so a missing package is never a green run.

As an ordinary user Dovecot runs in its non-root mode: every process as that user. As root (CI)
it refuses to run its login process as root or to give mail access to UID 0, so it then uses
the package's own unprivileged users (``dovenull`` for logins, ``dovecot`` inside) and
``nobody`` owns the mail files.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import quote

import pytest
from imapclient import IMAPClient

USER = "verwijsindex"
PASSWORD = "imap-test-wachtwoord"
BINARY_CANDIDATES = ("dovecot", "/usr/sbin/dovecot")


def dovecot_binary() -> str | None:
    for candidate in BINARY_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def require_dovecot() -> str:
    binary = dovecot_binary()
    if binary is None:
        reason = "Dovecot is not installed (apt-get install dovecot-imapd)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; it is required in CI")
        pytest.skip(reason)
    return binary


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Dovecot:
    """One Dovecot instance; ``stop``/``kill`` and ``start`` again keep its port and mail."""

    def __init__(self, binary: str, root: Path, port: int):
        self.binary = binary
        self.root = root
        self.port = port
        self.host = "127.0.0.1"
        self.user = USER
        self.password = PASSWORD
        self.config_path = root / "dovecot.conf"
        self.log_path = root / "dovecot.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._write_config()

    # -- configuration -------------------------------------------------------------------------

    def _write_config(self) -> None:
        mail = self.root / "mail"
        mail.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            login_user, internal_user, internal_group = "dovenull", "dovecot", "dovecot"
            mail_owner = pwd.getpwnam("nobody")
            mail_uid, mail_gid = mail_owner.pw_uid, mail_owner.pw_gid
            os.chown(mail, mail_uid, mail_gid)
            self.root.chmod(0o755)  # the unprivileged processes must reach their files
        else:
            me = pwd.getpwuid(os.getuid())
            login_user = internal_user = me.pw_name
            internal_group = grp.getgrgid(os.getgid()).gr_name
            mail_uid, mail_gid = os.getuid(), os.getgid()
        users = self.root / "users"
        users.write_text(
            f"{self.user}:{{PLAIN}}{self.password}:{mail_uid}:{mail_gid}::{mail / self.user}::\n"
        )
        users.chmod(0o644)
        self.config_path.write_text(
            f"""\
protocols = imap
listen = 127.0.0.1
instance_name = verwijsindex-test-{self.port}
base_dir = {self.root / "run"}
state_dir = {self.root / "state"}
log_path = {self.log_path}
info_log_path = {self.log_path}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
mail_location = maildir:{mail}/%u
# IDLE notices new mail through inotify; this is the fallback check.
mailbox_idle_check_interval = 1 secs
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {users}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {users}
}}
# No chroot: only root may chroot, and a test server has nothing to hide its processes from.
service anvil {{
  chroot =
  # No growing delay after failed logins (tests try a wrong password on purpose).
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""
        )

    # -- process -------------------------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> Dovecot:
        self._wait_port_free(timeout)
        with open(self.log_path, "ab") as log:
            # A session of its own, so kill() can take the master and all its children at once.
            self.process = subprocess.Popen(
                [self.binary, "-F", "-c", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Dovecot exited at start:\n{self.log_tail()}")
            if self._greets():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"Dovecot did not answer on port {self.port}:\n{self.log_tail()}")

    def stop(self, timeout: float = 15.0) -> None:
        """A clean shutdown: Dovecot says BYE to its clients and closes."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill_group(process)
        # Dovecot 2.3 lets an imap process that is serving a client outlive its master; a
        # server that went away must take its connections with it.
        self._signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self._group_alive(process) and time.monotonic() < deadline:
            time.sleep(0.05)
        self._signal_group(process, signal.SIGKILL)
        self._wait_port_free(timeout)

    def kill(self) -> None:
        """SIGKILL the master and every child: connections drop without a word."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            self._kill_group(process)
        # A process killed in the middle of a MOVE leaves its maildir dotlock behind. Dovecot
        # takes over a lock whose holder is gone, but a killed child stays a zombie until PID 1
        # reaps it, and until then the new server waits (minutes) for a "live" holder. The
        # whole group is dead, so every lock is stale.
        for lock in (self.root / "mail").rglob("*.lock"):
            with contextlib.suppress(OSError):
                lock.unlink()

    def freeze(self) -> None:
        """SIGSTOP every process: connections stay open and nothing answers (a hung server)."""
        assert self.process is not None
        self._signal_group(self.process, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self._signal_group(self.process, signal.SIGCONT)

    def restart(self) -> Dovecot:
        self.stop()
        return self.start()

    @classmethod
    def _kill_group(cls, process: subprocess.Popen[bytes]) -> None:
        cls._signal_group(process, signal.SIGKILL)
        process.wait(15)
        deadline = time.monotonic() + 15
        while cls._group_alive(process) and time.monotonic() < deadline:
            time.sleep(0.05)

    @staticmethod
    def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
        # The group is the session Popen made for this Dovecot: its master and its children.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signum)

    @staticmethod
    def _group_alive(process: subprocess.Popen[bytes]) -> bool:
        """Any live process left in the group? (Zombies waiting for PID 1 do not count.)"""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rpartition(")")[2].split()  # state, ppid, pgrp, ...
            if len(fields) > 2 and fields[2] == str(process.pid) and fields[0] not in "ZX":
                return True
        return False

    def _greets(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as probe:
                return probe.recv(64).startswith(b"* OK")
        except OSError:
            return False

    def _wait_port_free(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((self.host, self.port))
                    return
                except OSError:
                    time.sleep(0.05)
        raise RuntimeError(f"port {self.port} is still taken")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- as a mail client ----------------------------------------------------------------------

    def imap_url(self, folder: str = "INBOX", **query: str) -> str:
        url = f"imap://{quote(self.user)}:{quote(self.password)}@{self.host}:{self.port}/{folder}"
        if query:
            url += "?" + "&".join(f"{key}={value}" for key, value in query.items())
        return url

    @contextlib.contextmanager
    def client(self) -> Iterator[IMAPClient]:
        connection = IMAPClient(self.host, self.port, ssl=False, timeout=10)
        try:
            connection.login(self.user, self.password)
            yield connection
        finally:
            with contextlib.suppress(Exception):
                connection.logout()

    def append(self, raw: bytes, folder: str = "INBOX", flags: Sequence[bytes] = ()) -> int:
        """Put a message in ``folder`` (created when missing); its UID."""
        with self.client() as imap:
            if not imap.folder_exists(folder):
                imap.create_folder(folder)
            answer = imap.append(folder, raw, flags=tuple(flags))
        found = re.search(rb"APPENDUID \d+ (\d+)", answer)
        assert found, answer
        return int(found.group(1))

    def messages(self, folder: str = "INBOX") -> dict[int, tuple[tuple[bytes, ...], bytes]]:
        """UID → (flags, raw) without touching \\Seen; empty for a missing folder."""
        with self.client() as imap:
            if not imap.folder_exists(folder):
                return {}
            imap.select_folder(folder, readonly=True)
            uids = imap.search(["ALL"])
            if not uids:
                return {}
            fetched = imap.fetch(uids, ["FLAGS", "BODY.PEEK[]"])
        return {
            uid: (tuple(data[b"FLAGS"]), bytes(data[b"BODY[]"])) for uid, data in fetched.items()
        }

    def uidvalidity(self, folder: str = "INBOX") -> int:
        with self.client() as imap:
            return int(imap.folder_status(folder, [b"UIDVALIDITY"])[b"UIDVALIDITY"])

    def recreate_folder(self, folder: str) -> None:
        """Delete and create ``folder``: new UIDVALIDITY, UIDs from 1 again."""
        with self.client() as imap:
            imap.delete_folder(folder)
            imap.create_folder(folder)


@contextlib.contextmanager
def running_dovecot() -> Iterator[Dovecot]:
    binary = require_dovecot()
    # Not pytest's tmp_path: Dovecot's sockets live under base_dir, and a UNIX socket path has
    # to stay under 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="dovecot-"))
    server = Dovecot(binary, root, free_port())
    try:
        server.start()
        yield server
    finally:
        server.kill()  # no need to be polite to a throwaway server (and a second faster)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    with running_dovecot() as server:
        yield server
