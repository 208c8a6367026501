"""The Slack templates (``templates/slack/<kind>.blocks.j2``): every kind that can reach Slack
renders the contexts the core really produces into Block Kit that slack_sdk's own models accept;
buttons with the reply token appear exactly where an answer is asked; every value is escaped for
JSON and for mrkdwn (no ``<!channel>``, no forged link, no broken message); Slack's limits hold;
and no youth's identity gets into a message."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jinja2
import pytest
from slack_sdk.models.blocks import Block
from sqlmodel import Session, select

from bot.submission_processing import ANSWER_KIND
from core.models import Institution, Municipality, OutboxMessage, Professional, Team
from core.notifications.subscribers import NOTIFICATION_KINDS
from core.rendering import (
    SLACK_MAX_BLOCKS,
    TemplateRenderer,
    fit_slack_blocks,
    slack_escape,
)
from tests.core.conftest import CoreDriver
from tests.core.test_privacy import _scan, _scenario

# Receipts go back by mail only; the logboek's anchor goes to the region's administrator, by
# mail only (it is to be kept). Escalations reach a municipality contact in Slack too when the
# covenant lists the contact as a professional who linked Slack (core.regie).
NOT_FOR_SLACK = {
    "ontvangstbevestiging",
    "foutmelding",
    "logboek-anker",
    "maandrapport",  # to a municipality, by mail only: its charts and CSV need a mail
    "slack-koppelcode",  # proves the covenant mailbox: by mail only, never to a Slack account
}
SLACK_KINDS = set(NOTIFICATION_KINDS) - NOT_FOR_SLACK

COORDINATION_BUTTONS = ["antwoord_akkoord", "antwoord_weiger", "antwoord_overdragen"]
CONSENT_BUTTONS = ["toestemming_gevraagd", "toestemming_gegeven", "toestemming_geweigerd"]
REGIE_BUTTONS = ["antwoord_regie", "antwoord_aanwijzen", "antwoord_afronden"]
EXPECTED_BUTTONS = {
    "coordinatie-toegewezen": COORDINATION_BUTTONS,
    "coordinatie-herinnering": COORDINATION_BUTTONS,
    "coordinatie-overgedragen": COORDINATION_BUTTONS,
    "coordinatie-overname": ["antwoord_akkoord", "antwoord_weiger"],  # yes or no, no hand-over
    "match": ["antwoord_contact", *CONSENT_BUTTONS],
    "gezinsmatch": ["antwoord_contact", *CONSENT_BUTTONS],
    "informeren-herinnering": ["antwoord_geinformeerd"],
    "match-opvolging": ["antwoord_contact"],
    "signaal-verloopt": ["antwoord_verlengen"],
    "coordinatie-escalatie": REGIE_BUTTONS,
    "match-escalatie": REGIE_BUTTONS,
    "gemeente-regie": REGIE_BUTTONS[1:],  # the municipality's own copy, after REGIE
}
HOSTILE = 'Jan & <!channel> "de" <https://evil.example|klik> \\ Baas\nnieuwe regel'


def link_everyone_to_slack(core: CoreDriver) -> None:
    """Every professional a Slack user and every institution a Slack channel, as if they had
    all linked their accounts (the bot's identity linking sets ``slack_user_id``); every
    municipality contact too, listed as a professional as a covenant may list them."""
    with Session(core.engine) as session:
        team = session.exec(select(Team).order_by(Team.id)).first()  # type: ignore[arg-type]
        assert team is not None
        for municipality in session.exec(select(Municipality)).all():
            session.add(
                Professional(
                    email=municipality.contact_email,
                    name=municipality.contact_name or municipality.name,
                    institution_id=team.institution_id,
                    team_id=team.id or 0,
                    roles=["professional"],
                )
            )
        session.flush()
        for number, professional in enumerate(session.exec(select(Professional)).all()):
            professional.slack_user_id = f"U{number:05d}"
            session.add(professional)
        for number, institution in enumerate(session.exec(select(Institution)).all()):
            institution.slack_channel = f"C{number:05d}"
            session.add(institution)
        session.commit()


def slack_rows(core: CoreDriver) -> list[OutboxMessage]:
    return [row for row in core.outbox() if row.channel == "slack"]


def slack_context(row: OutboxMessage) -> dict[str, Any]:
    """The context the Slack delivery worker renders: the row's, plus its reply token."""
    context = dict(row.context)
    if row.reply_token:
        context["reply_token"] = row.reply_token
    return context


@pytest.fixture(scope="module")
def renderer() -> TemplateRenderer:
    return TemplateRenderer()


@pytest.fixture
def rows(core: CoreDriver) -> list[OutboxMessage]:
    link_everyone_to_slack(core)
    _scenario(core)
    return slack_rows(core)


def _buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        element
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
        if element["type"] == "button"
    ]


