"""The App Home to work from, through the real Bolt app (signed requests) and the fake Slack Web
API: its buttons open the signal form and the absence form; an absence declared there is
stored; what awaits the user's answer comes first, each item with the notifications' own
buttons, which work from the Home; long lists come in pages of 20, each under 100 blocks."""

from __future__ import annotations

import json
import time
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.home import PAGE_SIZE
from core.absence import declare_absence
from core.audit import Actor
from core.config import CoreConfig
from core.models import (
    Absence,
    Coordination,
    CoordinationStatus,
    MatchMember,
    Professional,
    Signal,
    TransferRequest,
    TransferStatus,
)
from core.registration import RegisterYouth, register_youth
from core.signals import PlaceSignal, place_signal
from core.transfer import request_transfer
from tests.bot.conftest import (
    ANNA,
    EVA,
    KARIN,
    PIETER,
    RUUD,
    SANNE,
    TEAM_ID,
    THIJS,
    WENDY,
    RunningSlack,
    SlackSender,
    user,
)
from tests.bot.fake_slack_api import FakeSlackApi
from tests.bsns import valid_bsns
from tests.core.conftest import CoreDriver, youth
from tests.mail_gateway.conftest import wait_until

BSNS = valid_bsns(46, start_prefix=27_182_818)
TEN_YEARS_OLD = date(date.today().year - 10, 3, 14)  # in the city of Groningen: WIJ coordinates


@pytest.fixture
def core(synced_engine: Engine, config: CoreConfig) -> CoreDriver:
    return CoreDriver(synced_engine, config)


# --- driving the Home -------------------------------------------------------------------------


def open_home(sender: SlackSender, api: FakeSlackApi, email: str) -> dict[str, Any]:
    """``app_home_opened`` for ``email``; the view the app published."""
    before = len(_published(api, email))
    answer = sender.event(
        {"type": "app_home_opened", "user": user(email), "channel": "D0HOME", "tab": "home"}
    )
    assert answer.status == 200
    return wait_for_publish(api, email, before)


def _published(api: FakeSlackApi, email: str) -> list[dict[str, Any]]:
    return [
        call.args["view"]
        for call in api.calls_to("views.publish", succeeded=True)
        if call.args.get("user_id") == user(email)
    ]


def wait_for_publish(api: FakeSlackApi, email: str, before: int) -> dict[str, Any]:
    views = wait_until(lambda: _published(api, email)[before:], what=f"views.publish for {email}")
    return views[-1]


