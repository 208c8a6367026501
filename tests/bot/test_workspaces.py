"""A distributed app (issue 12.1, 12.2; CONTRACT §5): installed into two fake workspaces through
the real OAuth endpoints (``/slack/install``, ``/slack/oauth_redirect``, ``oauth.v2.access``),
each professional reaches the bot and gets their DMs through their own workspace's token, an
uninstall moves that workspace's people to mail, and a Slack Connect guest whose address Slack
hides links themselves with a code mailed to their covenant address (through the real mail
delivery worker, to an aiosmtpd relay on loopback)."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.models import AuditEvent, OutboxMessage, Professional, Signal, SlackInstallation
from core.outbox import SEALED_KEY
from core.scheduler import sweep
from core.slack_installations import bot_token
from tests.bot.conftest import ANNA, EVA, KARIN, RunningSlack, SlackAnswer, SlackSender, user
from tests.bot.fake_slack_api import FakeSlackApi
from tests.bot.forms import form_values, last_opened_view, signal_fields
from tests.bot.privacy import assert_no_identity, identity_needles
from tests.bsns import valid_bsns
from tests.conftest import TEST_KEYRING
from tests.mail_gateway.relay_sink import RelaySink
from tests.mail_gateway.test_delivery import delivery_for

CLIENT_ID = "1234567890.0987654321"
CLIENT_SECRET = "oauth-client-secret-for-tests"
GGD_TEAM, JHN_TEAM = "T0GGD0001", "T0JHN0001"
GUEST = "W0KARIN01"  # Karin of Jeugdhulp Noord, a Slack Connect guest in the GGD's workspace
BSN = valid_bsns(1, start_prefix=16_180_339)[0]
BIRTH = datetime.now(UTC).date().replace(year=datetime.now(UTC).year - 9, month=3, day=2)
NAME = "Fenna Testkind"


class WorkspaceSender(SlackSender):
    """Slack's requests from one workspace: its team id in every payload."""

    def __init__(self, url: str, api: FakeSlackApi, team_id: str) -> None:
        super().__init__(url, api)
        self.team_id = team_id

    def next_id(self, prefix: str) -> str:
        # Unique across the workspaces' senders too (trigger and view ids are Slack's, global).
        return super().next_id(f"{prefix}{self.team_id}")

    def command(  # type: ignore[override]
        self, name: str, text: str, user_id: str
    ) -> SlackAnswer:
        fields = {
            "team_id": self.team_id,
            "channel_id": "CGENERAL1",
            "user_id": user_id,
            "command": name,
            "text": text,
            "api_app_id": "A0VERWIJS",
            "response_url": self.api.response_url(self.next_id("cmd")),
            "trigger_id": self.next_id("trigger."),
        }
        return self.post(urlencode(fields), "application/x-www-form-urlencoded")

    def submission(self, view: dict[str, Any], values: dict[str, Any], user_id: str) -> Any:
        payload = self.view_submission(view, values, "", user_id=user_id)
        payload["team"] = {"id": self.team_id, "domain": self.team_id.lower()}
        payload["user"]["team_id"] = self.team_id
        payload["view"]["team_id"] = self.team_id
        return payload

    def team_event(self, event: dict[str, Any]) -> SlackAnswer:
        envelope = {
            "team_id": self.team_id,
            "api_app_id": "A0VERWIJS",
            "event": event,
            "type": "event_callback",
            "event_id": self.next_id("Ev"),
            "event_time": int(time.time()),
        }
        return self.post(json.dumps(envelope), "application/json")


@pytest.fixture
def workspaces(slack_api: FakeSlackApi) -> dict[str, Any]:
    slack_api.oauth_client(CLIENT_ID, CLIENT_SECRET)
    ggd = slack_api.add_workspace(GGD_TEAM, name="GGD Groningen")
    jhn = slack_api.add_workspace(JHN_TEAM, name="Jeugdhulp Noord")
    slack_api.add_workspace_user(ggd, user(ANNA), ANNA)
    slack_api.add_workspace_user(jhn, user(EVA), EVA)
    slack_api.add_workspace_user(ggd, GUEST, KARIN, email_hidden=True)
    return {"ggd": ggd, "jhn": jhn}


@pytest.fixture
def distributed(make_slack: Callable[..., RunningSlack]) -> RunningSlack:
    return make_slack(
        with_delivery=True,
        slack_bot_token=None,
        slack_client_id=CLIENT_ID,
        slack_client_secret=CLIENT_SECRET,
    )