def _texts(blocks: list[dict[str, Any]]) -> list[str]:
    """Every text a person reads in the blocks."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("text"), str):
                found.append(value["text"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(blocks)
    return found


def _assert_valid_block_kit(blocks: list[dict[str, Any]], where: str) -> None:
    assert 0 < len(blocks) <= SLACK_MAX_BLOCKS, where
    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None, f"{where}: unknown block {block['type']}"
        parsed.validate_json()  # slack_sdk checks Slack's lengths and required fields
        assert parsed.to_dict() == block, f"{where}: slack_sdk reads the block differently"


# --- the template set ----------------------------------------------------------------------


def test_every_kind_that_can_reach_slack_has_a_blocks_template(
    renderer: TemplateRenderer,
) -> None:
    # Plus the bot's own answer to a form processed after a restart (never a core notification).
    assert renderer.kinds("slack", ("blocks",)) == sorted(SLACK_KINDS | {ANSWER_KIND})


def test_no_slack_template_bypasses_the_escaping(renderer: TemplateRenderer) -> None:
    for template in (renderer.template_dir / "slack").glob("*.j2"):
        source = template.read_text()
        assert "|safe" not in source.replace(" ", ""), template.name
        assert "Markup" not in source, template.name


# --- what the core produces ----------------------------------------------------------------


def test_the_scenario_reaches_slack_with_every_kind_and_never_with_receipts(
    rows: list[OutboxMessage],
) -> None:
    assert {row.kind for row in rows} == SLACK_KINDS
    roles = {row.recipient_role for row in rows}
    assert roles == {"professional", "stand-in", "institution", "institution-admin", "municipality"}


def test_every_row_renders_to_block_kit_that_slack_sdk_accepts(
    renderer: TemplateRenderer, rows: list[OutboxMessage]
) -> None:
    for row in rows:
        where = f"{row.kind} #{row.id}"
        context = slack_context(row)
        message = renderer.render_slack_message(row.kind, context)
        _assert_valid_block_kit(message.blocks, where)
        assert message.blocks[0]["type"] == "header", where
        assert message.text.strip() and "\n" not in message.text, where
        rendered = json.dumps(message.blocks, ensure_ascii=False)
        assert row.reference in rendered, f"{where}: names its reference"
        assert f"regio {context['region']}" in rendered, where
        assert "nooit de naam, het BSN, het adres of de geboortedatum" in rendered, where
        for text in [*_texts(message.blocks), message.text]:
            assert "None" not in text and "{{" not in text and "{%" not in text, where
            assert "&amp;" not in text and "\\" not in text, f"{where}: escaped twice"


def test_buttons_carry_the_reply_token_exactly_where_an_answer_is_asked(
    renderer: TemplateRenderer, rows: list[OutboxMessage]
) -> None:
    seen = set()
    for row in rows:
        buttons = _buttons(renderer.render_slack(row.kind, slack_context(row)))
        if row.kind == "overdracht":
            # Not an answer but a command: an institution-admin executes a requested transfer.
            requested = row.context["stage"] == "requested"
            assert [(b["action_id"], b["value"]) for b in buttons] == (
                [("overdracht_uitvoeren", row.reference)] if requested else []
            ), f"{row.kind} #{row.id}"
            continue
        expected = list(EXPECTED_BUTTONS.get(row.kind, []))
        if "antwoord_overdragen" in expected and not row.context.get("hand_over_options"):
            expected.remove("antwoord_overdragen")
        if "antwoord_aanwijzen" in expected and not row.context.get("assign_options"):
            expected.remove("antwoord_aanwijzen")
        if row.kind == "gemeente-regie" and row.recipient_role != "municipality":
            expected = []  # the parties are told; only the municipality answers
        if row.kind == "signaal-verloopt" and not row.context["can_extend"]:
            expected = []
        assert [b["action_id"] for b in buttons] == expected, f"{row.kind} #{row.id}"
        if expected:
            assert row.reply_token, row.kind
            assert {b["value"] for b in buttons} == {row.reply_token}
            seen.add(row.kind)
    assert seen == set(EXPECTED_BUTTONS)


def test_without_a_reply_token_there_are_no_buttons(
    renderer: TemplateRenderer, rows: list[OutboxMessage]
) -> None:
    row = next(r for r in rows if r.kind == "coordinatie-toegewezen")
    assert _buttons(renderer.render_slack(row.kind, dict(row.context))) == []


def test_an_institution_channel_is_told_who_may_answer(
    renderer: TemplateRenderer, rows: list[OutboxMessage]
) -> None:
    row = next(r for r in rows if r.kind == "coordinatie-toegewezen")
    assert row.recipient_role == "institution" and row.recipient.startswith("C")
    blocks = renderer.render_slack(row.kind, slack_context(row))
    assert any(
        f"Antwoorden kan een hulpverlener van {row.context['recipient_name']}" in t
        for t in _texts(blocks)
    )
    # Named, so the message shown after an answer drops it together with the buttons.
    assert "antwoord-uitleg" in [block.get("block_id") for block in blocks]


def test_a_match_shows_the_partners_contact_details(
    renderer: TemplateRenderer, rows: list[OutboxMessage]
) -> None:
    row = next(r for r in rows if r.kind == "match" and r.recipient_role == "professional")
    text = "\n".join(_texts(renderer.render_slack(row.kind, slack_context(row))))
    for partner in row.context["partners"]:
        person = partner["professional"]
        assert f"*{person['name']}* ({person['institution']})" in text
        assert f"<mailto:{person['email']}|{person['email']}>" in text
        assert f"tel. {person['phone']}" in text
        assert f"*Signaal {partner['number']}*" in text


def test_a_stand_in_is_told_on_whose_behalf(
    renderer: TemplateRenderer, rows: list[OutboxMessage]
) -> None:
    stand_in_rows = [r for r in rows if r.recipient_role == "stand-in"]
    assert stand_in_rows
    for row in stand_in_rows:
        texts = _texts(renderer.render_slack(row.kind, slack_context(row)))
        if row.kind == "afwezigheid":
            assert any("heeft u als vervanger opgegeven" in t for t in texts)
        else:
            notice = f"U ontvangt dit bericht als vervanger van *{row.context['on_behalf_of']}*."
            assert any(notice in t for t in texts), row.kind


def test_no_message_contains_a_youths_identity(
    renderer: TemplateRenderer, rows: list[OutboxMessage]
) -> None:
    for row in rows:
        message = renderer.render_slack_message(row.kind, slack_context(row))
        _scan(json.dumps(message.blocks, ensure_ascii=False), f"blocks of {row.kind} #{row.id}")
        _scan(message.text, f"text of {row.kind} #{row.id}")


# --- escaping ------------------------------------------------------------------------------


def _hostile(context: dict[str, Any]) -> dict[str, Any]:
    """Every string in the context replaced by a value that would break JSON and mrkdwn."""
    keep = {"kind", "reference", "recipient_role", "reply_token", "stage", "reason", "status"}

    def spoil(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: spoil(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [spoil(v) for v in value]
        if isinstance(value, str) and key not in keep and not _is_date(value):
            return HOSTILE
        return value

    return spoil(copy.deepcopy(context))


def _is_date(value: str) -> bool:
    return len(value) >= 10 and value[4] == "-" and value[:4].isdigit()


def test_hostile_values_stay_inside_their_json_strings_and_cannot_format(
    renderer: TemplateRenderer, rows: list[OutboxMessage]
) -> None:
    for kind in sorted(SLACK_KINDS):
        row = next(r for r in rows if r.kind == kind)
        context = _hostile(slack_context(row))
        message = renderer.render_slack_message(kind, context)
        _assert_valid_block_kit(message.blocks, kind)
        joined = "\n".join([*_texts(message.blocks), message.text])
        assert "<!channel>" not in joined and "<https://evil" not in joined, kind
        assert "&lt;!channel&gt;" in joined, f"{kind}: the value is shown, escaped"
        assert '"de"' in joined, f"{kind}: quotes survive as quotes"


def test_slack_escape_covers_exactly_slacks_control_characters() -> None:
    assert slack_escape("a & b <c> 'd' \"e\" *f*") == "a &amp; b &lt;c&gt; 'd' \"e\" *f*"


def test_the_fallback_text_is_escaped_and_one_line(renderer: TemplateRenderer) -> None:
    context = {
        "kind": "signaal-beeindigd", "reference": "S-9", "region": "Groningen",
        "recipient_name": "x", "recipient_role": "professional", "on_behalf_of": None,
        "asks_reply": False, "signal_number": "S-9 <!here>\n& meer", "reason": "risk-gone",
        "reason_text": "risico weg", "archived": True,
    }  # fmt: skip
    text = renderer.render_slack_text("signaal-beeindigd", context)
    assert text == "Signaal S-9 &lt;!here&gt; &amp; meer is beëindigd"


# --- limits and failures -------------------------------------------------------------------


def test_a_huge_coordination_is_shortened_but_keeps_its_buttons(
    renderer: TemplateRenderer, rows: list[OutboxMessage]
) -> None:
    row = next(r for r in rows if r.kind == "coordinatie-toegewezen")
    context = slack_context(row)
    context["signals"] = [context["signals"][0]] * 80
    context["declined"] = [{"institution": "X", "reason": "r" * 5000}]
    blocks = renderer.render_slack(row.kind, context)
    _assert_valid_block_kit(blocks, "huge coordination")
    assert len(blocks) == SLACK_MAX_BLOCKS
    assert blocks[-1]["type"] == "actions"
    assert "ingekort" in blocks[-2]["elements"][0]["text"]
    assert all(len(t) <= 3000 for t in _texts(blocks))
    assert any(t.endswith("…") for t in _texts(blocks))


def test_fit_leaves_blocks_within_the_limits_alone() -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "kort"}}]
    assert fit_slack_blocks(copy.deepcopy(blocks)) == blocks


def test_a_template_that_renders_invalid_json_is_refused(tmp_path: Path) -> None:
    (tmp_path / "slack").mkdir()
    (tmp_path / "slack" / "match.blocks.j2").write_text('[{"type": "divider"},]\n')
    (tmp_path / "slack" / "signaal.blocks.j2").write_text('{"type": "divider"}\n')
    renderer = TemplateRenderer(tmp_path)
    with pytest.raises(ValueError, match="not valid JSON"):
        renderer.render_slack("match", {})
    with pytest.raises(ValueError, match="list of blocks"):
        renderer.render_slack("signaal", {})


def test_a_missing_key_fails_loudly(
    renderer: TemplateRenderer, rows: list[OutboxMessage]
) -> None:
    row = next(r for r in rows if r.kind == "match")
    context = slack_context(row)
    del context["partners"]
    with pytest.raises(jinja2.UndefinedError):
        renderer.render_slack("match", context)
    with pytest.raises(ValueError, match="no template"):
        renderer.render_slack("logboek-anker", context)
