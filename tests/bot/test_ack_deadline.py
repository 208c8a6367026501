"""Slack waits 3 seconds for an answer, and a ``trigger_id`` lasts as long (issue 12.8): with the
fake Web API scripted to be slow, nothing on the acknowledgement's path waits for ``users.info``
longer than the identity's ``lookup_timeout``. A known link carries on (the check goes on in the
background and is cached), a link in the second half of its life is refreshed in the background,
and someone not known yet is told at once and known at the next request."""

from __future__ import annotations

import time
from datetime import date

import pytest

from bot.identity import SlackIdentity
from tests.bot.conftest import ANNA, RunningSlack, SlackSender, user
from tests.bot.fake_slack_api import FakeSlackApi
from tests.bot.forms import form_values, open_signal_form, signal_fields, submit_view
from tests.bsns import valid_bsns

TODAY = date.today()
BIRTH = date(TODAY.year - 12, 6, 9)
BSN = valid_bsns(1, start_prefix=22_360_679)[0]
SLOW = 3.5  # seconds: longer than Slack waits
TTL = 600.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(slack: RunningSlack) -> Clock:
    """The running bot's identity cache on a clock the test moves."""
    clock = Clock()
    bot = slack.bot
    bot.identity = SlackIdentity(bot.engine, region=bot.region, ttl=TTL, clock=clock)
    return clock


def command(sender: SlackSender, api: FakeSlackApi, text: str) -> tuple[str, float]:
    """``/verwijsindex text`` by Anna: the answer, and how long after the request it came."""
    before = len(api.calls_to("response_url"))
    sent = time.monotonic()
    assert sender.command("/verwijsindex", text, ANNA).status == 200
    answer = api.wait_for("response_url", before + 1, timeout=10)[-1]
    return str(answer.args["text"]), answer.at - sent


def users_info_answered(api: FakeSlackApi, count: int) -> None:
    api.wait_for("users.info", count, timeout=SLOW + 5)


def test_a_submission_is_answered_in_time_while_slack_is_slow(
    sender: SlackSender, slack_api: FakeSlackApi, clock: Clock
) -> None:
    view = open_signal_form(sender, slack_api, ANNA)  # Anna is known now
    clock.now += TTL + 1  # ... and her link's time is up when she submits
    slack_api.delay("users.info", SLOW)
    payload = sender.view_submission(view, form_values(view, signal_fields(BSN, BIRTH)), ANNA)
    answer = submit_view(sender, slack_api, payload)
    assert answer.status == 200 and answer.body == ""  # the modal closes: the signal is stored
    assert answer.seconds < 2.8, f"answered after {answer.seconds:.1f} s"  # Slack: 3 s
    confirmation = str(slack_api.calls_to("response_url")[-1].args["text"])
    assert confirmation.startswith(":white_check_mark: Signaal")
    users_info_answered(slack_api, 2)  # the check went on in the background


def test_someone_not_known_yet_is_told_at_once_and_known_next_time(
    sender: SlackSender, slack_api: FakeSlackApi, clock: Clock
) -> None:
    slack_api.delay("users.info", SLOW)
    text, after = command(sender, slack_api, "mijn")
    assert text.startswith("Sorry, Slack is op dit moment niet bereikbaar")
    assert after < 2.5, f"answered after {after:.1f} s"
    users_info_answered(slack_api, 1)  # Slack did answer, later: the answer was kept
    text, after = command(sender, slack_api, "mijn")
    assert text.startswith("*Uw werk in de verwijsindex*")
    assert len(slack_api.calls_to("users.info")) == 1  # no second call: it was cached


def test_a_link_past_half_its_life_is_refreshed_in_the_background(
    sender: SlackSender, slack_api: FakeSlackApi, clock: Clock
) -> None:
    text, _ = command(sender, slack_api, "mijn")
    assert text.startswith("*Uw werk in de verwijsindex*")
    # Later Anna's account is deactivated; Slack is slow to say so.
    slack_api.add_user(user(ANNA), ANNA, deleted=True)
    slack_api.delay("users.info", SLOW)
    clock.now += TTL * 0.6
    text, after = command(sender, slack_api, "mijn")
    assert text.startswith("*Uw werk in de verwijsindex*")  # served from the cache at once
    assert after < 1.5, f"answered after {after:.1f} s"
    users_info_answered(slack_api, 2)
    refused = "Sorry, dit Slack-account is gedeactiveerd en kan de verwijsindex niet gebruiken."
    deadline = time.monotonic() + 5  # the bot still stores what Slack answered
    while (text := command(sender, slack_api, "mijn")[0]) != refused:
        assert time.monotonic() < deadline, "the refreshed link was never used"
        time.sleep(0.1)
    assert len(slack_api.calls_to("users.info")) == 2


def test_the_form_opens_within_the_trigger_ids_3_seconds_while_slack_is_slow(
    sender: SlackSender, slack_api: FakeSlackApi, clock: Clock
) -> None:
    command(sender, slack_api, "mijn")
    clock.now += TTL + 1
    slack_api.delay("users.info", SLOW)
    sent = time.monotonic()
    assert sender.command("/signaal", "", ANNA).status == 200
    [opened] = slack_api.wait_for("views.open", timeout=5)
    assert opened.at - sent < 2.5, f"views.open after {opened.at - sent:.1f} s"
    users_info_answered(slack_api, 2)
