"""A move in Slack (issue 11.5): after a youth moves, the institution the new municipality's
rules pick gets the coordinatie-overname in its channel with Akkoord and Weigeren (no hand-over);
pressing Akkoord through the real Bolt endpoint moves the coordination to it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.actors import institution_actor
from core.config import CoreConfig
from core.db import run_in_transaction
from core.identity import YouthIdentity
from core.models import Coordination, CoordinationStatus, Institution
from core.registration import RegisterYouth, register_youth
from tests.bot.conftest import WIJ_CHANNEL, SlackSender
from tests.bot.fake_slack_api import FakeSlackApi
from tests.bot.privacy import assert_no_identity, identity_needles
from tests.bot.test_answers import (  # noqa: F401  (fixtures: the running bot, two signals)
    BIRTH,
    BSN,
    _buttons,
    matched,
    press,
    running,
    sender,
    wait_for_message,
)
from tests.mail_gateway.conftest import wait_until

LOTTE = "l.hoekstra@sociaalteam-westerkwartier.example"
LOTTE_ID = "ULOTTE001"
STW_CHANNEL = "CSTW00001"


def test_the_new_municipalitys_coordinator_takes_over_by_button(
    matched: SlackSender,  # noqa: F811
    slack_api: FakeSlackApi,
    synced_engine: Engine,
    config: CoreConfig,
) -> None:
    slack_api.add_user(LOTTE_ID, LOTTE, name="l.hoekstra")
    with Session(synced_engine) as session:
        institution = session.get(Institution, "sociaal-team-westerkwartier")
        assert institution is not None
        institution.slack_channel = STW_CHANNEL
        session.add(institution)
        session.commit()
    wait_for_message(slack_api, WIJ_CHANNEL, "antwoord_akkoord")  # WIJ Groningen was asked

    moved = RegisterYouth(YouthIdentity(bsn=BSN, birth_date=BIRTH), "Westerkwartier", "JHN-1")
    actor = institution_actor("jeugdhulp-noord", "smtp")
    run_in_transaction(
        synced_engine,
        lambda s: register_youth(moved, session=s, config=config, actor=actor),
    )
    asked = wait_for_message(slack_api, STW_CHANNEL, "antwoord_akkoord")
    assert set(_buttons(asked)) == {"antwoord_akkoord", "antwoord_weiger"}
    blocks: list[dict[str, Any]] = asked.args["blocks"]
    assert "overnemen" in str(blocks[0])

    press(matched, asked, LOTTE, "antwoord_akkoord", user_id=LOTTE_ID)

    def taken_over() -> Coordination | None:
        with Session(synced_engine) as session:
            coordination = session.exec(select(Coordination)).one()
        accepted = coordination.status == CoordinationStatus.ACCEPTED
        return coordination if accepted else None

    coordination = wait_until(taken_over, what="coordination taken over")
    assert coordination.institution_id == "sociaal-team-westerkwartier"
    assert coordination.accepted_by == LOTTE
    assert assert_no_identity(slack_api, identity_needles([BSN], [BIRTH], ["Fenna Testkind"])) > 0