@pytest.fixture
def sink() -> Iterator[RelaySink]:
    with RelaySink() as relay:
        yield relay


def mailed_code(engine: Engine, tmp_path: Path, sink: RelaySink, count: int = 1) -> str:
    """Deliver the outbox's mail as the mail gateway does and read the code the newest
    ``slack-koppelcode`` mail carries (the outbox has it sealed only)."""
    assert delivery_for(engine, tmp_path, sink.url).deliver_batch().sent >= 1
    mail = sink.wait_for(count, kind="slack-koppelcode")[-1].message
    text = mail.get_body(("plain",)).get_content()
    found = re.search(r"/verwijsindex koppel (\d{8})", text)
    assert found is not None, text
    return found.group(1)


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, Any]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), error.headers


def install(slack: RunningSlack, api: FakeSlackApi, workspace: Any, installer: str) -> None:
    """What an administrator of the workspace does: open the install page, allow the app on
    Slack's page, come back to the redirect with Slack's code (and the browser's cookie)."""
    base = f"http://127.0.0.1:{slack.bot.settings.slack_port}"
    status, page, headers = _get(base + "/slack/install")
    assert status == 200
    found = re.search(r"https://slack\.com/oauth/v2/authorize\?[^\"']+", page)
    assert found is not None, page
    link = found.group(0).replace("&amp;", "&")
    assert f"client_id={CLIENT_ID}" in link and "users:read.email" in link
    state = re.search(r"state=([A-Za-z0-9_\-]+)", link)
    assert state is not None
    cookie = headers["Set-Cookie"].split(";")[0]
    code = api.authorize_code(workspace, installer)
    query = urlencode({"code": code, "state": state.group(1)})
    status, _, _ = _get(f"{base}/slack/oauth_redirect?{query}", {"Cookie": cookie})
    assert status == 200
    # The state is used up: the same redirect again is refused.
    status, _, _ = _get(f"{base}/slack/oauth_redirect?{query}", {"Cookie": cookie})
    assert status in (400, 401)


def _installations(engine: Engine) -> dict[str | None, SlackInstallation]:
    with Session(engine) as session:
        return {row.team_id: row for row in session.exec(select(SlackInstallation)).all()}


def _professional(engine: Engine, email: str) -> Professional:
    with Session(engine) as session:
        return session.exec(select(Professional).where(Professional.email == email)).one()


def _rows(engine: Engine, kind: str) -> list[OutboxMessage]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(OutboxMessage)
                .where(OutboxMessage.kind == kind)
                .order_by(col(OutboxMessage.id))
            ).all()
        )


def _audit(engine: Engine, action: str) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEvent).where(AuditEvent.action == action)).all())


def _place_signal(sender: WorkspaceSender, api: FakeSlackApi, user_id: str, **fields: str) -> None:
    before = len(api.calls_to("views.open"))
    assert sender.command("/signaal", "", user_id).status == 200
    view = last_opened_view(api, before + 1)
    values = form_values(view, signal_fields(BSN, BIRTH, **fields))
    answered = len(api.calls_to("response_url"))
    assert sender.interact(sender.submission(view, values, user_id)).status == 200
    api.wait_for("response_url", answered + 1)


def _posts_to(api: FakeSlackApi, user_id: str, text: str) -> list[Any]:
    return [
        call
        for call in api.calls_to("chat.postMessage", succeeded=True)
        if call.args.get("channel") in (user_id, f"D{user_id}")  # in a thread: its DM
        and text in str(call.args.get("text", ""))
    ]


def _wait_for_post(api: FakeSlackApi, user_id: str, text: str) -> Any:
    deadline = time.monotonic() + 30  # a loaded machine (CI runs both suites at once)
    while time.monotonic() < deadline:
        found = _posts_to(api, user_id, text)
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no DM to {user_id} with {text!r}")