def press_on_home(
    sender: SlackSender, email: str, view: dict[str, Any], action_id: str, value: str
) -> None:
    """Press a button of a published Home view, as Slack sends it (a view container)."""
    payload = {
        "type": "block_actions",
        "team": {"id": TEAM_ID, "domain": "verwijsindex-test"},
        "user": {"id": user(email), "team_id": TEAM_ID},
        "api_app_id": "A0VERWIJS",
        "trigger_id": sender.next_id("trigger."),
        "container": {"type": "view", "view_id": "VHOME0001"},
        "view": {**view, "id": "VHOME0001", "team_id": TEAM_ID, "hash": "h"},
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "b",
                "value": value,
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    assert sender.interact(payload).status == 200


def buttons(view: dict[str, Any]) -> list[tuple[str, str]]:
    """(action id, value) of every button, top to bottom."""
    return [
        (element["action_id"], element.get("value", ""))
        for block in view["blocks"]
        if block.get("type") == "actions"
        for element in block["elements"]
    ]


def value_of(view: dict[str, Any], action_id: str) -> str:
    found = [value for action, value in buttons(view) if action == action_id]
    assert found, f"no {action_id} button in {buttons(view)}"
    return found[0]


def texts(view: dict[str, Any]) -> str:
    found: list[str] = []
    for block in view["blocks"]:
        text = block.get("text")
        if isinstance(text, dict):
            found.append(str(text.get("text", "")))
        for element in block.get("elements") or []:
            if isinstance(element, dict) and isinstance(element.get("text"), str):
                found.append(element["text"])
    return "\n".join(found)


def opened(api: FakeSlackApi, count: int) -> dict[str, Any]:
    return api.wait_for("views.open", count)[-1].args["view"]


# --- the core's state, as a transport's command would make it -------------------------------


def register(core: CoreDriver, institution: str, bsn: str, reference: str) -> None:
    registration = RegisterYouth(youth(bsn, TEN_YEARS_OLD), "Groningen", reference)
    by = core.institution(institution)
    core.run(
        lambda session: register_youth(registration, session=session, config=core.config, actor=by)
    )


def signal(core: CoreDriver, email: str, bsn: str, informed: str = "ja", **options: Any) -> None:
    placing = PlaceSignal(youth(bsn, TEN_YEARS_OLD), "Groningen", "laag", informed, **options)
    by: Actor = core.professional(email, "slack")
    core.run(lambda session: place_signal(placing, session=session, config=core.config, actor=by))


@pytest.fixture
def matched(core: CoreDriver) -> CoreDriver:
    """GGD and WIJ register a child, Anna (GGD) and Sanne (WIJ) signal it: match M-1 and
    coordination C-1 for WIJ."""
    register(core, "ggd-groningen", BSNS[0], "GGD-7")
    register(core, "wij-groningen", BSNS[0], "WIJ-8")
    signal(core, ANNA, BSNS[0])
    signal(core, SANNE, BSNS[0])
    return core


# --- the two buttons on top -------------------------------------------------------------------


def test_signaal_afgeven_opens_the_signal_form_of_the_slash_command(
    sender: SlackSender, slack_api: FakeSlackApi
) -> None:
    home = open_home(sender, slack_api, EVA)
    assert buttons(home)[:2] == [("signaal_formulier", "{}"), ("afwezigheid_melden", "melden")]
    press_on_home(sender, EVA, home, "signaal_formulier", "{}")
    form = opened(slack_api, 1)
    assert form["callback_id"] == "signaal"
    sender.command("/signaal", "", EVA)
    slash = opened(slack_api, 2)
    assert [b.get("block_id") for b in form["blocks"]] == [
        b.get("block_id") for b in slash["blocks"]
    ]


def test_an_absence_declared_from_the_home_is_stored(
    sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine, config: CoreConfig
) -> None:
    home = open_home(sender, slack_api, ANNA)
    assert "u bent niet afwezig gemeld" in texts(home)
    press_on_home(sender, ANNA, home, "afwezigheid_melden", "melden")
    form = opened(slack_api, 1)
    assert form["callback_id"] == "afwezigheid"
    assert [b["block_id"] for b in form["blocks"] if b["type"] == "input"] == [
        "van",
        "tot",
        "vervanger",
    ]
    today = config.today()

    def values(starts: date, ends: date, stand_in: str | None) -> dict[str, Any]:
        chosen = {"collega": {"type": "users_select", "selected_user": stand_in}}
        return {
            "van": {"datum": {"type": "datepicker", "selected_date": starts.isoformat()}},
            "tot": {"datum": {"type": "datepicker", "selected_date": ends.isoformat()}},
            "vervanger": chosen,
        }

    # An end before the start: said on the field, nothing stored.
    refused = sender.interact(
        sender.view_submission(form, values(today, today - timedelta(days=1), None), ANNA)
    )
    assert refused.json()["response_action"] == "errors"
    assert "einddatum ligt voor de begindatum" in refused.json()["errors"]["tot"]
    # A stand-in of another institution: said on the stand-in's field.
    refused = sender.interact(
        sender.view_submission(form, values(today, today + timedelta(days=9), user(SANNE)), ANNA)
    )
    assert "dezelfde instelling" in refused.json()["errors"]["vervanger"]
    with Session(synced_engine) as session:
        assert session.exec(select(Absence)).all() == []

    before = len(_published(slack_api, ANNA))
    submission = sender.view_submission(
        form, values(today, today + timedelta(days=9), user(PIETER)), ANNA
    )
    answer = sender.interact(submission)
    assert answer.status == 200 and "errors" not in answer.json()
    with Session(synced_engine) as session:
        [absence] = session.exec(select(Absence)).all()
        pieter = session.exec(select(Professional).where(Professional.email == PIETER)).one()
        anna = session.exec(select(Professional).where(Professional.email == ANNA)).one()
    assert (absence.professional_id, absence.stand_in_id) == (anna.id, pieter.id)
    assert (absence.starts_on, absence.ends_on) == (today, today + timedelta(days=9))
    refreshed = wait_for_publish(slack_api, ANNA, before)
    assert "Uw afwezigheid van" in texts(refreshed) and "is vastgelegd" in texts(refreshed)
    assert ":palm_tree: *U bent afwezig*" in texts(refreshed)
    # Slack's retry of the same submission declares nothing twice.
    sender.interact(submission)
    with Session(synced_engine) as session:
        assert len(session.exec(select(Absence)).all()) == 1


# --- awaiting an answer: first, with the notifications' buttons -------------------------------


def test_a_coordination_to_accept_comes_first_and_its_button_works(
    matched: CoreDriver, sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    home = open_home(sender, slack_api, SANNE)
    text = texts(home)
    assert text.index("Wacht op uw antwoord (2)") < text.index("Mijn actieve signalen")
    assert text.index("*Procescoördinatie C-1*") < text.index("*Match M-1*")
    actions = [action for action, _ in buttons(home)]
    assert actions[2:7] == [
        "antwoord_akkoord",
        "antwoord_weiger",
        "antwoord_overdragen",  # GGD is involved too and may coordinate
        "antwoord_contact",
        "toestemming_gevraagd",
    ]
    # The buttons ask first, as on the DM (CONTRACT §5).
    accept = next(
        e
        for block in home["blocks"]
        if block["type"] == "actions"
        for e in block["elements"]
        if e["action_id"] == "antwoord_akkoord"
    )
    assert accept["confirm"]["confirm"]["text"] == "Accepteren"
    block_ids = [b["block_id"] for b in home["blocks"] if "block_id" in b]
    assert len(block_ids) == len(set(block_ids))

    before = len(_published(slack_api, SANNE))
    press_on_home(sender, SANNE, home, "antwoord_akkoord", value_of(home, "antwoord_akkoord"))
    refreshed = wait_for_publish(slack_api, SANNE, before)
    with Session(synced_engine) as session:
        coordination = session.exec(select(Coordination)).one()
    assert coordination.status == CoordinationStatus.ACCEPTED
    assert "Sanne Jansen" in texts(refreshed)  # the notice: who answered, and how
    assert "Wacht op uw antwoord (1)" in texts(refreshed)
    assert "antwoord_akkoord" not in [action for action, _ in buttons(refreshed)]
    assert "*C-1* · uw instelling is procescoördinator" in texts(refreshed)


def test_declining_from_the_home_asks_the_reason_and_refreshes_it(
    matched: CoreDriver, sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    home = open_home(sender, slack_api, SANNE)
    press_on_home(sender, SANNE, home, "antwoord_weiger", value_of(home, "antwoord_weiger"))
    modal = opened(slack_api, 1)
    assert modal["callback_id"] == "antwoord_weiger_reden"
    before = len(_published(slack_api, SANNE))
    values = {"reden": {"waarde": {"type": "plain_text_input", "value": "Geen capaciteit"}}}
    sender.interact(sender.view_submission(modal, values, SANNE))
    refreshed = wait_for_publish(slack_api, SANNE, before)
    with Session(synced_engine) as session:
        coordination = session.exec(select(Coordination)).one()
    assert coordination.institution_id != "wij-groningen"
    assert "antwoord_weiger" not in [action for action, _ in buttons(refreshed)]


def test_match_contact_and_consent_from_the_home(
    matched: CoreDriver, sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    home = open_home(sender, slack_api, ANNA)
    assert "Wacht op uw antwoord (1)" in texts(home)
    before = len(_published(slack_api, ANNA))
    press_on_home(sender, ANNA, home, "antwoord_contact", value_of(home, "antwoord_contact"))
    after_contact = wait_for_publish(slack_api, ANNA, before)
    with Session(synced_engine) as session:
        anna = session.exec(select(Professional).where(Professional.email == ANNA)).one()
        mine = session.exec(
            select(MatchMember).join(Signal).where(Signal.professional_id == anna.id)
        ).one()
    assert mine.contact_confirmed_at is not None
    # Consent is still to record: the match stays, with only its consent buttons.
    actions = [action for action, _ in buttons(after_contact)]
    assert "antwoord_contact" not in actions and "toestemming_gegeven" in actions
    before = len(_published(slack_api, ANNA))
    press_on_home(
        sender, ANNA, after_contact, "toestemming_gegeven",
        value_of(after_contact, "toestemming_gegeven"),
    )  # fmt: skip
    after_consent = wait_for_publish(slack_api, ANNA, before)
    assert "Vastgelegd: toestemming gegeven voor GGD Groningen bij M-1" in texts(after_consent)
    assert "Er wacht niets op uw antwoord." in texts(after_consent)
    assert "Mijn matches (1)" in texts(after_consent)


def test_informing_to_record_and_a_transfer_to_carry_out(
    core: CoreDriver, sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    signal(core, EVA, BSNS[1], informed="uitgesteld", postpone_reason="veiligheid")
    wendy = core.professional(WENDY)
    core.run(
        lambda session: request_transfer(
            EVA, THIJS, KARIN, session=session, config=core.config, actor=wendy
        )
    )
    # Eva: the signal to inform about, with the reminder's button.
    eva_home = open_home(sender, slack_api, EVA)
    assert "Wacht op uw antwoord (1)" in texts(eva_home)
    before = len(_published(slack_api, EVA))
    press_on_home(
        sender, EVA, eva_home, "antwoord_geinformeerd", value_of(eva_home, "antwoord_geinformeerd")
    )
    wait_for_publish(slack_api, EVA, before)
    with Session(synced_engine) as session:
        assert session.exec(select(Signal)).one().informed == "ja"
    # Ruud (institution-admin): the transfer request, with the button that executes it.
    ruud_home = open_home(sender, slack_api, RUUD)
    assert "*Verzoek om overdracht T-1*" in texts(ruud_home)
    assert value_of(ruud_home, "overdracht_uitvoeren") == "T-1"
    press_on_home(sender, RUUD, ruud_home, "overdracht_uitvoeren", "T-1")

    def executed() -> bool:
        with Session(synced_engine) as session:
            transfer = session.exec(select(TransferRequest)).one()
            return transfer.status == TransferStatus.EXECUTED

    wait_until(executed, what="the transfer executed")
    # Eva, who only may signal, sees no transfer to carry out.
    assert "overdracht_uitvoeren" not in [a for a, _ in buttons(open_home(sender, slack_api, EVA))]


def test_a_stand_in_answers_for_the_absent_colleague(
    matched: CoreDriver, sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    anna = matched.professional(ANNA)
    today = matched.config.today()
    matched.run(
        lambda session: declare_absence(
            ANNA, today, today + timedelta(days=5), PIETER,
            session=session, config=matched.config, actor=anna,
        )
    )  # fmt: skip
    home = open_home(sender, slack_api, PIETER)
    assert ":busts_in_silhouette: voor Anna de Vries · *Match M-1*" in texts(home)
    before = len(_published(slack_api, PIETER))
    press_on_home(sender, PIETER, home, "antwoord_contact", value_of(home, "antwoord_contact"))
    wait_for_publish(slack_api, PIETER, before)
    with Session(synced_engine) as session:
        confirmed = session.exec(
            select(MatchMember).where(MatchMember.contact_confirmed_at.is_not(None))  # type: ignore[union-attr]
        ).all()
    assert len(confirmed) == 1


# --- paging -----------------------------------------------------------------------------------


def test_45_items_come_in_pages_of_20_20_and_5(
    core: CoreDriver, sender: SlackSender, slack_api: FakeSlackApi, config: CoreConfig
) -> None:
    # Each signal awaits two answers (inform, extend): the heaviest kind of item but a match.
    ends_on = config.today() + timedelta(days=3)
    for bsn in BSNS[:45]:
        signal(core, EVA, bsn, informed="nee", postpone_reason="veiligheid", ends_on=ends_on)
    first = open_home(sender, slack_api, EVA)
    pages = [first]
    while ("home_volgende" in [a for a, _ in buttons(pages[-1])]) and len(pages) < 5:
        before = len(_published(slack_api, EVA))
        press_on_home(sender, EVA, pages[-1], "home_volgende", value_of(pages[-1], "home_volgende"))
        pages.append(wait_for_publish(slack_api, EVA, before))
    counts = [sum(1 for a, _ in buttons(page) if a == "antwoord_geinformeerd") for page in pages]
    assert counts == [PAGE_SIZE, PAGE_SIZE, 5]
    assert [len(page["blocks"]) < 100 for page in pages] == [True, True, True]
    assert "Onderdeel 1–20 van 45" in texts(pages[0])
    assert "Onderdeel 21–40 van 45" in texts(pages[1])
    assert "Onderdeel 41–45 van 45" in texts(pages[2])
    assert "home_vorige" not in [a for a, _ in buttons(pages[0])]
    # Every signal shown, none left out between the pages.
    shown = [json.dumps(page["blocks"], ensure_ascii=False) for page in pages]
    assert all(f"*S-{n}*" in "".join(shown) for n in range(1, 46))
    # Back from the last page; a press on a page keeps the page (its private_metadata).
    before = len(_published(slack_api, EVA))
    press_on_home(sender, EVA, pages[2], "home_vorige", value_of(pages[2], "home_vorige"))
    back = wait_for_publish(slack_api, EVA, before)
    assert "Onderdeel 21–40 van 45" in texts(back)
    before = len(_published(slack_api, EVA))
    press_on_home(
        sender, EVA, back, "antwoord_geinformeerd", value_of(back, "antwoord_geinformeerd")
    )
    after = wait_for_publish(slack_api, EVA, before)
    assert "van 45" in texts(after) and "Onderdeel 21–40" in texts(after)


def test_someone_not_in_the_covenant_sees_a_refusal(
    slack: RunningSlack, sender: SlackSender, slack_api: FakeSlackApi
) -> None:
    sender.event({"type": "app_home_opened", "user": "USTRANGER", "tab": "home"})
    [call] = slack_api.wait_for("views.publish")
    assert call.args["user_id"] == "USTRANGER"
    assert "signaal_formulier" not in json.dumps(call.args["view"])
