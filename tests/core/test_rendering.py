"""The e-mail templates (STYLE 7): every kind has its three parts and renders the contexts the
core really produces; HTML escapes every value (shared macros too) while text keeps them; no
value breaks out of the subject line; a missing key fails loudly (StrictUndefined); reply
instructions appear exactly when an answer is asked, with the keywords of CONTRACT §4; dates are
Dutch and in Dutch time."""

from __future__ import annotations

import copy
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import pytest
from sqlmodel import Session, select

from core.absence import declare_absence
from core.coordination import decline_coordination
from core.identity import YouthIdentity
from core.models import Coordination, OutboxMessage
from core.notifications.subscribers import NOTIFICATION_KINDS
from core.outbox_secrets import opened_context
from core.registration import RegisterYouth, register_youth
from core.rendering import (
    REPLY_KEYWORDS,
    RenderedEmail,
    TemplateRenderer,
    aantal,
    datum,
    datum_kort,
    one_line,
)
from core.signals import PlaceSignal, SignalOutcome, place_signal, withdraw_signal
from tests.core.conftest import BSN_A, MONDAY, CoreDriver, youth
from tests.core.test_privacy import _gateway_contexts, _scenario

Contexts = dict[str, list[dict[str, Any]]]

REPLY_INTRO = (
    "Antwoord door te reageren op deze e-mail met één van de volgende woorden op de eerste regel:"
)
# CONTRACT §4, Replies: what each kind that asks for an answer may be answered with.
COORDINATION = ["AKKOORD", "ACCEPT", "WEIGER", "DECLINE", "OVERDRAGEN", "TRANSFER"]
CONTACT = ["CONTACT GELEGD", "CONTACTED"]
CONSENT = [
    "TOESTEMMING GEVRAAGD", "CONSENT ASKED", "TOESTEMMING GEGEVEN", "CONSENT GIVEN",
    "TOESTEMMING GEWEIGERD", "CONSENT REFUSED",
]  # fmt: skip
REGIE = ["REGIE", "TAKE OVER", "AANWIJZEN", "ASSIGN", "AFGEROND", "CLOSED"]
EXPECTED_KEYWORDS = {
    "coordinatie-toegewezen": COORDINATION,
    "coordinatie-herinnering": COORDINATION,
    "coordinatie-overgedragen": COORDINATION,
    "coordinatie-overname": ["AKKOORD", "ACCEPT", "WEIGER", "DECLINE"],
    "match": CONTACT + CONSENT,
    "gezinsmatch": CONTACT + CONSENT,
    "informeren-herinnering": ["GEINFORMEERD", "INFORMED"],
    "match-opvolging": CONTACT,
    "signaal-verloopt": ["VERLENG", "EXTEND"],
    "coordinatie-escalatie": REGIE,
    "match-escalatie": REGIE,
    "gemeente-regie": REGIE[2:],  # after REGIE: name a coordinator, or close
}
ANNA = "a.devries@ggd-groningen.example"
ALL_KEYWORDS = {word for words in EXPECTED_KEYWORDS.values() for word in words}


@pytest.fixture(scope="module")
def renderer() -> TemplateRenderer:
    return TemplateRenderer()


def _email_contexts(core: CoreDriver, rows: list[OutboxMessage] | None = None) -> Contexts:
    """The context of every e-mail row, as the delivery worker renders it: with the reply
    address, and what the row carries sealed opened (core.outbox_secrets)."""
    if rows is None:
        rows = core.outbox()
    contexts: Contexts = {}
    for row in rows:
        if row.channel != "email":
            continue
        context = opened_context(core.config.keys.ring, dict(row.context))
        if row.reply_token:
            context["reply_address"] = f"antwoord+{row.reply_token}@verwijsindex.localhost"
        contexts.setdefault(row.kind, []).append(context)
    return contexts


@pytest.fixture
def real_contexts(core: CoreDriver) -> Contexts:
    """Every context the core writes in the scenario that covers every kind, plus the mail
    gateway's two (receipts), as test_privacy has them."""
    _scenario(core)
    contexts = _email_contexts(core)
    for kind, context in _gateway_contexts().items():
        contexts[kind] = [context]
    return contexts


