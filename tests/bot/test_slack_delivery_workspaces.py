"""Slack's rate limits are per workspace (per token): a 429 from one workspace pauses only that
workspace's messages (issue 12, item 4). Two workspaces are installed through the real OAuth
endpoints; the fake Web API answers ``chat.postMessage`` with HTTP 429 and ``Retry-After`` for
the GGD's token only: the other workspace's DM goes out at once, the GGD's after the pause, and
the pause is counted in ``/metrics``."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.absence import declare_absence
from core.actors import professional_actor
from core.clock import local_date, utcnow
from core.config import CoreConfig
from core.db import run_in_transaction
from core.models import Professional
from tests.bot.conftest import ANNA, EVA, RunningSlack, user
from tests.bot.fake_slack_api import Call, FakeSlackApi
from tests.bot.test_workspaces import (  # noqa: F401  (fixtures)
    GGD_TEAM,
    JHN_TEAM,
    distributed,
    install,
    workspaces,
)
from tests.mail_gateway.conftest import wait_until

RETRY_AFTER = 4  # seconds


def _link(engine: Engine, email: str, team_id: str) -> None:
    with Session(engine) as session:
        person = session.exec(select(Professional).where(Professional.email == email)).one()
        person.slack_user_id, person.slack_team_id = user(email), team_id
        session.add(person)
        session.commit()


def _absent(engine: Engine, config: CoreConfig, email: str) -> None:
    """``email`` declares an absence: an ``afwezigheid`` DM to them."""
    today = local_date(utcnow(), config.tz)

    def declare(session: Session) -> Any:
        person = session.exec(select(Professional).where(Professional.email == email)).one()
        return declare_absence(
            email,
            today,
            today + timedelta(days=3),
            None,
            session=session,
            config=config,
            actor=professional_actor(person, "cli"),
        )

    run_in_transaction(engine, declare)


def _posts(api: FakeSlackApi, token: str) -> list[Call]:
    return [c for c in api.calls_to("chat.postMessage") if c.token == token]


def _pauses() -> float:
    return REGISTRY.get_sample_value("verwijsindex_slack_rate_limit_pauses_total") or 0.0


def test_a_429_from_one_workspace_holds_back_only_that_workspaces_messages(
    distributed: RunningSlack,  # noqa: F811
    slack_api: FakeSlackApi,
    workspaces: dict[str, Any],  # noqa: F811
    synced_engine: Engine,
    config: CoreConfig,
) -> None:
    ggd, jhn = workspaces["ggd"], workspaces["jhn"]
    install(distributed, slack_api, ggd, user(ANNA))
    install(distributed, slack_api, jhn, user(EVA))
    _link(synced_engine, ANNA, GGD_TEAM)
    _link(synced_engine, EVA, JHN_TEAM)
    pauses = _pauses()
    slack_api.rate_limit("chat.postMessage", 1, retry_after=RETRY_AFTER, token=ggd.bot_token)

    _absent(synced_engine, config, ANNA)
    distributed.bot.outbox_waiting.set()
    [limited] = wait_until(lambda: _posts(slack_api, ggd.bot_token), what="the GGD's 429")
    assert limited.status == 429 and limited.args["channel"] == user(ANNA)

    # Meanwhile the other workspace's DM goes out at once.
    _absent(synced_engine, config, EVA)
    distributed.bot.outbox_waiting.set()
    [to_eva] = wait_until(lambda: _posts(slack_api, jhn.bot_token), what="Eva's DM")
    assert to_eva.ok and to_eva.args["channel"] == user(EVA)
    assert to_eva.at - limited.at < RETRY_AFTER - 1

    # The GGD's DM after its Retry-After, once.
    deadline = time.monotonic() + 30  # a loaded machine
    while len(_posts(slack_api, ggd.bot_token)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    limited_again, to_anna = _posts(slack_api, ggd.bot_token)
    assert limited_again == limited
    assert to_anna.ok and to_anna.args["channel"] == user(ANNA)
    assert to_anna.at - limited.at >= RETRY_AFTER - 0.05
    assert _pauses() == pauses + 1
    time.sleep(0.5)
    assert len(_posts(slack_api, ggd.bot_token)) == 2 and len(_posts(slack_api, jhn.bot_token)) == 1
