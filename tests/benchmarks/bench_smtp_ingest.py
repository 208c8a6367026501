"""Benchmark: registrations by SMTP, one per mail, through ``verwijsindex serve`` (issue 10).

    python tests/benchmarks/bench_smtp_ingest.py [--messages 2000] [--connections 4]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test] [--workers N]
        [--py-spy FILE]

Every server runs in a process of its own, and the same client (``--connections`` persistent
``smtplib`` connections on threads in this process, each sending mails from one shared list
until it is empty; one registration per mail from ``koppeling@ggd-groningen.example`` to
``registratie@``, valid BSNs from ``tests/bsns.py``) is pointed in turn at:

a. a bare aiosmtpd sink (a handler that answers ``250`` and keeps nothing): the most an SMTP
   server in Python takes from this client on this machine (the median of six runs, three
   before the gateway's and three after it);
b. ``serve --only smtp`` on a fresh database, with flow control off: the gateway's listener
   alone (sender check, authentication, the message committed before ``250``, nothing
   processed): what accepting costs, the ceiling of c/a (``listener_ratio``);
c. ``serve`` with every role (``--workers N`` passed on only when given) on a fresh database,
   delivering to a recording aiosmtpd relay sink (a process of its own too). Its rate counts a
   message once it was accepted, processed, and its receipt written to the outbox: the clock runs
   from the first send until every inbound row is processed and every receipt row exists
   (``gateway_msgs_per_s``; ``ratio`` is that over the bare sink's rate). A short warm-up (its
   receipts awaited) comes first, so imports and first connections are not counted;
e. an echo gateway (aiosmtpd answering 250 and handing each Message-ID to a second process that
   sends one small answer over one ``smtplib`` connection to a relay sink): nothing parsed,
   stored or checked, so the most any gateway on these libraries reaches with this client and
   relay on this machine (``echo_ratio``); gateway_msgs_per_s / echo_msgs_per_s is the share of
   that the real gateway reaches;
d. the latency from sending a registration (just before its ``MAIL FROM``) to *its* receipt
   (``ontvangstbevestiging``, matched by ``In-Reply-To``) arriving at the relay sink: p50 and p95
   in the burst (``p50_ms``, ``p95_ms``), and for ``--paced`` more mails at a steady ``--rate``.

Each run also reports the CPU time per mail (user + system, from ``/proc``) of every process
tree in it (``cpu_ms_per_mail``: serve with its workers, the relay sink, the client), which a
loaded machine changes much less than the rates.

The last line printed is one JSON object with those figures and ``database``. ``--database-url``
names a PostgreSQL database; each run gets a schema of its own in it, dropped afterwards
(default: a fresh SQLite file per run). ``--py-spy FILE`` records the ``serve`` process (and its
children) during the burst with ``py-spy record --gil -r 200`` into FILE (raw collapsed stacks).
Not collected by pytest (the name does not start with ``test_``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.bsns import valid_bsns  # noqa: E402 (after the path is set)

SECRET = "benchmark-secret-key-that-is-long-enough-0123456789"
MAIL_DOMAIN = "verwijsindex.localhost"
SENDER = "koppeling@ggd-groningen.example"  # allowed: the GGD's @ggd-groningen.example
RECIPIENT = f"registratie@{MAIL_DOMAIN}"
MUNICIPALITIES = ("Groningen", "Westerkwartier", "Midden-Groningen", "Het Hogeland")
RATIO_AIM = 0.12
P95_AIM_MS = 500.0
WARM_UP = 20


# --- the mails ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mail:
    message_id: str
    raw: bytes


def registrations(count: int, *, prefix: str = "bench", first_bsn: int = 30_000_000) -> list[Mail]:
    mails = []
    for number, bsn in enumerate(valid_bsns(count, start_prefix=first_bsn)):
        message = EmailMessage()
        message["From"] = f"GGD Groningen koppeling <{SENDER}>"
        message["To"] = RECIPIENT
        message["Subject"] = f"Aanmelding {number}"
        message["Message-ID"] = f"<{prefix}-{number:07d}@ggd-groningen.example>"
        message.set_content(
            f"BSN: {bsn}\n"
            f"Geboortedatum: {1 + number % 28:02d}-{1 + number % 12:02d}-{2006 + number % 17}\n"
            f"Gemeente: {MUNICIPALITIES[number % len(MUNICIPALITIES)]}\n"
            f"Kenmerk: GGD-{prefix}-{number:07d}\n"
        )
        mails.append(Mail(str(message["Message-ID"]), message.as_bytes(policy=SMTP)))
    return mails


# --- the client (the same for every server) ----------------------------------------------------


@dataclass
class Sent:
    seconds: float  # first send to last 250
    started: float  # time.monotonic() of the first send
    sent_at: dict[str, float]  # Message-ID -> time.monotonic() just before its MAIL FROM


def send_all(
    ports: Sequence[int], mails: Sequence[Mail], connections: int, *, rate: float | None = None
) -> Sent:
    """Send ``mails`` over ``connections`` persistent connections (spread over ``ports`` in
    turn), each taking the next mail when it is done with one (with ``rate``: not before its
    turn, ``rate`` mails a second). The connections are open before the clock starts."""
    lock = threading.Lock()
    pending = iter(enumerate(mails))
    sent_at: dict[str, float] = {}
    failures: list[BaseException] = []
    clock: list[float] = []  # the start, set when every connection is ready
    ready = threading.Barrier(connections + 1, action=lambda: clock.append(time.monotonic()))

    def client(port: int) -> None:
        try:
            smtp = smtplib.SMTP("127.0.0.1", port, local_hostname="bench.example", timeout=120)
            smtp.ehlo()
        except BaseException as exc:
            failures.append(exc)
            ready.abort()
            raise
        ready.wait()
        try:
            while True:
                with lock:
                    number, mail = next(pending, (0, None))
                if mail is None:
                    break
                if rate:
                    time.sleep(max(0.0, clock[0] + number / rate - time.monotonic()))
                sent_at[mail.message_id] = time.monotonic()
                refused = smtp.sendmail(SENDER, [RECIPIENT], mail.raw)
                if refused:
                    raise AssertionError(f"refused: {refused}")
            smtp.quit()
        except BaseException as exc:
            failures.append(exc)
            raise

    threads = [
        threading.Thread(target=client, args=(ports[n % len(ports)],), name=f"client-{n}")
        for n in range(connections)
    ]
    for thread in threads:
        thread.start()
    ready.wait()
    started = clock[0]
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - started
    if failures:
        raise SystemExit(f"the client failed: {failures[0]!r}")
    return Sent(seconds, started, sent_at)


# --- the sinks, each a process of its own ------------------------------------------------------


_IN_REPLY_TO = re.compile(rb"^In-Reply-To:[ \t]*(.*?)\r?$", re.I | re.M)
_RECEIPT = re.compile(rb"^X-Verwijsindex-Type:[ \t]*ontvangstbevestiging\r?$", re.I | re.M)


class BareHandler:
    """Answers 250 to everything and keeps nothing."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


