"""Benchmark: registrations by SMTP, one per mail, through the whole gateway (issue 3).

    python tests/benchmarks/bench_smtp_ingest.py [--messages 2000] [--connections 4]

The same client (``--connections`` persistent ``smtplib`` connections on threads, each sending
mails from one shared list until it is empty; one registration per mail from
``koppeling@ggd-groningen.example`` to ``registratie@``, valid BSNs from ``tests/bsns.py``) is
pointed in one run at:

a. a bare aiosmtpd sink on 127.0.0.1 (a handler that answers ``250`` and keeps nothing): the
   most an SMTP server in Python can take from this client on this machine (median of three
   runs); and, on a fresh SQLite file, the gateway's own listener alone (sender check,
   authentication, the message committed before ``250``; no processing, and so no flow
   control): what accepting a message costs before any work is done, the ceiling of b/a;
b. the full gateway as ``serve`` runs it (schema by the migrations, the example covenant
   synced, a secret key; SMTP intake, processing worker and delivery worker in one event loop,
   as ``tests/mail_gateway/conftest.py``'s ``RunningGateway`` runs them), a fresh SQLite file,
   delivering to an aiosmtpd relay sink on loopback. Its rate counts a message once it was
   accepted (stored before ``250``), processed, and its receipt written to the outbox: the clock
   runs from the first send until every inbound row is processed and every receipt row exists.
   Also shown: the time until the last ``250`` (the listener's flow control, in
   ``mail_gateway.flow``, holds answers back while work piles up, so this follows processing)
   and until every receipt reached the relay sink;
c. the latency from sending a registration (just before its ``MAIL FROM``) to *its* receipt
   (``ontvangstbevestiging``, matched by ``In-Reply-To`` to the sent Message-ID) arriving at the
   relay sink: p50, p95, max; in the burst above, and again for ``--paced`` more mails sent at
   a steady ``--rate`` (the gateway not saturated).

Client, sinks and gateway share one process (as ``serve`` is one process), so the client's own
cost weighs on both measurements alike. With ``--profile FILE`` the gateway run is profiled
(every thread, cProfile) into FILE and the top functions are printed; the times include what
threads spend waiting, and the figures of a profiled run are slower and not comparable. For
where the CPU goes, ``py-spy record --gil --threads -- python tests/benchmarks/...`` is
clearer. Not collected by pytest (the name does not start with ``test_``).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import smtplib
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
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
RATIO_AIM = 0.3
P95_AIM = 1.0


# --- the mails ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mail:
    message_id: str
    raw: bytes


def registrations(count: int) -> list[Mail]:
    mails = []
    for number, bsn in enumerate(valid_bsns(count, start_prefix=30_000_000)):
        message = EmailMessage()
        message["From"] = f"GGD Groningen koppeling <{SENDER}>"
        message["To"] = RECIPIENT
        message["Subject"] = f"Aanmelding {number}"
        message["Message-ID"] = f"<bench-{number:07d}@ggd-groningen.example>"
        message.set_content(
            f"BSN: {bsn}\n"
            f"Geboortedatum: {1 + number % 28:02d}-{1 + number % 12:02d}-{2006 + number % 17}\n"
            f"Gemeente: {MUNICIPALITIES[number % len(MUNICIPALITIES)]}\n"
            f"Kenmerk: GGD-{number:07d}\n"
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
    port: int, mails: Sequence[Mail], connections: int, *, rate: float | None = None
) -> Sent:
    """Send ``mails`` over ``connections`` persistent connections, each taking the next mail
    when it is done with one (with ``rate``: not before its turn, ``rate`` mails a second). The
    connections are open before the clock starts."""
    lock = threading.Lock()
    pending = iter(enumerate(mails))
    sent_at: dict[str, float] = {}
    failures: list[BaseException] = []
    clock: list[float] = []  # the start, set when every connection is ready
    ready = threading.Barrier(connections + 1, action=lambda: clock.append(time.monotonic()))

    def client() -> None:
        try:
            smtp = smtplib.SMTP("127.0.0.1", port, local_hostname="bench.example", timeout=60)
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

    threads = [threading.Thread(target=client, name=f"client-{n}") for n in range(connections)]
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


# --- a. the bare sink, and the relay sink ------------------------------------------------------


class BareHandler:
    """Answers 250 to everything and keeps nothing."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