def test_two_workspaces_installed_by_oauth_each_dm_through_its_own_token(
    distributed: RunningSlack,
    slack_api: FakeSlackApi,
    workspaces: dict[str, Any],
    synced_engine: Engine,
) -> None:
    ggd, jhn = workspaces["ggd"], workspaces["jhn"]
    install(distributed, slack_api, ggd, user(ANNA))
    install(distributed, slack_api, jhn, user(EVA))
    stored = _installations(synced_engine)
    assert {team: bot_token(TEST_KEYRING, row) for team, row in stored.items()} == {
        GGD_TEAM: ggd.bot_token,
        JHN_TEAM: jhn.bot_token,
    }
    assert stored[GGD_TEAM].bot_id == ggd.bot_id and stored[GGD_TEAM].team_name == "GGD Groningen"
    assert len(_audit(synced_engine, "slack-installed")) == 2

    url = distributed.url
    from_ggd = WorkspaceSender(url, slack_api, GGD_TEAM)
    from_jhn = WorkspaceSender(url, slack_api, JHN_TEAM)
    _place_signal(from_ggd, slack_api, user(ANNA))
    _place_signal(from_jhn, slack_api, user(EVA), kenmerk="JHN-5", code="urgent")

    # Each was recognised in (and through) their own workspace.
    for call in slack_api.calls_to("users.info", succeeded=True):
        expected = ggd.bot_token if call.args["user"] == user(ANNA) else jhn.bot_token
        assert call.token == expected
    anna, eva = _professional(synced_engine, ANNA), _professional(synced_engine, EVA)
    assert (anna.slack_team_id, anna.slack_user_id) == (GGD_TEAM, user(ANNA))
    assert (eva.slack_team_id, eva.slack_user_id) == (JHN_TEAM, user(EVA))

    # They match; each gets the match DM with their own workspace's token.
    to_anna = _wait_for_post(slack_api, user(ANNA), "Match M-")
    to_eva = _wait_for_post(slack_api, user(EVA), "Match M-")
    assert to_anna.token == ggd.bot_token
    assert to_eva.token == jhn.bot_token
    assert_no_identity(slack_api, identity_needles([BSN], [BIRTH], [NAME]))

    # The GGD uninstalls the app: its installation and Anna's link go, in the logboek.
    # Slack sends both events; they are handled after the ack, so the second is sent only once
    # the first has done its work: the reason recorded is then known, and the second changes
    # nothing.
    slack_api.revoke_workspace(ggd)
    assert from_ggd.team_event({"type": "app_uninstalled"}).status == 200
    deadline = time.monotonic() + 5
    while GGD_TEAM in _installations(synced_engine) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(_installations(synced_engine)) == {JHN_TEAM}
    assert (
        from_ggd.team_event({"type": "tokens_revoked", "tokens": {"bot": [ggd.bot_user_id]}}).status
        == 200
    )
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline and len(_audit(synced_engine, "slack-uninstalled")) < 2:
        time.sleep(0.05)
    anna = _professional(synced_engine, ANNA)
    assert (anna.slack_user_id, anna.slack_team_id) == (None, None)
    [uninstalled] = _audit(synced_engine, "slack-uninstalled")
    assert uninstalled.subject == f"slack-workspace:-:{GGD_TEAM}"
    assert uninstalled.details["unlinked"] == 1
    assert [e.details.get("reason") for e in _audit(synced_engine, "slack-unlinked")] == [
        "app_uninstalled"
    ]

    # From now on Anna's notifications go by mail; Eva's still come to Slack as well.
    with Session(synced_engine) as session:
        ends_on = min(s.ends_on for s in session.exec(select(Signal)).all())
    warn_at = datetime.combine(ends_on - timedelta(days=2), day_time(9), tzinfo=UTC)
    sweep(synced_engine, distributed.bot.config, now=warn_at)
    rows = _rows(synced_engine, "signaal-verloopt")
    assert {(r.channel, r.recipient) for r in rows} == {
        ("email", ANNA),
        ("email", EVA),
        ("slack", user(EVA)),
    }
    distributed.bot.outbox_waiting.set()
    _wait_for_post(slack_api, user(EVA), "S-")
    revoked = [c for c in slack_api.calls_to("chat.postMessage") if c.token == ggd.bot_token]
    assert all(c.args.get("channel") == user(ANNA) for c in revoked)
    assert [c for c in revoked if "verloopt" in str(c.args.get("text", ""))] == []


def test_a_request_from_a_workspace_without_an_installation_does_nothing(
    distributed: RunningSlack, slack_api: FakeSlackApi, workspaces: dict[str, Any]
) -> None:
    from_ggd = WorkspaceSender(distributed.url, slack_api, GGD_TEAM)
    answer = from_ggd.command("/verwijsindex", "mijn", user(ANNA))
    assert answer.status == 200
    assert slack_api.calls_to("users.info") == []
    assert slack_api.calls_to("views.open") == []