def _each(contexts: Contexts) -> list[tuple[str, dict[str, Any]]]:
    return [(kind, context) for kind, items in sorted(contexts.items()) for context in items]


# --- the template set ----------------------------------------------------------------------


def test_every_notification_kind_has_subject_text_and_html(renderer: TemplateRenderer) -> None:
    assert renderer.kinds() == sorted(NOTIFICATION_KINDS)
    folder = renderer.template_dir / "email"
    for kind in NOTIFICATION_KINDS:
        for part in ("subject", "text", "html"):
            assert (folder / f"{kind}.{part}.j2").is_file(), f"{kind}.{part}"


def test_the_default_template_folder_is_the_repositorys() -> None:
    assert TemplateRenderer().template_dir == Path(__file__).resolve().parents[2] / "templates"


def test_every_kind_renders_what_the_core_produces(
    renderer: TemplateRenderer, real_contexts: Contexts
) -> None:
    assert set(real_contexts) == set(NOTIFICATION_KINDS)
    for kind, context in _each(real_contexts):
        email = renderer.render_email(kind, context)
        assert email.subject.strip() and "\n" not in email.subject, kind
        assert email.subject == email.subject.strip() and "  " not in email.subject, kind
        assert email.text.strip() and email.html.strip(), kind
        assert context["reference"] in email.text, f"{kind}: the text names its reference"
        assert email.text.startswith(f"Beste {context['recipient_name']},"), kind
        assert email.html.lstrip().startswith("<!DOCTYPE html>"), kind
        assert f"Beste {context['recipient_name']}," in email.html, kind
        for part in (email.text, email.html):
            assert "automatisch bericht van de verwijsindex van regio Groningen" in part, kind
            assert "nooit de naam, het BSN, het adres of" in part, kind
            assert "None" not in part and "{{" not in part and "{%" not in part, kind


def test_the_text_footer_says_how_to_find_the_youth(
    renderer: TemplateRenderer, real_contexts: Contexts
) -> None:
    signal = real_contexts["signaal"][0]
    assert signal["own_reference"]
    assert (
        f"Zoek de jongere op in uw eigen cliëntsysteem met uw kenmerk {signal['own_reference']}"
        in renderer.render_email("signaal", signal).text
    )
    match = renderer.render_email("match", real_contexts["match"][0]).text
    assert "Zoek de jongere op in uw eigen cliëntsysteem" in match
    escalation = real_contexts["coordinatie-escalatie"][0]
    assert escalation["recipient_role"] == "municipality"
    assert (
        "weten de betrokken instellingen"
        in renderer.render_email("coordinatie-escalatie", escalation).text
    )
    # An absence is about a professional, not about a youth.
    absence = renderer.render_email("afwezigheid", real_contexts["afwezigheid"][0]).text
    assert "Zoek de jongere" not in absence


# --- replies -------------------------------------------------------------------------------


def test_reply_instructions_appear_exactly_when_an_answer_is_asked(
    renderer: TemplateRenderer, real_contexts: Contexts
) -> None:
    asked = set()
    for kind, context in _each(real_contexts):
        email = renderer.render_email(kind, context)
        if context["asks_reply"]:
            asked.add(kind)
            for part in (email.text, email.html):
                assert REPLY_INTRO in part, kind
                assert context["reply_address"] in part, kind
            for word in EXPECTED_KEYWORDS[kind]:
                assert word in email.text and word in email.html, (kind, word)
            for word in ALL_KEYWORDS - set(EXPECTED_KEYWORDS[kind]):
                # A whole word: TOESTEMMING GEWEIGERD does not offer WEIGER.
                offered = re.search(rf"(?<![A-Z]){re.escape(word)}(?![A-Z])", email.text)
                assert offered is None, f"{kind} offers {word}"
        else:
            for part in (email.text, email.html):
                assert "Antwoord door te reageren" not in part, kind
                assert "U hoeft op dit bericht niet te antwoorden." in part, kind
            assert not any(f"{word} (of" in email.text for word in ALL_KEYWORDS), kind
    assert asked == set(EXPECTED_KEYWORDS), "the scenario asks for every kind of answer"
    assert set(REPLY_KEYWORDS) == set(EXPECTED_KEYWORDS)