class RecordingHandler:
    """The relay: answers 250 and keeps the arrival time and the bytes, nothing more (reading
    the mails is left until the clock has stopped: the sink shares the process and its CPU
    with the gateway; the tests' ``RelaySink`` parses every message as it arrives)."""

    def __init__(self) -> None:
        self.arrived: list[tuple[float, bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.arrived.append((time.monotonic(), envelope.original_content or b""))
        return "250 OK"


def start_sink(handler: Any) -> Any:
    from aiosmtpd.controller import Controller

    from tests.mail_gateway.relay_sink import free_port

    # A fixed banner name: without one aiosmtpd asks the resolver on every connection.
    controller = Controller(
        handler, hostname="127.0.0.1", port=free_port(), server_hostname="sink.localhost"
    )
    controller.start()
    return controller


def measure_bare_sink(mails: Sequence[Mail], connections: int, runs: int = 3) -> Sent:
    """The median of ``runs`` runs: one takes a second or two, and a single run is noisy."""
    controller = start_sink(BareHandler())
    try:
        results = [send_all(controller.port, mails, connections) for _ in range(runs)]
    finally:
        controller.stop()
    return sorted(results, key=lambda sent: sent.seconds)[len(results) // 2]


_HEADER = re.compile(rb"^(In-Reply-To|X-Verwijsindex-Type):[ \t]*(.*?)\r?$", re.I | re.M)


def receipts_by_original(arrived: Sequence[tuple[float, bytes]]) -> dict[str, float]:
    """Arrival time of each receipt, by the Message-ID it answers (``In-Reply-To``)."""
    found = {}
    for at, raw in arrived:
        head = raw.split(b"\r\n\r\n", 1)[0]
        headers = {name.lower(): value.strip() for name, value in _HEADER.findall(head)}
        if headers.get(b"x-verwijsindex-type") == b"ontvangstbevestiging":
            found[headers.get(b"in-reply-to", b"").decode()] = at
    return found


# --- b. and c. the gateway ---------------------------------------------------------------------


@dataclass
class GatewayRun:
    sent: Sent
    processed_seconds: float  # first send until every row processed and every receipt enqueued
    delivered_seconds: float  # first send until every receipt reached the relay sink
    latencies: list[float]  # per message: send -> its receipt at the relay sink
    paced: Sent | None  # the paced run after the burst
    paced_latencies: list[float]
    notifications: int  # outbox rows at the end (all kinds)


def wait_processed(database: Path, count: int, timeout: float) -> float:
    """Poll (a plain read-only sqlite3 connection: reads in WAL mode hold no lock a writer
    waits for) until ``count`` inbound rows are processed and ``count`` receipts enqueued;
    returns time.monotonic() then."""
    from core.models import InboundMessage, OutboxMessage

    inbound = InboundMessage.__table__.name  # type: ignore[attr-defined]
    outbox = OutboxMessage.__table__.name  # type: ignore[attr-defined]
    query = (
        f"SELECT (SELECT count(*) FROM {inbound} WHERE status != 'received'), "
        f"(SELECT count(*) FROM {outbox} WHERE kind = 'ontvangstbevestiging')"
    )
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=60)
    deadline = time.monotonic() + timeout
    try:
        while True:
            done, receipts = connection.execute(query).fetchone()
            if done >= count and receipts >= count:
                return time.monotonic()
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"after {timeout:.0f} s only {done} of {count} messages processed, "
                    f"{receipts} receipts enqueued"
                )
            time.sleep(0.005)
    finally:
        connection.close()


def wait_receipts(
    relay: RecordingHandler, mails: Sequence[Mail], timeout: float
) -> dict[str, float]:
    """Arrival time at the relay of the receipt of each of ``mails``."""
    wanted = {mail.message_id for mail in mails}
    found: dict[str, float] = {}
    read = 0
    deadline = time.monotonic() + timeout
    while not wanted <= found.keys():
        if time.monotonic() > deadline:
            missing = sorted(wanted - found.keys())
            raise SystemExit(f"{len(missing)} receipts never arrived, e.g. for {missing[0]}")
        time.sleep(0.01)
        arrived = relay.arrived[read:]
        read += len(arrived)
        found.update(receipts_by_original(arrived))
    return {message_id: found[message_id] for message_id in wanted}


def build_gateway(workdir: Path, relay_url: str) -> Any:
    """The gateway as ``serve`` builds it: migrations, covenant sync, settings."""
    from core.audit import use_keyring
    from core.cli.runtime import sync_covenant_if_changed, upgrade_schema
    from core.config import build_config
    from core.covenant import bundled_covenant_path
    from core.db import create_db_engine
    from core.settings import Settings
    from mail_gateway.context import build_gateway as build
    from tests.mail_gateway.conftest import free_port

    workdir.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        database_url=f"sqlite:///{workdir / 'verwijsindex.db'}",
        covenant=bundled_covenant_path(),
        secret_key=SECRET,
        mail_domain=MAIL_DOMAIN,
        smtp_host="127.0.0.1",
        smtp_port=free_port(),
        relay_url=relay_url,
        secret_file=workdir / "unused-secret",
    )
    config = build_config(settings)
    upgrade_schema(settings)
    engine = create_db_engine(settings.database_url)
    use_keyring(engine, settings.keyring())
    sync_covenant_if_changed(engine, config)
    return build(settings, engine, config)