class RecordingHandler:
    """The relay: answers 250 and writes, for each receipt, its arrival time
    (``time.monotonic()``, the same clock in every process) and the Message-ID it answers."""

    def __init__(self, record: Path) -> None:
        self.out = record.open("a", buffering=1)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        at = time.monotonic()
        head = (envelope.original_content or b"").split(b"\r\n\r\n", 1)[0]
        answered = _IN_REPLY_TO.search(head)
        if answered and _RECEIPT.search(head):
            self.out.write(f"{at:.6f}\t{answered.group(1).strip().decode()}\n")
        return "250 OK"


def serve_until_sigterm(handler: Any, port: int, name: str) -> None:
    """An aiosmtpd server for ``handler`` on ``port`` until SIGTERM; "ready" once it listens."""
    from aiosmtpd.controller import Controller

    # A fixed banner name: without one aiosmtpd asks the resolver on every connection.
    controller = Controller(handler, hostname="127.0.0.1", port=port, server_hostname=name)
    controller.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    print("ready", flush=True)
    stopped.wait()
    controller.stop()


def run_sink(port: int, record: Path | None) -> None:
    """The sink process: serve until SIGTERM."""
    serve_until_sigterm(RecordingHandler(record) if record else BareHandler(), port, "sink")


class EchoHandler:
    """The floor of any gateway on these libraries: answers 250, and hands each mail's
    Message-ID to a sender process that answers it with one receipt-like mail to the relay over
    one persistent ``smtplib`` connection. Nothing is parsed, stored or checked."""

    def __init__(self, answers: Any) -> None:
        self.answers = answers

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        head = (envelope.original_content or b"").split(b"\r\n\r\n", 1)[0]
        found = re.search(rb"^Message-ID:[ \t]*(.*?)\r?$", head, re.I | re.M)
        self.answers.put(found.group(1).strip() if found else b"")
        return "250 OK"