def test_the_reply_keywords_are_those_of_the_contract() -> None:
    pairs = {(dutch, english) for items in REPLY_KEYWORDS.values() for dutch, english, _ in items}
    assert pairs == {
        ("AKKOORD", "ACCEPT"),
        ("WEIGER <reden>", "DECLINE <reason>"),
        ("OVERDRAGEN <instelling-id>", "TRANSFER <institution-id>"),
        ("CONTACT GELEGD", "CONTACTED"),
        ("VERLENG [maanden]", "EXTEND [months]"),
        ("GEINFORMEERD", "INFORMED"),
        ("TOESTEMMING GEVRAAGD", "CONSENT ASKED"),
        ("TOESTEMMING GEGEVEN", "CONSENT GIVEN"),
        ("TOESTEMMING GEWEIGERD", "CONSENT REFUSED"),
        ("REGIE", "TAKE OVER"),
        ("AANWIJZEN <instelling-id>", "ASSIGN <institution-id>"),
        ("AFGEROND <toelichting>", "CLOSED <explanation>"),
    }


def test_a_coordinator_sees_the_rule_the_deadline_and_where_to_hand_over(
    renderer: TemplateRenderer, real_contexts: Contexts
) -> None:
    context = real_contexts["coordinatie-toegewezen"][0]
    text = renderer.render_email("coordinatie-toegewezen", context).text
    assert context["rule_name"] in text and context["rule_reason"] in text
    assert "tot en met maandag 9 maart 2026 om 23:59" in text  # due 22:59:59Z = 23:59 CET
    assert "5 werkdagen" in text
    assert f"Uw kenmerk voor deze jongere: {context['own_reference']}" in text
    for option in context["hand_over_options"]:
        assert f"- {option['id']}: {option['name']}" in text
    for party in context["involved"]:
        assert party["name"] in text and party["email"] in text


def test_a_match_gives_the_partners_contact_card(
    renderer: TemplateRenderer, real_contexts: Contexts
) -> None:
    context = real_contexts["match"][0]
    email = renderer.render_email("match", context)
    for partner in context["partners"]:
        card = partner["professional"]
        for value in (card["name"], card["institution"], card["email"], card["phone"]):
            assert value in email.text and value in email.html
        assert partner["number"] in email.text
    assert context["own_signal"]["number"] in email.subject


def test_stand_ins_are_addressed_as_such(
    renderer: TemplateRenderer, real_contexts: Contexts
) -> None:
    stand_in = [(kind, c) for kind, c in _each(real_contexts) if c["recipient_role"] == "stand-in"]
    assert {kind for kind, _ in stand_in} >= {"afwezigheid", "match", "match-opvolging"}
    for kind, context in stand_in:
        email = renderer.render_email(kind, context)
        note = f"U ontvangt dit bericht als vervanger van {context['on_behalf_of']}."
        assert note in email.text and note in email.html, kind
    for kind, context in _each(real_contexts):
        if not context["on_behalf_of"]:
            assert "als vervanger van" not in renderer.render_email(kind, context).text, kind


# --- escaping and headers ------------------------------------------------------------------

PAYLOAD = '<script>alert("x")</script>'


def _poisoned(value: Any, key: str = "", payload: str = PAYLOAD) -> Any:
    """Every free-text value with ``payload`` added: names, e-mail addresses, reasons,
    references. Values that steer a template (kind, role, stage, reason code) and dates stay."""
    if isinstance(value, dict):
        return {k: _poisoned(v, k, payload) for k, v in value.items()}
    if isinstance(value, list):
        return [_poisoned(v, key, payload) for v in value]
    if not isinstance(value, str) or not value or key in STEERING or key.endswith(DATES):
        return value
    return value + payload


STEERING = {"kind", "recipient_role", "stage", "reason", "action", "until", "status"}
DATES = ("_on", "_end", "due")


