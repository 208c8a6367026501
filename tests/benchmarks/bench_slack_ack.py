"""Benchmark: time to the HTTP answer for ``/signaal`` submissions (issue 4).

    python tests/benchmarks/bench_slack_ack.py [--submissions 500] [--in-flight 16]
                                               [--database-url URL]

The Slack role runs as ``serve`` runs it (the Bolt endpoint on 127.0.0.1 and the Slack delivery
worker in one event loop, ``tests/bot/conftest.py``'s ``RunningSlack``), on a fresh SQLite file
(or ``--database-url``: an empty PostgreSQL database) with the schema from the migrations and the
example covenant, against the fake Slack Web API. Twelve professionals who may signal open the
form once (which links their Slack accounts, as in real use); then ``--submissions`` view
submissions — each a new youth, valid BSNs from ``tests/bsns.py`` — are sent, signed as Slack
signs them, ``--in-flight`` at a time from threads, and the time from sending a request to its
HTTP answer is measured. The answer to a submission waits for the checks of the form (Slack
shows errors on its fields only from that answer: ``core.fields`` and
``core.signals.check_signal``) and for the form to be stored, sealed, with its retry key (issue
10.10: durable before Slack hears "ok"; forms arriving together share a commit,
``bot.stored_submissions.FormIntake``); the signal is placed after the answer from what was
stored, in the same process, and confirmed by ``response_url`` (``bot/signals.py``).

Printed: p50, p95, p99 and max of the time to the answer; then when every signal was placed and
confirmed (the throughput of placing), with a check that every submission placed exactly one.
The client shares the process with the server (``serve`` is one process too), so its cost weighs
on the figures. Not collected by pytest (the name does not start with ``test_``).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlmodel import Session, func, select  # noqa: E402 (after the path is set)

from bot.context import build_bot  # noqa: E402
from core.audit import use_keyring  # noqa: E402
from core.config import build_config  # noqa: E402
from core.covenant.sync import sync_covenant  # noqa: E402
from core.db import create_db_engine, transaction  # noqa: E402
from core.migrations import upgrade_database  # noqa: E402
from core.models import Signal  # noqa: E402
from tests.bot.conftest import (  # noqa: E402
    RunningSlack,
    SlackAnswer,
    SlackSender,
    add_covenant_users,
    slack_settings,
    user,
)
from tests.bot.fake_slack_api import FakeSlackApi  # noqa: E402
from tests.bot.forms import form_values, signal_fields  # noqa: E402
from tests.bsns import valid_bsns  # noqa: E402

REPORTERS = (
    "a.devries@ggd-groningen.example",
    "p.bakker@ggd-groningen.example",
    "s.jansen@wij-groningen.example",
    "e.meijer@jeugdhulp-noord.example",
    "t.boer@jeugdhulp-noord.example",
    "k.deboer@jeugdhulp-noord.example",
)
EXTRA_REPORTERS = {
    "m.smit@ggd-groningen.example": "UMARIEKE1",
    "m.elamrani@wij-groningen.example": "UMOHAMED1",
    "l.hoekstra@sociaalteam-westerkwartier.example": "ULOTTE001",
    "b.kuipers@sociaalteam-midden-groningen.example": "UBAS00001",
    "j.veenstra@scholengroep-noordkust.example": "UJEROEN01",
    "i.wiersma@politie-nn.example": "UILSE0001",
}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


def prepare(database_url: str, workdir: Path, api: FakeSlackApi) -> RunningSlack:
    settings = slack_settings(workdir, database_url, api.url)
    upgrade_database(database_url, keyring=settings.keyring())
    config = build_config(settings)
    engine = create_db_engine(database_url)
    use_keyring(engine, settings.keyring())
    with transaction(engine) as session:
        sync_covenant(session, config.covenant)
    return RunningSlack(build_bot(settings, engine, config), with_delivery=True).start()


def confirmations(api: FakeSlackApi) -> int:
    return sum(1 for c in api.calls_to("response_url") if "is geplaatst" in str(c.args["text"]))


def wait_until_placed(
    running: RunningSlack, api: FakeSlackApi, count: int, *, timeout: float
) -> int:
    """The signals are placed (and confirmed, just after) after the answer: wait for the last
    confirmation (or give up)."""
    deadline = time.monotonic() + timeout
    while True:
        with Session(running.bot.engine) as session:
            placed = session.exec(select(func.count()).select_from(Signal)).one()
        if (placed >= count and confirmations(api) >= count) or time.monotonic() > deadline:
            return int(placed)
        time.sleep(0.05)


def slack_id(email: str) -> str:
    return EXTRA_REPORTERS.get(email) or user(email)


def open_forms(sender: SlackSender, api: FakeSlackApi) -> dict[str, dict[str, Any]]:
    """Each reporter opens ``/signaal`` once: the form as the app builds it, and a warm link."""
    views = {}
    for email in [*REPORTERS, *EXTRA_REPORTERS]:
        before = len(api.calls_to("views.open"))
        assert sender.command("/signaal", "", user_id=slack_id(email)).status == 200
        views[email] = api.wait_for("views.open", before + 1)[-1].args["view"]
    return views


def submissions(
    sender: SlackSender, views: dict[str, dict[str, Any]], count: int
) -> list[tuple[str, dict[str, Any]]]:
    today = date.today()
    birth = date(today.year - 9, 6, 1)
    emails = list(views)
    payloads = []
    for number, bsn in enumerate(valid_bsns(count, start_prefix=41_000_000)):
        email = emails[number % len(emails)]
        view = views[email]
        fields = signal_fields(bsn, birth, kenmerk=f"BENCH-{number}")
        values = form_values(view, fields)
        payload = sender.view_submission(
            view, values, email, view_id=f"VB{number}", user_id=slack_id(email)
        )
        payloads.append((email, payload))
    return payloads


def run(count: int, in_flight: int, database_url: str | None) -> None:
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as folder, FakeSlackApi() as api:
        workdir = Path(folder)
        add_covenant_users(api)
        for email, user_id in EXTRA_REPORTERS.items():
            api.add_user(user_id, email)
        url = database_url or f"sqlite:///{workdir / 'bench.db'}"
        running = prepare(url, workdir, api)
        try:
            sender = SlackSender(running.url, api)
            payloads = submissions(sender, open_forms(sender, api), count)

            def send(item: tuple[str, dict[str, Any]]) -> SlackAnswer:
                return sender.interact(item[1])

            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=in_flight) as pool:
                answers = list(pool.map(send, payloads))
            elapsed = time.monotonic() - started
            placed = wait_until_placed(running, api, count, timeout=300)
            settled = time.monotonic() - started
            confirmed = confirmations(api)
        finally:
            running.stop()
    seconds = [a.seconds for a in answers]
    refused = sum(1 for a in answers if a.body)  # the modal closes on an empty answer
    failed = [a for a in answers if a.status != 200]
    print(f"{count} /signaal submissions, {in_flight} in flight, database {url.split(':')[0]}")
    print(
        f"time to the HTTP answer: p50 {statistics.median(seconds) * 1000:.0f} ms, "
        f"p95 {percentile(seconds, 0.95) * 1000:.0f} ms, "
        f"p99 {percentile(seconds, 0.99) * 1000:.0f} ms, max {max(seconds) * 1000:.0f} ms"
    )
    print(f"all answered after {elapsed:.1f} s ({count / elapsed:.0f} submissions/s)")
    print(f"answers refusing the form: {refused}; HTTP errors: {len(failed)}")
    print(
        f"signals placed: {placed} (expected {count}), confirmations sent: {confirmed}; "
        f"all placed after {settled:.1f} s ({placed / settled:.0f} signals/s)"
    )
    if placed != count or confirmed != count or failed or refused:
        raise SystemExit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=500)
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--database-url", default=None)
    arguments = parser.parse_args()
    run(arguments.submissions, arguments.in_flight, arguments.database_url)


if __name__ == "__main__":
    main()