def run_echo_sender(answers: Any, relay_port: int) -> None:
    relay = smtplib.SMTP("127.0.0.1", relay_port, local_hostname="echo.example")
    while (message_id := answers.get()) is not None:
        relay.sendmail(
            f"noreply@{MAIL_DOMAIN}",
            [SENDER],
            b"From: noreply@"
            + MAIL_DOMAIN.encode()
            + b"\r\nTo: "
            + SENDER.encode()
            + b"\r\nSubject: Ontvangen\r\nIn-Reply-To: "
            + message_id
            + b"\r\nX-Verwijsindex-Type: ontvangstbevestiging\r\n\r\nOntvangen.\r\n",
        )
    relay.quit()


def run_echo(port: int, relay_port: int) -> None:
    """The echo process (listener) and its sender process: serve until SIGTERM."""
    import multiprocessing

    answers: Any = multiprocessing.Queue()
    sender = multiprocessing.Process(target=run_echo_sender, args=(answers, relay_port))
    sender.start()
    serve_until_sigterm(EchoHandler(answers), port, "echo")
    answers.put(None)
    sender.join(30)


@dataclass(frozen=True)
class Sink:
    port: int
    pid: int


@contextlib.contextmanager
def sink_process(record: Path | None = None, *, echo_to: int | None = None) -> Iterator[Sink]:
    """A bare sink, a recording relay sink (``record``), or an echo gateway (``echo_to``: the
    relay's port)."""
    port = free_port()
    command = [sys.executable, __file__, "--serve-sink", str(port)]
    if record is not None:
        command += ["--record", str(record)]
    if echo_to is not None:
        command += ["--echo-to", str(echo_to)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        if process.stdout.readline().strip() != b"ready":
            raise SystemExit("the sink did not start")
        yield Sink(port, process.pid)
    finally:
        process.terminate()
        process.wait(30)


def measure_bare_sink(mails: Sequence[Mail], connections: int, runs: int = 3) -> list[float]:
    """The seconds of ``runs`` runs: one takes a second or two, and a single run is noisy."""
    with sink_process() as sink:
        return [send_all([sink.port], mails, connections).seconds for _ in range(runs)]


def measure_echo_floor(
    workdir: Path, mails: Sequence[Mail], connections: int
) -> tuple[float, dict[str, float]]:
    """The echo gateway's rate (first send until every answer reached the relay) and CPU."""
    workdir.mkdir(parents=True, exist_ok=True)
    record = workdir / "echo-relay.tsv"
    with sink_process(record) as relay, sink_process(echo_to=relay.port) as echo:
        meter = CpuMeter({"echo": echo.pid, "relay": relay.pid})
        meter.start()
        sent = send_all([echo.port], mails, connections)
        arrived = wait_receipts(record, mails, timeout=300)
        meter.stop()
    return max(arrived.values()) - sent.started, meter.spent or {}


def read_receipts(record: Path) -> dict[str, float]:
    """Arrival time at the relay of each receipt so far, by the Message-ID it answers."""
    found = {}
    with contextlib.suppress(FileNotFoundError):
        for line in record.read_text().splitlines():
            at, _, answered = line.partition("\t")
            if answered:
                found[answered] = float(at)
    return found


def wait_receipts(record: Path, mails: Sequence[Mail], timeout: float) -> dict[str, float]:
    """Arrival time at the relay of the receipt of each of ``mails``."""
    wanted = {mail.message_id for mail in mails}
    deadline = time.monotonic() + timeout
    while True:
        found = read_receipts(record)
        if wanted <= found.keys():
            return {message_id: found[message_id] for message_id in wanted}
        if time.monotonic() > deadline:
            missing = sorted(wanted - found.keys())
            raise SystemExit(f"{len(missing)} receipts never arrived, e.g. for {missing[0]}")
        time.sleep(0.05)


# --- the databases -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def fresh_database(database_url: str | None, workdir: Path) -> Iterator[str]:
    """An empty database: a new SQLite file in ``workdir``, or a schema of its own in the
    PostgreSQL database ``database_url`` (dropped afterwards), as the tests make one."""
    if not database_url:
        yield f"sqlite:///{workdir / 'verwijsindex.db'}"
        return
    from sqlalchemy import create_engine, make_url, text

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(database_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(database_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def database_kind(database_url: str | None) -> str:
    return "postgresql" if database_url else "sqlite"


def count_done(database_url: str) -> tuple[int, int]:
    """(inbound rows processed, receipts in the outbox)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            row = connection.execute(
                text(
                    "SELECT (SELECT count(*) FROM inboundmessage WHERE status != 'received'), "
                    "(SELECT count(*) FROM outboxmessage WHERE kind = 'ontvangstbevestiging')"
                )
            ).one()
    finally:
        engine.dispose()
    return int(row[0]), int(row[1])


def wait_processed(database_url: str, count: int, timeout: float) -> float:
    """Poll until ``count`` inbound rows are processed and ``count`` receipts enqueued; returns
    time.monotonic() then."""
    deadline = time.monotonic() + timeout
    while True:
        done, receipts = count_done(database_url)
        if done >= count and receipts >= count:
            return time.monotonic()
        if time.monotonic() > deadline:
            raise SystemExit(
                f"after {timeout:.0f} s only {done} of {count} messages processed, "
                f"{receipts} receipts enqueued"
            )
        time.sleep(0.02)


# --- serve -------------------------------------------------------------------------------------


class Serve:
    """One ``verwijsindex serve`` process, configured through the environment as in production."""

    def __init__(
        self,
        workdir: Path,
        database_url: str,
        *,
        relay_url: str,
        roles: Sequence[str] = (),
        workers: int | None = None,
        environment: dict[str, str] | None = None,
    ):
        self.workdir = workdir
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "cli", "serve"]
        command += [argument for role in roles for argument in ("--only", role)]
        if workers is not None:
            command += ["--workers", str(workers)]
        env = {
            **os.environ,
            # The project first; a PYTHONPATH of the caller's after it (a profiling hook).
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "VERWIJSINDEX_DATABASE_URL": database_url,
            "VERWIJSINDEX_SECRET_KEY": SECRET,
            "VERWIJSINDEX_MAIL_DOMAIN": MAIL_DOMAIN,
            "VERWIJSINDEX_SMTP_HOST": "127.0.0.1",
            "VERWIJSINDEX_SMTP_PORT": str(self.port),
            "VERWIJSINDEX_RELAY_URL": relay_url,
            "VERWIJSINDEX_HTTP_PORT": "0",  # several instances side by side (bench_scaling)
            **(environment or {}),
        }
        self.log = (workdir / "serve.log").open("ab")
        self.process = subprocess.Popen(
            command, cwd=workdir, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        self._wait_for_port(timeout=120)

    def _wait_for_port(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"serve exited; see {self.workdir / 'serve.log'}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return
            time.sleep(0.05)
        raise SystemExit(f"serve did not listen within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.log.close()


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) used so far by ``pid`` and its living descendants, from
    ``/proc`` (None where there is none): what a mail costs, whatever else loads the machine."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    stats: dict[int, tuple[int, float]] = {}  # pid -> (parent, seconds)
    for entry in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = entry.read_text().rpartition(")")[2].split()
            stats[int(entry.parent.name)] = (
                int(fields[1]),
                (int(fields[11]) + int(fields[12])) / ticks,
            )
    if pid not in stats:
        return None
    total, family = 0.0, {pid}
    for _ in range(8):  # serve -> workers -> their helpers: a few generations at most
        family |= {child for child, (parent, _) in stats.items() if parent in family}
    for member in family:
        total += stats[member][1]
    return total


@dataclass
class CpuMeter:
    """CPU seconds spent by each named process tree between ``start`` and ``stop``."""

    pids: dict[str, int]
    spent: dict[str, float] | None = None

    def start(self) -> None:
        self._before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self._client = time.process_time()

    def stop(self) -> None:
        after = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        spent = {
            name: after[name] - before  # type: ignore[operator]
            for name, before in self._before.items()
            if before is not None and after[name] is not None
        }
        spent["client"] = time.process_time() - self._client
        self.spent = spent


@contextlib.contextmanager
def py_spy(pid: int, out: Path | None) -> Iterator[None]:
    """``py-spy record`` of ``pid`` and its children while the block runs (when ``out``)."""
    if out is None:
        yield
        return
    command = ["py-spy", "record", "--gil", "-r", "200", "--subprocesses", "--format", "raw"]
    recorder = subprocess.Popen([*command, "-o", str(out), "--pid", str(pid)])
    time.sleep(1.0)  # py-spy attaches
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)
        recorder.wait(60)


# --- b. the listener alone, c. and d. the whole gateway ----------------------------------------


def measure_listener_alone(
    workdir: Path, database_url: str | None, mails: Sequence[Mail], connections: int
) -> tuple[Sent, dict[str, float]]:
    """``serve --only smtp``: nothing is processed, so flow control (which would hold every
    answer while the unprocessed mail piles up) is off."""
    with fresh_database(database_url, workdir) as url:
        serve = Serve(
            workdir,
            url,
            relay_url=f"maildir:{workdir / 'unused-maildir'}",
            roles=["smtp"],
            environment={"VERWIJSINDEX_SMTP_FLOW_MAX_DELAY": "0"},
        )
        meter = CpuMeter({"serve": serve.process.pid})
        try:
            meter.start()
            sent = send_all([serve.port], mails, connections)
            meter.stop()
            return sent, meter.spent or {}
        finally:
            serve.stop()


@dataclass
class GatewayRun:
    sent: Sent
    processed_seconds: float  # first send until every row processed and every receipt enqueued
    delivered_seconds: float  # first send until every receipt reached the relay sink
    latencies: list[float]  # per message: send -> its receipt at the relay sink
    paced_latencies: list[float]
    cpu_seconds: dict[str, float]  # in the burst, by process tree: serve, relay, client


def measure_gateway(
    workdir: Path,
    database_url: str | None,
    burst: Sequence[Mail],
    paced: Sequence[Mail],
    *,
    connections: int,
    rate: float,
    timeout: float,
    workers: int | None,
    serves: int = 1,
    profile: Path | None = None,
) -> GatewayRun:
    """``serves`` ``serve`` processes on one database, the clients spread over them."""
    warm_up = registrations(WARM_UP, prefix="warm-up", first_bsn=39_000_000)
    workdir.mkdir(parents=True, exist_ok=True)
    record = workdir / "relay.tsv"
    with fresh_database(database_url, workdir) as url, sink_process(record) as relay:
        running: list[Serve] = []
        try:
            for number in range(serves):
                running.append(
                    Serve(
                        workdir / f"serve-{number}",
                        url,
                        relay_url=f"smtp://127.0.0.1:{relay.port}",
                        workers=workers,
                    )
                )
            ports = [serve.port for serve in running]
            send_all(ports, warm_up, min(connections, len(warm_up)))
            wait_receipts(record, warm_up, timeout)
            meter = CpuMeter({"serve": running[0].process.pid, "relay": relay.pid})
            with py_spy(running[0].process.pid, profile):
                meter.start()
                sent = send_all(ports, burst, connections)
                processed = wait_processed(url, len(warm_up) + len(burst), timeout)
                receipt_at = wait_receipts(record, burst, timeout)
                meter.stop()
            paced_latencies = []
            if paced:
                paced_sent = send_all(ports, paced, connections, rate=rate)
                paced_at = wait_receipts(record, paced, timeout)
                paced_latencies = [
                    paced_at[m.message_id] - paced_sent.sent_at[m.message_id] for m in paced
                ]
        finally:
            for serve in running:
                serve.stop()
    return GatewayRun(
        sent=sent,
        processed_seconds=processed - sent.started,
        delivered_seconds=max(receipt_at.values()) - sent.started,
        latencies=[receipt_at[m.message_id] - sent.sent_at[m.message_id] for m in burst],
        paced_latencies=paced_latencies,
        cpu_seconds=meter.spent or {},
    )


# --- main --------------------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))
    return ordered[index]


def latency_line(label: str, latencies: Sequence[float]) -> str:
    p50, p95 = percentile(latencies, 0.50), percentile(latencies, 0.95)
    return (
        f"{label:44} p50 {p50 * 1000:7.0f} ms   p95 {p95 * 1000:7.0f} ms   "
        f"max {max(latencies) * 1000:7.0f} ms"
    )


def common_arguments(parser: argparse.ArgumentParser) -> None:
    """The options ``bench_scaling.py`` shares."""
    parser.add_argument("--messages", type=int, default=2000, help="mails in the burst")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--database-url", help="a PostgreSQL database (default: SQLite files)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait, at most")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")


@contextlib.contextmanager
def work_directory(keep: Path | None) -> Iterator[Path]:
    workdir = keep or Path(tempfile.mkdtemp(prefix="verwijsindex-bench-smtp-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        yield workdir
    finally:
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    parser.add_argument("--workers", type=int, help="passed on to serve --workers")
    parser.add_argument(
        "--paced",
        type=int,
        default=200,
        help="after the burst, this many more mails at --rate, for the latency at a steady "
        "load (0: none)",
    )
    parser.add_argument("--rate", type=float, default=20.0, help="mails a second when paced")
    parser.add_argument("--py-spy", type=Path, dest="profile", help="record serve into FILE")
    parser.add_argument("--serve-sink", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--record", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--echo-to", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sink and args.echo_to:
        run_echo(args.serve_sink, args.echo_to)
        return
    if args.serve_sink:
        run_sink(args.serve_sink, args.record)
        return

    mails = registrations(args.messages + args.paced)
    burst, paced = mails[: args.messages], mails[args.messages :]
    print(
        f"{len(burst):,} registrations, one per mail, as fast as {args.connections} "
        f"persistent connections send them; then {len(paced):,} at {args.rate:g}/s; "
        f"database {database_kind(args.database_url)}, serve --workers "
        f"{args.workers if args.workers is not None else '(its default)'}",
        flush=True,
    )
    with work_directory(args.keep) as workdir:
        bare_runs = measure_bare_sink(burst, args.connections)
        echo_seconds, echo_cpu = measure_echo_floor(workdir / "echo", burst, args.connections)
        listener, listener_cpu = measure_listener_alone(
            workdir / "listener-alone", args.database_url, burst, args.connections
        )
        run = measure_gateway(
            workdir / "gateway",
            args.database_url,
            burst,
            paced,
            connections=args.connections,
            rate=args.rate,
            timeout=args.timeout,
            workers=args.workers,
            profile=args.profile,
        )
        # Measured again after the gateway: a shared machine's speed drifts over the minutes a
        # run takes, and the baseline should bracket what it is compared with.
        bare_runs += measure_bare_sink(burst, args.connections)

    count = len(burst)
    bare_seconds = statistics.median(bare_runs)
    bare_rate = count / bare_seconds
    gateway_rate = count / run.processed_seconds
    rows = [
        ("a. bare aiosmtpd sink (250, nothing kept)", bare_seconds),
        ("b. serve --only smtp (stored, no work)", listener.seconds),
        ("e. echo gateway (one answer, nothing kept)", echo_seconds),
        ("c. serve: accepted (stored before 250)", run.sent.seconds),
        ("   serve: processed, receipts in outbox", run.processed_seconds),
        ("   serve: receipts at the relay sink", run.delivered_seconds),
    ]
    print()
    print(f"{'burst':44} {'messages':>9} {'seconds':>9} {'msg/s':>9}")
    for label, seconds in rows:
        print(f"{label:44} {count:9,} {seconds:9.2f} {count / seconds:9,.0f}")
    print(latency_line("d. latency to its receipt, in the burst", run.latencies))
    if run.paced_latencies:
        print(latency_line(f"   latency, paced at {args.rate:g}/s", run.paced_latencies))
    cpu_ms_per_mail = {
        name: round(seconds * 1000 / count, 2) for name, seconds in run.cpu_seconds.items()
    }
    echo_cpu_ms = {name: round(seconds * 1000 / count, 2) for name, seconds in echo_cpu.items()}
    print(
        "CPU per mail, echo gateway: "
        + ", ".join(f"{name} {ms:.2f} ms" for name, ms in echo_cpu_ms.items())
    )
    listener_cpu_ms = round(listener_cpu.get("serve", 0.0) * 1000 / count, 2)
    print(f"CPU per mail, serve --only smtp: {listener_cpu_ms:.2f} ms")
    if cpu_ms_per_mail:
        ceiling = 1000 * (os.cpu_count() or 1) / sum(cpu_ms_per_mail.values())
        print(
            "CPU per mail in the burst: "
            + ", ".join(f"{name} {ms:.2f} ms" for name, ms in cpu_ms_per_mail.items())
            + f" (the {os.cpu_count()} CPUs allow at most {ceiling:,.0f} msg/s at that cost)"
        )
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    figures = {
        "gateway_msgs_per_s": round(gateway_rate, 1),
        "sink_msgs_per_s": round(bare_rate, 1),
        "sink_runs_msgs_per_s": [round(count / seconds) for seconds in bare_runs],
        "ratio": round(gateway_rate / bare_rate, 4),
        "listener_msgs_per_s": round(count / listener.seconds, 1),
        "listener_ratio": round(count / listener.seconds / bare_rate, 4),
        "p50_ms": round(percentile(run.latencies, 0.50) * 1000, 1),
        "p95_ms": round(percentile(run.latencies, 0.95) * 1000, 1),
        "paced_p95_ms": (
            round(percentile(run.paced_latencies, 0.95) * 1000, 1) if run.paced_latencies else None
        ),
        "cpu_ms_per_mail": cpu_ms_per_mail,
        "listener_cpu_ms_per_mail": listener_cpu_ms,
        "echo_msgs_per_s": round(count / echo_seconds, 1),
        "echo_ratio": round(count / echo_seconds / bare_rate, 4),
        "echo_cpu_ms_per_mail": echo_cpu_ms,
        "database": database_kind(args.database_url),
        "workers": args.workers,
        "messages": count,
        "ratio_aim": RATIO_AIM,
        "p95_aim_ms": P95_AIM_MS,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