def test_html_escapes_every_value_and_text_keeps_them(
    renderer: TemplateRenderer, real_contexts: Contexts
) -> None:
    for kind, context in _each(real_contexts):
        email = renderer.render_email(kind, _poisoned(context))
        assert "<script>" not in email.html, f"{kind}: an unescaped value in the HTML part"
        assert "&lt;script&gt;" in email.html, kind
        assert PAYLOAD in email.text, f"{kind}: the text part is not HTML and is not escaped"


def test_the_shared_html_macros_escape_too(renderer: TemplateRenderer) -> None:
    macros = renderer.environment.get_template("email/_macros.html.j2").module
    html = str(macros.contact({"name": "<b>x</b>", "email": "a@b", "phone": ""}))  # type: ignore[attr-defined]
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>" not in html


def test_no_value_breaks_out_of_the_subject_line(
    renderer: TemplateRenderer, real_contexts: Contexts
) -> None:
    injection = "\r\nBcc: iedereen@example.org\r\n\r\nnep-tekst\x00\x0b"
    for kind, context in _each(real_contexts):
        subject = renderer.render_email(kind, _poisoned(context, payload=injection)).subject
        assert not any(c in subject for c in "\r\n\x00\x0b"), kind
        assert subject == one_line(subject), kind
    context = dict(real_contexts["nieuwe-betrokkenheid"][0])
    context["new_institution"] = {**context["new_institution"], "name": "GGD" + injection}
    subject = renderer.render_email("nieuwe-betrokkenheid", context).subject
    assert subject.startswith("Nieuwe betrokkenheid: GGD Bcc: iedereen@example.org nep-tekst")


def test_one_line_collapses_whitespace_and_drops_control_characters() -> None:
    assert one_line("  a\r\n b\tc\x00d\x1b e\u2028f  ") == "a b c d e f"


# --- loud failures -------------------------------------------------------------------------


def test_a_missing_key_fails_loudly(renderer: TemplateRenderer, real_contexts: Contexts) -> None:
    for kind, context in _each(real_contexts):
        incomplete = {k: v for k, v in context.items() if k != "recipient_name"}
        with pytest.raises(jinja2.UndefinedError):
            renderer.render_email(kind, incomplete)
    match = {k: v for k, v in real_contexts["match"][0].items() if k != "partners"}
    with pytest.raises(jinja2.UndefinedError):
        renderer.render_email("match", match)
    report = {k: v for k, v in real_contexts["foutmelding"][0].items() if k != "problems"}
    with pytest.raises(jinja2.UndefinedError):
        renderer.render_email("foutmelding", report)
    card = copy.deepcopy(real_contexts["signaal"][0])
    del card["signal"]["professional"]["email"]
    with pytest.raises(jinja2.UndefinedError):
        renderer.render_email("signaal", card)


@pytest.mark.parametrize("kind", ["bestaat-niet", "../email/match", "match.subject", "", "Match"])
def test_an_unknown_kind_is_refused(renderer: TemplateRenderer, kind: str) -> None:
    with pytest.raises(ValueError, match="no template"):
        renderer.render_email(kind, {})


def test_any_channel_and_part_can_be_rendered(tmp_path: Path) -> None:
    (tmp_path / "slack").mkdir()
    (tmp_path / "slack" / "match.blocks.j2").write_text('[{"text": "{{ match_number }}"}]\n')
    renderer = TemplateRenderer(tmp_path)
    assert renderer.render_part("slack", "match", "blocks", {"match_number": "M-1"}) == (
        '[{"text": "M-1"}]\n'
    )
    assert renderer.kinds("slack", ("blocks",)) == ["match"]
    with pytest.raises(ValueError, match="no template"):
        renderer.render_part("slack", "signaal", "blocks", {})