def start_gateway(workdir: Path, relay_url: str) -> Any:
    """The gateway's roles in a background event loop, as the tests run them
    (``RunningGateway``)."""
    from tests.mail_gateway.conftest import RunningGateway

    running = RunningGateway(build_gateway(workdir, relay_url), ["smtp", "processing", "delivery"])
    return running.start()


def measure_intake_alone(workdir: Path, mails: Sequence[Mail], connections: int) -> Sent:
    """The listener alone on a fresh database: sender check, authentication and the message
    committed before each ``250``, nothing processed (and so no flow control, which would hold
    the answers back while the unprocessed mail piles up). What accepting costs, before any
    processing: the most the whole gateway could take in."""
    from aiosmtpd.controller import Controller

    from mail_gateway.flow import Backlog
    from mail_gateway.smtp_server import IntakeHandler, smtp_factory

    gateway = build_gateway(workdir, "maildir:" + str(workdir / "unused-maildir"))
    handler = IntakeHandler(gateway, Backlog(gateway.engine, max_delay=0))
    make_session = smtp_factory(gateway, handler)

    class IntakeController(Controller):
        def factory(self) -> Any:
            return make_session()

    controller = IntakeController(handler, hostname="127.0.0.1", port=gateway.settings.smtp_port)
    controller.start()
    try:
        return send_all(controller.port, mails, connections)
    finally:
        controller.stop()
        gateway.engine.dispose()


def measure_gateway(
    workdir: Path,
    burst: Sequence[Mail],
    paced: Sequence[Mail],
    *,
    connections: int,
    rate: float,
    timeout: float,
) -> GatewayRun:
    relay = RecordingHandler()
    sink = start_sink(relay)
    running = start_gateway(workdir, f"smtp://127.0.0.1:{sink.port}")
    try:
        sent = send_all(running.smtp_port, burst, connections)
        processed = wait_processed(workdir / "verwijsindex.db", len(burst), timeout)
        receipt_at = wait_receipts(relay, burst, timeout)
        paced_sent, paced_at = None, {}
        if paced:
            paced_sent = send_all(running.smtp_port, paced, connections, rate=rate)
            paced_at = wait_receipts(relay, paced, timeout)
    finally:
        running.stop()
        sink.stop()
    with sqlite3.connect(workdir / "verwijsindex.db") as connection:
        notifications = connection.execute("SELECT count(*) FROM outboxmessage").fetchone()[0]
    running.gateway.engine.dispose()
    return GatewayRun(
        sent=sent,
        processed_seconds=processed - sent.started,
        delivered_seconds=max(receipt_at.values()) - sent.started,
        latencies=[receipt_at[m.message_id] - sent.sent_at[m.message_id] for m in burst],
        paced=paced_sent,
        paced_latencies=[
            paced_at[m.message_id] - paced_sent.sent_at[m.message_id]
            for m in paced
            if paced_sent is not None
        ],
        notifications=notifications,
    )


