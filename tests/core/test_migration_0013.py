"""Revision 0013 seals the Slack secrets already stored: each installation's bot token (the clear
column goes), and the link code of a ``slack-koppelcode`` mail still waiting in the outbox (one
already sent loses its code). It needs the region's key for that and changes nothing without it;
its downgrade unseals (with the key)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import inspect

from core.db import create_db_engine
from core.migrations import alembic_config, current_revision, head_revision, upgrade_database
from core.outbox import SEALED_KEY
from core.outbox_secrets import opened_context
from core.sealing import sealed_key_id
from core.slack_installations import token_sealer
from tests.conftest import TEST_KEYRING

TOKEN = "xoxb-1111-2222-geheimtoken"
WAITING_CODE, SENT_CODE = "27182818", "16180339"
AT = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)

installation = sa.table(
    "slackinstallation",
    *(sa.column(name) for name in ("id", "workspace_key", "team_id", "team_name", "bot_scopes")),
    sa.column("is_enterprise_install", sa.Boolean),
    sa.column("installed_at", sa.DateTime(timezone=True)),
    sa.column("bot_token", sa.String),
    sa.column("bot_token_sealed", sa.LargeBinary),
)
outbox = sa.table(
    "outboxmessage",
    *(
        sa.column(name)
        for name in (
            "id",
            "idempotency_key",
            "kind",
            "channel",
            "recipient",
            "recipient_role",
            "reference",
            "status",
            "attempts",
        )
    ),
    sa.column("context", sa.JSON),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("next_attempt_at", sa.DateTime(timezone=True)),
)


def _mail(outbox_id: int, status: str, code: str) -> dict[str, Any]:
    return {
        "id": outbox_id,
        "idempotency_key": f"slack-koppelcode:K-{outbox_id}",
        "kind": "slack-koppelcode",
        "channel": "email",
        "recipient": "k.bakker@jeugdhulp-noord.example",
        "recipient_role": "professional",
        "reference": f"K-{outbox_id}",
        "status": status,
        "attempts": 0 if status == "pending" else 1,
        "context": {"code": code, "minutes": 15, "workspace": "GGD Groningen"},
        "created_at": AT,
        "next_attempt_at": AT,
    }


def _contexts(connection: sa.engine.Connection) -> dict[int, dict[str, Any]]:
    rows = connection.execute(sa.select(outbox.c.id, outbox.c.context).order_by(outbox.c.id))
    return {row.id: row.context for row in rows}


def test_0013_seals_the_stored_tokens_and_waiting_codes_and_its_downgrade_unseals(
    database_url: str,
) -> None:
    upgrade_database(database_url, "0012")
    engine = create_db_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                installation.insert().values(
                    id=1,
                    workspace_key="-:T0GGD0001",
                    team_id="T0GGD0001",
                    team_name="GGD Groningen",
                    bot_scopes="commands",
                    is_enterprise_install=False,
                    installed_at=AT,
                    bot_token=TOKEN,
                )
            )
            connection.execute(
                outbox.insert(), [_mail(1, "pending", WAITING_CODE), _mail(2, "sent", SENT_CODE)]
            )

        with pytest.raises(RuntimeError, match="needs the region's key"):
            upgrade_database(database_url)  # without the key: nothing changes
        assert current_revision(database_url) == "0012"

        assert upgrade_database(database_url, keyring=TEST_KEYRING) == head_revision()
        with engine.connect() as connection:
            columns = {c["name"] for c in inspect(connection).get_columns("slackinstallation")}
            [sealed] = connection.execute(sa.select(installation.c.bot_token_sealed)).scalars()
            waiting, sent = _contexts(connection).values()
        assert "bot_token" not in columns
        assert TOKEN.encode() not in bytes(sealed)
        assert sealed_key_id(bytes(sealed)) == TEST_KEYRING.current.id
        assert token_sealer(TEST_KEYRING).open(bytes(sealed)).decode() == TOKEN
        assert "code" not in waiting and WAITING_CODE not in repr(waiting)
        assert opened_context(TEST_KEYRING, waiting) == {
            "code": WAITING_CODE,
            "minutes": 15,
            "workspace": "GGD Groningen",
        }
        assert sent == {"minutes": 15, "workspace": "GGD Groningen"}  # no copy of a sent code

        command.downgrade(alembic_config(database_url, keyring=TEST_KEYRING), "0012")
        with engine.connect() as connection:
            [token] = connection.execute(sa.select(installation.c.bot_token)).scalars()
            waiting, sent = _contexts(connection).values()
        assert token == TOKEN
        assert waiting["code"] == WAITING_CODE and SEALED_KEY not in waiting
        assert "code" not in sent
    finally:
        engine.dispose()
