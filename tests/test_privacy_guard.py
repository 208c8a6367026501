"""The suite's privacy guard (tests/privacy_guard.py) cannot be silently off: a BSN, a test
youth's name or birth date planted in a log line, a relayed mail, a maildir or a Slack call is
found, and a test that leaks fails at teardown."""

from __future__ import annotations

import json
import logging
import smtplib
import urllib.request
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests import privacy_guard
from tests.bot.fake_slack_api import FakeSlackApi
from tests.bsns import valid_bsns
from tests.core.conftest import BSN_A, BSN_C
from tests.mail_gateway.relay_sink import RelaySink


@pytest.mark.parametrize(
    "text",
    [
        f"registered {BSN_A}",
        f"bsn={BSN_A[:3]} {BSN_A[3:6]} {BSN_A[6:]}",
        f"bsn {BSN_A[:3]}.{BSN_A[3:6]}.{BSN_A[6:]}",
        f"legacy {BSN_C.lstrip('0')}",
        "youth Testkind Geheimnaam",
        "born 2016-05-01",
        "born 01-05-2016",
    ],
)
def test_a_planted_identity_in_a_log_line_is_found(text: str) -> None:
    logging.getLogger("mail_gateway.processing").info("%s", text)
    try:
        assert privacy_guard.leaks(), f"the guard missed {text!r}"
    finally:
        privacy_guard.forget()


def test_a_generated_bsn_is_looked_for_too() -> None:
    [generated] = valid_bsns(1, start_prefix=31_415_926)
    logging.getLogger("core.bulk_import").debug("row %s", generated)
    try:
        assert privacy_guard.leaks()
    finally:
        privacy_guard.forget()


def test_references_dates_and_numbers_that_are_no_identity_pass() -> None:
    logging.getLogger("core").warning(
        "S-12 M-3 C-7 R-40 at 2026-03-02T09:00:00+00:00, 123456789 bytes, port 2525, "
        "digest 5f3a9c0d1e2b4a6f8091a2b3c4d5e6f7"
    )
    assert privacy_guard.leaks() == []


def test_an_exception_in_a_log_record_is_scanned() -> None:
    try:
        raise ValueError(f"bad row {BSN_A}")
    except ValueError:
        logging.getLogger("bot").exception("could not read")
    try:
        assert privacy_guard.leaks()
    finally:
        privacy_guard.forget()


def test_a_mail_in_the_relay_sink_or_the_maildir_is_scanned(tmp_path: Path) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@x.example", "b@y.example", "hoi"
    message.set_content(f"Uw jongere {BSN_A}", cte="base64")  # found decoded, not as base64
    with RelaySink() as sink, smtplib.SMTP("127.0.0.1", sink.port) as client:
        client.send_message(message)
        sink.wait_for(1)
    try:
        assert any("relayed mail" in leak for leak in privacy_guard.leaks())
    finally:
        privacy_guard.forget()
    folder = tmp_path / "verzonden" / "new"
    folder.mkdir(parents=True)
    (folder / "1.eml").write_bytes(message.as_bytes())
    try:
        assert any("mail 1.eml" in leak for leak in privacy_guard.leaks(tmp_path))
    finally:
        privacy_guard.forget()
        (folder / "1.eml").unlink()


def _call_slack(api: FakeSlackApi, method: str, **args: str) -> None:
    body = json.dumps(args).encode()
    request = urllib.request.Request(
        api.url + method,
        data=body,
        headers={"Authorization": "Bearer xoxb-test", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 200


def test_a_slack_message_is_scanned_but_not_a_form() -> None:
    with FakeSlackApi() as api:
        typed = {"type": "section", "text": {"type": "mrkdwn", "text": BSN_A}}
        title = {"type": "plain_text", "text": "Signaal"}
        form = {"type": "modal", "title": title, "blocks": [typed]}
        _call_slack(api, "views.open", trigger_id="1", view=json.dumps(form))
        assert privacy_guard.leaks() == []  # a form holds what the user types
        _call_slack(api, "chat.postMessage", channel="UANNA0001", text=f"BSN {BSN_A} ken ik niet")
        try:
            assert any("Slack chat.postMessage" in leak for leak in privacy_guard.leaks())
        finally:
            privacy_guard.forget()


def test_a_leaking_test_fails_at_teardown(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makeconftest(
        "from tests.conftest import _no_identity_leaves_the_system, pytest_configure  # noqa\n"
    )
    pytester.makepyfile(
        f"""
        import logging
        import pytest

        def test_leaks():
            logging.getLogger("core").info("youth {BSN_A}")

        @pytest.mark.identity_allowed("the form shows what the user typed")
        def test_allowed():
            logging.getLogger("core").info("youth {BSN_A}")

        def test_clean():
            logging.getLogger("core").info("S-12")
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*log record core (INFO) carries a test youth's identity*"])