def _replies(api: FakeSlackApi, count: int) -> list[str]:
    return [str(c.args.get("text", "")) for c in api.wait_for("response_url", count)]


def test_a_slack_connect_guest_links_with_a_code_mailed_to_their_covenant_address(
    distributed: RunningSlack,
    slack_api: FakeSlackApi,
    workspaces: dict[str, Any],
    synced_engine: Engine,
    sink: RelaySink,
    tmp_path: Path,
) -> None:
    install(distributed, slack_api, workspaces["ggd"], user(ANNA))
    from_ggd = WorkspaceSender(distributed.url, slack_api, GGD_TEAM)
    # Slack shows the app no address for the guest: refused, and told how to link.
    from_ggd.command("/verwijsindex", "mijn", GUEST)
    [refusal] = _replies(slack_api, 1)
    assert "/verwijsindex koppel" in refusal

    from_ggd.command("/verwijsindex", f"koppel <mailto:{KARIN}|{KARIN}>", GUEST)
    sent = _replies(slack_api, 2)[-1]
    assert f"Als {KARIN} het adres van een hulpverlener" in sent
    [mail] = _rows(synced_engine, "slack-koppelcode")
    assert (mail.channel, mail.recipient) == ("email", KARIN)  # by mail only, never to Slack
    assert "code" not in mail.context and SEALED_KEY in mail.context  # sealed until sent
    code = mailed_code(synced_engine, tmp_path, sink)
    assert mail.context["workspace"] == "GGD Groningen"
    [received] = sink.messages("slack-koppelcode")
    assert received.recipients == [KARIN]
    [sent] = _rows(synced_engine, "slack-koppelcode")
    assert sent.status == "sent" and SEALED_KEY not in sent.context  # no copy left
    assert code not in json.dumps(
        [e.details for e in _audit(synced_engine, "slack-link-code-sent")]
    )

    wrong = f"{(int(code) + 1) % 10**8:08d}"
    from_ggd.command("/verwijsindex", f"koppel {wrong}", GUEST)
    assert "klopt niet" in _replies(slack_api, 3)[-1]
    assert _professional(synced_engine, KARIN).slack_user_id is None

    from_ggd.command("/verwijsindex", f"koppel {code}", GUEST)
    assert "Gelukt" in _replies(slack_api, 4)[-1]
    karin = _professional(synced_engine, KARIN)
    assert (karin.slack_enterprise_id, karin.slack_team_id, karin.slack_user_id) == (
        None,
        GGD_TEAM,
        GUEST,
    )
    [linked] = [e for e in _audit(synced_engine, "slack-linked") if e.details["by"] == "code"]
    assert linked.subject == f"professional:{karin.id}"

    # Linked now, though Slack still hides the address; the code cannot be used again.
    from_ggd.command("/verwijsindex", "mijn", GUEST)
    assert not _replies(slack_api, 5)[-1].startswith("Sorry")
    from_ggd.command("/verwijsindex", f"koppel {code}", GUEST)
    assert "al gekoppeld" in _replies(slack_api, 6)[-1]


def test_asking_for_codes_is_limited_and_says_nothing_about_the_address(
    distributed: RunningSlack,
    slack_api: FakeSlackApi,
    workspaces: dict[str, Any],
    synced_engine: Engine,
) -> None:
    install(distributed, slack_api, workspaces["ggd"], user(ANNA))
    from_ggd = WorkspaceSender(distributed.url, slack_api, GGD_TEAM)
    from_ggd.command("/verwijsindex", "koppel iemand@nergens.example", GUEST)
    unknown = _replies(slack_api, 1)[-1]
    assert "Als iemand@nergens.example het adres van een hulpverlener" in unknown
    assert _rows(synced_engine, "slack-koppelcode") == []
    for count in (2, 3, 4):
        from_ggd.command("/verwijsindex", f"koppel {KARIN}", GUEST)
        _replies(slack_api, count)
    assert len(_rows(synced_engine, "slack-koppelcode")) == 3
    from_ggd.command("/verwijsindex", f"koppel {KARIN}", GUEST)
    assert "al 3 koppelcodes aangevraagd" in _replies(slack_api, 5)[-1]
    assert len(_rows(synced_engine, "slack-koppelcode")) == 3
    from_ggd.command("/verwijsindex", "koppel geen-adres", GUEST)
    assert "e-mailadres" in _replies(slack_api, 6)[-1]