def profiled(work: Any, out: Path) -> Any:
    """Run ``work()`` with cProfile on in every thread (``threading.setprofile`` for threads
    started from now on, among them ``asyncio.to_thread``'s workers)."""
    import cProfile
    import pstats

    profilers: list[cProfile.Profile] = []
    lock = threading.Lock()

    def start_in_thread(*_args: Any) -> None:
        sys.setprofile(None)
        profiler = cProfile.Profile()
        with lock:
            profilers.append(profiler)
        profiler.enable()

    main_profiler = cProfile.Profile()
    profilers.append(main_profiler)
    threading.setprofile(start_in_thread)
    main_profiler.enable()
    try:
        return work()
    finally:
        main_profiler.disable()
        threading.setprofile(None)
        for profiler in profilers:
            profiler.disable()
        stats = pstats.Stats(*profilers)
        stats.dump_stats(out)
        print(f"\nprofile (all threads) written to {out}; top 25 by own time:")
        stats.sort_stats("tottime").print_stats(25)


# --- main --------------------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))
    return ordered[index]


def latency_line(label: str, latencies: Sequence[float]) -> str:
    p50, p95 = percentile(latencies, 0.50), percentile(latencies, 0.95)
    return (
        f"{label:44} p50 {p50 * 1000:7.0f} ms   p95 {p95 * 1000:7.0f} ms   "
        f"max {max(latencies) * 1000:7.0f} ms   (aim p95 < {P95_AIM:.0f} s: "
        f"{'yes' if p95 < P95_AIM else 'NO'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000, help="mails in the burst")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument(
        "--paced",
        type=int,
        default=200,
        help="after the burst, this many more mails at --rate, for the latency at a steady "
        "load (0: none)",
    )
    parser.add_argument("--rate", type=float, default=20.0, help="mails a second when paced")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait, at most")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    parser.add_argument("--profile", type=Path, help="profile the gateway run into this file")
    parser.add_argument("--verbose", action="store_true", help="the gateway's log on stderr")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="verwijsindex-bench-smtp-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if (workdir / "verwijsindex.db").exists():
        raise SystemExit(f"{workdir} holds a database from an earlier run; remove it first")
    try:
        mails = registrations(args.messages + args.paced)
        burst, paced = mails[: args.messages], mails[args.messages :]
        print(
            f"{len(burst):,} registrations, one per mail, as fast as {args.connections} "
            f"persistent connections send them; then {len(paced):,} at {args.rate:g}/s. "
            f"Work in {workdir}"
        )
        bare = measure_bare_sink(burst, args.connections)
        intake = measure_intake_alone(workdir / "intake-alone", burst, args.connections)

        def gateway() -> GatewayRun:
            return measure_gateway(
                workdir,
                burst,
                paced,
                connections=args.connections,
                rate=args.rate,
                timeout=args.timeout,
            )

        run = profiled(gateway, args.profile) if args.profile else gateway()
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)

    count = len(burst)
    bare_rate = count / bare.seconds
    gateway_rate = count / run.processed_seconds
    ratio = gateway_rate / bare_rate
    rows = [
        ("a. bare aiosmtpd sink (250, nothing kept)", bare.seconds),
        ("   gateway's listener alone (stored, no work)", intake.seconds),
        ("b. gateway: accepted (stored before 250)", run.sent.seconds),
        ("   gateway: processed, receipts in outbox", run.processed_seconds),
        ("   gateway: receipts at the relay sink", run.delivered_seconds),
    ]
    print()
    print(f"{'burst':44} {'messages':>9} {'seconds':>9} {'msg/s':>9}")
    for label, seconds in rows:
        print(f"{label:44} {count:9,} {seconds:9.2f} {count / seconds:9,.0f}")
    print(
        f"{'ratio b/a (processed / bare sink)':44} {ratio:9.2f}   "
        f"(aim >= {RATIO_AIM}: {'yes' if ratio >= RATIO_AIM else 'NO'})"
    )
    print(
        f"{'   ratio listener alone / bare sink':44} {count / intake.seconds / bare_rate:9.2f}   "
        "(the ceiling of b/a: what accepting alone costs)"
    )
    print(latency_line("c. latency to its receipt, in the burst", run.latencies))
    if run.paced_latencies:
        print(latency_line(f"   latency, paced at {args.rate:g}/s", run.paced_latencies))
    print(f"{'notifications in the outbox (all kinds)':44} {run.notifications:9,}")
    print(
        f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}, "
        f"aiosmtpd {_version('aiosmtpd')}, SQLAlchemy {_version('sqlalchemy')}, "
        f"{os.cpu_count()} CPUs"
    )


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    main()
