"""Logs for operators (issue 13.3): ``serve`` whose stderr is no terminal writes JSON lines, one
line per processed message, no youth identity, and no library chatter unless ``-vv``."""

from __future__ import annotations

import io
import json
import logging
import signal
import smtplib
from datetime import datetime
from pathlib import Path

import pytest

import cli
from core.covenant import bundled_covenant_path
from core.logging_setup import OWN_LOGGERS, configure_logging, set_verbosity
from core.settings import Settings
from tests.bsns import valid_bsns
from tests.conftest import TEST_SECRET
from tests.mail_gateway.conftest import MAIL_DOMAIN, wait_until
from tests.mail_gateway.serve_process import SENDER, Service, registration


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_serve_logs_json_lines_with_one_line_per_processed_message(
    tmp_path: Path, database_url: str
) -> None:
    service = Service(tmp_path, database_url, workers=0)
    bsn = valid_bsns(1, start_prefix=52_000_000)[0]
    try:
        service.start()
        with smtplib.SMTP("127.0.0.1", service.port, timeout=30) as smtp:
            smtp.sendmail(SENDER, [f"registratie@{MAIL_DOMAIN}"], registration(bsn, 7))
        wait_until(
            lambda: "processed: processed" in service.output() or None,
            timeout=60,
            what="the processed message's log line",
        )
        assert service.kill(signal.SIGTERM) == 0
    finally:
        service.stop()

    output = service.output()
    records = _json_lines(output)
    assert records, output[-3000:]
    log_lines = [line for line in output.splitlines() if line.startswith("{")]
    assert len(log_lines) == len(records)  # every log line is one whole JSON object
    for record in records:
        assert {"timestamp", "level", "logger", "message"} <= record.keys(), record
        stamp = datetime.fromisoformat(str(record["timestamp"]))
        assert stamp.utcoffset() is not None, "the timestamp names its zone"
    processed = [r for r in records if "processed:" in str(r["message"])]
    assert len(processed) == 1, processed
    assert processed[0]["level"] == "INFO"
    assert processed[0]["logger"] == "mail_gateway.processing.worker"
    assert "to registratie" in str(processed[0]["message"])  # the mailbox
    stored = [
        r
        for r in records
        if "inbound message" in str(r["message"]) and "stored" in str(r["message"])
    ]
    assert stored, "the stored message is logged too"
    # Library noise is off by default: no alembic migration steps, no SMTP protocol traces.
    loggers = {str(record["logger"]) for record in records}
    assert not {name for name in loggers if name.startswith(("alembic", "mail.log"))}, loggers
    # No identity: not the BSN, not the birth date the mail carried.
    assert bsn not in output and "01-05-2016" not in output


def test_json_lines_carry_the_traceback_and_the_levels_follow_the_verbosity() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    levels = {name: logging.getLogger(name).level for name in OWN_LOGGERS}
    try:
        configure_logging(stream)  # a StringIO is no terminal: JSON
        for name in OWN_LOGGERS:  # as a fresh process has them
            logging.getLogger(name).setLevel(logging.NOTSET)
        logging.getLogger("alembic.runtime.migration").info("Running upgrade 0004 -> 0005")
        logging.getLogger("core.outbox").info("not by default for a command")
        try:
            raise ValueError("kapot")
        except ValueError:
            logging.getLogger("core.scheduler").exception("sweep job x failed")
        set_verbosity(0, service=True)
        logging.getLogger("core.outbox").info("a service's own line")
        logging.getLogger("alembic.runtime.migration").info("still not a library's")
        set_verbosity(2)
        logging.getLogger("mail.log").debug("Peer: ('127.0.0.1', 1234)")
    finally:
        for handler in root.handlers[:]:
            if handler not in saved[0]:
                root.removeHandler(handler)
        root.setLevel(saved[1])
        for name, level in levels.items():  # as pytest had them: later tests capture INFO
            logging.getLogger(name).setLevel(level)

    records = _json_lines(stream.getvalue())
    messages = [record["message"] for record in records]
    assert messages == [
        "sweep job x failed",
        "a service's own line",
        "Peer: ('127.0.0.1', 1234)",
    ]
    assert records[0]["level"] == "ERROR" and records[0]["logger"] == "core.scheduler"
    assert "ValueError: kapot" in str(records[0]["exception"])


def test_a_region_on_the_example_covenant_is_warned_at_start(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    def warnings(**settings: object) -> list[str]:
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="verwijsindex.serve"):
            cli.warn_about_the_example_covenant(
                Settings(_env_file=None, secret_key=TEST_SECRET, **settings)
            )
        return [record.getMessage() for record in caplog.records]

    region = "verwijsindex.regio-groningen.nl"
    (warning,) = warnings(mail_domain=region)
    assert region in warning and "EXAMPLE covenant" in warning
    assert "VERWIJSINDEX_COVENANT" in warning
    assert warnings(mail_domain=region, covenant=bundled_covenant_path()) == [warning]
    # Trying it out (the default domain), or a region's own covenant: nothing to warn about.
    assert warnings() == []
    own = tmp_path / "covenant.toml"
    own.write_bytes(bundled_covenant_path().read_bytes())
    assert warnings(mail_domain=region, covenant=own) == []
