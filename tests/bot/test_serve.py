"""``verwijsindex serve`` runs the Slack role when Slack's secrets are set (the endpoint and the
delivery worker, in the one process), and leaves Slack off when they are not (CONTRACT §1)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from tests.bot.conftest import (
    ANNA,
    SIGNING_SECRET,
    SlackSender,
    serve_environment,
    slack_serve_environment,
    user,
)
from tests.bot.fake_slack_api import FakeSlackApi
from tests.mail_gateway.conftest import free_port, wait_for_port


def test_serve_runs_the_slack_role(
    tmp_path: Path, database_url: str, slack_api: FakeSlackApi
) -> None:
    port = free_port()
    environment = slack_serve_environment(tmp_path, database_url, slack_api, port)
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--only", "slack"],
            env=environment,
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, timeout=60)
        sender = SlackSender(f"http://127.0.0.1:{port}/slack/events", slack_api)
        assert sender.command("/verwijsindex", "afwezig vandaag morgen", ANNA).status == 200
        [answer] = slack_api.wait_for("response_url", timeout=20)
        assert "Uw afwezigheid van" in str(answer.args["text"])
        # The delivery worker runs too: the absence notice reaches Anna in Slack.
        [notice] = slack_api.wait_for("chat.postMessage", timeout=20)
        assert notice.args["channel"] == user(ANNA)
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    output_text = log.read_text()
    assert f"Slack op http://127.0.0.1:{port}/slack/events" in output_text


def test_serve_runs_a_distributed_app_without_a_bot_token(
    tmp_path: Path, database_url: str, slack_api: FakeSlackApi
) -> None:
    """Many workspaces (issue 12): the client id and secret take SLACK_BOT_TOKEN's place, so
    ``serve`` runs the Slack role (its install page answers) and says so, not that Slack is
    off."""
    import urllib.request

    port = free_port()
    environment = serve_environment(
        tmp_path,
        database_url,
        SLACK_CLIENT_ID="1.2",
        SLACK_CLIENT_SECRET="geheim",
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        VERWIJSINDEX_SLACK_PORT=str(port),
        VERWIJSINDEX_SLACK_API_URL=slack_api.url,
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--only", "slack", "--workers", "0"],
            env=environment,
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, timeout=60)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/slack/install", timeout=10) as page:
            assert page.status == 200
            assert "slack.com/oauth/v2/authorize" in page.read().decode()
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    output_text = log.read_text()
    assert f"Slack op http://127.0.0.1:{port}/slack/events" in output_text, output_text
    assert "staat uit" not in output_text


def test_health_shares_the_slack_endpoint_when_their_ports_agree(
    tmp_path: Path, database_url: str, slack_api: FakeSlackApi
) -> None:
    """Issue 13.2: one port for Slack and for /healthz, /readyz, /metrics (no second server)."""
    import urllib.request

    port = free_port()
    environment = slack_serve_environment(
        tmp_path, database_url, slack_api, port, VERWIJSINDEX_HTTP_PORT=str(port)
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "--only", "slack", "--workers", "0"],
        env=environment,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=60)
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/healthz", timeout=10) as response:
            assert response.status == 200
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
            assert b"verwijsindex_outbox_messages" in response.read()
        sender = SlackSender(f"{base}/slack/events", slack_api)
        assert sender.command("/verwijsindex", "help", ANNA).status == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0  # the service did not fail on a taken port
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
