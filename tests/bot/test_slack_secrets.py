"""No Slack secret in clear at rest (issue 12): after two OAuth installs and a
``/verwijsindex koppel`` request, the raw database — the SQLite file's bytes (WAL included), or
every PostgreSQL row as the server prints it — holds neither bot token nor link code, not even
hex-encoded; nor does a ``verwijsindex backup`` of it. The tokens are sealed under the region's
key, the code is sealed in its outbox row until the mail is sent and then gone, and still the
requests are answered through each workspace's token and the mail arrives with the code."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.installations import DatabaseInstallationStore
from bot.proactive_linking import ProactiveLinker
from core.backup import backup
from core.db import run_in_transaction
from core.errors import SystemError_
from core.keyring import KeyRing
from core.models import SlackInstallation
from core.outbox import SEALED_KEY
from core.outbox_secrets import opened_context
from core.slack_codes import KIND
from core.slack_installations import bot_token, save_installation
from tests.bot.conftest import ANNA, EVA, KARIN, RunningSlack, user
from tests.bot.fake_slack_api import FakeSlackApi
from tests.bot.test_workspaces import (  # noqa: F401  (fixtures)
    GGD_TEAM,
    GUEST,
    WorkspaceSender,
    _replies,
    _rows,
    distributed,
    install,
    mailed_code,
    sink,
    workspaces,
)
from tests.conftest import TEST_KEYRING
from tests.mail_gateway.relay_sink import RelaySink


def raw_database(engine: Engine) -> bytes:
    """What someone who copies the database reads, without any key."""
    if engine.dialect.name == "sqlite":
        assert engine.url.database is not None
        path = Path(engine.url.database)
        files = sorted(path.parent.glob(path.name + "*"))  # the database, its -wal and -shm
        assert path in files
        return b"".join(file.read_bytes() for file in files)
    with engine.connect() as connection:
        tables = (
            connection.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            )
            .scalars()
            .all()
        )
        assert "slackinstallation" in tables and "outboxmessage" in tables
        rows = [
            row
            for table in tables
            for row in connection.execute(text(f'SELECT t::text FROM "{table}" t')).scalars()
        ]
    return "\n".join(rows).encode()


def assert_not_stored(raw: bytes, secrets: list[str]) -> None:
    for secret in secrets:
        for form in (secret.encode(), secret.encode().hex().encode()):
            assert form not in raw, f"a Slack secret is stored in the clear ({secret[:6]}...)"


def test_no_bot_token_and_no_link_code_is_stored_in_clear(
    distributed: RunningSlack,  # noqa: F811
    slack_api: FakeSlackApi,
    workspaces: dict[str, Any],  # noqa: F811
    synced_engine: Engine,
    sink: RelaySink,  # noqa: F811
    tmp_path: Path,
) -> None:
    ggd, jhn = workspaces["ggd"], workspaces["jhn"]
    install(distributed, slack_api, ggd, user(ANNA))
    install(distributed, slack_api, jhn, user(EVA))
    tokens = [ggd.bot_token, jhn.bot_token]
    from_ggd = WorkspaceSender(distributed.url, slack_api, GGD_TEAM)
    from_ggd.command("/verwijsindex", f"koppel {KARIN}", GUEST)
    assert f"Als {KARIN} het adres van een hulpverlener" in _replies(slack_api, 1)[-1]
    # The request was answered through the GGD's token, which the authorize opened.
    assert {call.token for call in slack_api.calls_to("users.info")} == {ggd.bot_token}

    [waiting] = _rows(synced_engine, KIND)
    code = opened_context(TEST_KEYRING, waiting.context)["code"]  # what only the key opens
    assert len(code) == 8 and "code" not in waiting.context
    raw = raw_database(synced_engine)
    assert b"GGD Groningen" in raw  # the dump does hold the installations and the mail's row
    assert_not_stored(raw, [*tokens, code])

    # The mail goes out with the code; its outbox row keeps no copy, sealed or not.
    assert mailed_code(synced_engine, tmp_path, sink) == code
    [sent] = _rows(synced_engine, KIND)
    assert sent.status == "sent" and SEALED_KEY not in sent.context
    assert_not_stored(raw_database(synced_engine), [*tokens, code])

    # The tokens open with the region's key, and with no other.
    with Session(synced_engine) as session:
        rows = session.exec(select(SlackInstallation)).all()
        assert sorted(bot_token(TEST_KEYRING, row) for row in rows) == sorted(tokens)
        other = KeyRing.of(b"another region's key, long enough to be one")
        for row in rows:
            with pytest.raises(SystemError_, match="niet bekend"):
                bot_token(other, row)

    if synced_engine.dialect.name == "sqlite":  # PostgreSQL is backed up with pg_dump
        copy = tmp_path / "backup.db"
        backup(synced_engine.url.render_as_string(hide_password=False), copy)
        assert_not_stored(copy.read_bytes(), [*tokens, code])


def test_the_installation_store_and_proactive_linking_get_the_token_opened(
    synced_engine: Engine,
) -> None:
    token = "xoxb-ggd-9-geheim"
    row = SlackInstallation(
        workspace_key="", team_id=GGD_TEAM, team_name="GGD Groningen", bot_token_sealed=b""
    )
    run_in_transaction(
        synced_engine, lambda s: save_installation(s, TEST_KEYRING, row, token=token)
    )
    assert token.encode() not in raw_database(synced_engine)

    store = DatabaseInstallationStore(synced_engine, TEST_KEYRING)
    bot = asyncio.run(store.async_find_bot(enterprise_id=None, team_id=GGD_TEAM))
    found = asyncio.run(store.async_find_installation(enterprise_id=None, team_id=GGD_TEAM))
    assert bot is not None and bot.bot_token == token
    assert found is not None and found.bot_token == token

    template = AsyncWebClient(base_url="http://127.0.0.1:9/")  # no call is made
    linker = ProactiveLinker(synced_engine, template, distributed=True, ring=TEST_KEYRING)
    [workspace] = asyncio.run(linker.workspaces())
    assert (workspace.team_id, workspace.client.token) == (GGD_TEAM, token)
    with pytest.raises(ValueError, match="key ring"):
        ProactiveLinker(synced_engine, template, distributed=True)