def test_a_template_folder_can_be_given(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    for part in ("subject", "text", "html"):
        (tmp_path / "email" / f"groet.{part}.j2").write_text("Hallo {{ naam }}\n")
    (tmp_path / "email" / "half.subject.j2").write_text("zonder tekst en html\n")
    renderer = TemplateRenderer(tmp_path)
    assert renderer.kinds() == ["groet"]
    email = renderer.render_email("groet", {"naam": "<b>"})
    assert email == RenderedEmail("Hallo <b>", "Hallo <b>\n", "Hallo &lt;b&gt;\n")


# --- situations the main scenario does not reach --------------------------------------------


def _register(core: CoreDriver, identity: YouthIdentity, *institutions: str) -> None:
    for institution in institutions:
        actor = core.institution(institution)
        request = RegisterYouth(identity, "Groningen", f"{institution}-1")
        core.run(
            lambda s, r=request, a=actor: register_youth(
                r, session=s, config=core.config, actor=a, now=MONDAY
            )
        )


def _signal(core: CoreDriver, email: str, identity: YouthIdentity) -> SignalOutcome:
    actor = core.professional(email)
    request = PlaceSignal(identity, "Groningen", "laag", "ja")
    return core.run(
        lambda s: place_signal(request, session=s, config=core.config, actor=actor, now=MONDAY)
    )


def test_an_escalation_after_every_candidate_declined(
    renderer: TemplateRenderer, core: CoreDriver
) -> None:
    """No institution is assigned (institution None, no deadline): the municipality is asked."""
    child = youth(BSN_A, date(2022, 6, 1))  # 3 years old in the city: GGD, then WIJ
    _register(core, child, "ggd-groningen", "wij-groningen")
    _signal(core, ANNA, child)
    with Session(core.engine) as session:
        coordination_id = session.exec(select(Coordination.id)).one() or 0
    for institution, reason in (("ggd-groningen", "geen capaciteit"), ("wij-groningen", "<b>")):
        actor = core.institution(institution)
        core.run(
            lambda s, a=actor, r=reason: decline_coordination(
                coordination_id, r, session=s, config=core.config, actor=a, now=MONDAY
            )
        )
    [context] = _email_contexts(core)["coordinatie-escalatie"]
    assert context["institution"] is None and context["due"] == ""
    email = renderer.render_email("coordinatie-escalatie", context)
    assert "geen instelling neemt de coördinatie op zich" in email.subject
    assert "Geen van de instellingen" in email.text
    assert "- GGD Groningen: geen capaciteit" in email.text
    assert "&lt;b&gt;" in email.html and "<b>" in email.text
    to_wij = _email_contexts(core)["coordinatie-toegewezen"][-1]
    assert "Eerder geweigerd" in renderer.render_email("coordinatie-toegewezen", to_wij).text


def test_an_absence_without_a_stand_in(renderer: TemplateRenderer, core: CoreDriver) -> None:
    anna = core.professional(ANNA)
    first, last = MONDAY.date(), MONDAY.date() + timedelta(days=3)
    core.run(
        lambda s: declare_absence(
            ANNA, first, last, None, session=s, config=core.config, actor=anna, now=MONDAY
        )
    )
    [context] = _email_contexts(core)["afwezigheid"]
    assert context["stand_in"] is None
    email = renderer.render_email("afwezigheid", context)
    assert "U hebt geen vervanger opgegeven" in email.text
    assert "vervangt" not in email.subject


def test_a_signal_withdrawn_as_unjustified(renderer: TemplateRenderer, core: CoreDriver) -> None:
    child = youth(BSN_A)
    _register(core, child, "ggd-groningen", "wij-groningen")
    number = _signal(core, ANNA, child).number
    anna = core.professional(ANNA)
    core.run(
        lambda s: withdraw_signal(
            number, "onterecht", session=s, config=core.config, actor=anna, now=MONDAY
        )
    )
    contexts = _email_contexts(core)["signaal-beeindigd"]
    assert contexts and not contexts[0]["archived"]
    email = renderer.render_email("signaal-beeindigd", contexts[0])
    assert "ingetrokken" in email.subject and "Het signaal is verwijderd" in email.text
    assert "archief" not in email.text


def test_a_signal_that_cannot_be_extended_any_more(
    renderer: TemplateRenderer, real_contexts: Contexts
) -> None:
    context = {**real_contexts["signaal-verloopt"][0], "can_extend": False}
    text = renderer.render_email("signaal-verloopt", context).text
    assert "kan niet verder worden" in text and "nieuw signaal" in text


def test_a_receipt_with_everything_the_gateway_may_add(renderer: TemplateRenderer) -> None:
    base = _gateway_contexts()["ontvangstbevestiging"]
    context = {
        **base,
        "reference": "B-7",
        "original_message_id": "<x@example>",
        "original_subject": "Aanmelding",
        "accepted": [
            *base["accepted"],
            {
                "line": 12, "action": "signaal", "reference": "S-9", "own_reference": "",
                "ends_on": "2027-03-02", "informed_party": "ouders", "match": "M-4",
                "coordination": "C-2", "others_involved": [],
            },
        ],
        "accepted_total": 700,
        "refused": base["refused"],
        "refused_total": 1,
        "summaries": [
            {"filename": "batch.csv", "accepted": 698, "deregistered": 0, "refused": 1,
             "new_involvements": 3},
        ],
        "confirmation": "",
        "problems": [],
        "hint": "",
    }  # fmt: skip
    email = renderer.render_email("ontvangstbevestiging", context)
    assert email.subject == "Ontvangstbevestiging B-7: 700 verwerkt, 1 niet verwerkt"
    assert "Aanmelding" not in email.subject, "a sender's subject may name a youth"
    assert "Verwerkt (700, hieronder de eerste 2)" in email.text
    assert "Regel 12: signaal geplaatst (S-9)" in email.text
    assert "Loopt tot 02-03-2027; informeer: ouders" in email.text
    assert "M-4" in email.text and "C-2" in email.text
    assert "Bijlage batch.csv: 698 aangemeld" in email.text
    assert "Regel 7, veld BSN: is geen geldig BSN" in email.text
    answered = {**base, "accepted": [], "refused": [], "confirmation": "C-1 is geaccepteerd."}
    email = renderer.render_email("ontvangstbevestiging", answered)
    assert "C-1 is geaccepteerd." in email.text and "C-1 is geaccepteerd." in email.html
    assert "Niet verwerkt" not in email.text


# --- dates ---------------------------------------------------------------------------------


def test_dutch_dates_in_dutch_time() -> None:
    assert datum(date(2026, 11, 23)) == "maandag 23 november 2026"
    assert datum("2026-05-05") == "dinsdag 5 mei 2026"
    assert datum_kort(date(2026, 1, 2)) == "02-01-2026"
    assert datum_kort("2026-11-23") == "23-11-2026"
    # 01:30 UTC on the night summer time starts is 03:30 in Amsterdam (CEST, UTC+2) ...
    assert datum(datetime(2026, 3, 29, 1, 30, tzinfo=UTC)) == "zondag 29 maart 2026 om 03:30"
    # ... and 00:30 UTC that night still 01:30 (CET, UTC+1).
    assert datum("2026-03-29T00:30:00+00:00") == "zondag 29 maart 2026 om 01:30"
    assert datum("2026-10-25T01:30:00Z") == "zondag 25 oktober 2026 om 02:30"  # back to CET
    assert datum("2026-03-09T22:59:59+00:00") == "maandag 9 maart 2026 om 23:59"
    assert datum(datetime(2026, 11, 23, 13, 5)) == "maandag 23 november 2026 om 14:05"  # naive: UTC
    assert datum_kort("2026-12-31T23:30:00+00:00") == "01-01-2027"  # the local date
    assert datum(None) == datum_kort("") == ""


def test_the_date_filters_use_the_renderers_time_zone() -> None:
    london = TemplateRenderer(timezone=ZoneInfo("Europe/London"))
    template = london.environment.from_string("{{ t|datum }} / {{ t|datum_kort }}")
    assert template.render(t="2026-12-31T23:30:00+00:00") == (
        "donderdag 31 december 2026 om 23:30 / 31-12-2026"
    )
    dutch = TemplateRenderer().environment.from_string("{{ t|datum }}")
    assert dutch.render(t="2026-12-31T23:30:00+00:00") == "vrijdag 1 januari 2027 om 00:30"


def test_counts_agree_with_their_noun() -> None:
    assert aantal(1, "werkdag", "werkdagen") == "1 werkdag"
    assert aantal(5, "werkdag", "werkdagen") == "5 werkdagen"
    assert aantal(0, "signaal", "signalen") == "0 signalen"
