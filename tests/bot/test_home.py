"""The App Home tab: the professional's active signals with end dates, matches with the partners'
contact details, the institution's open coordinations with deadlines and absence status, as a
view slack_sdk accepts — logged, within Slack's limits, and without any youth's identity."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.models.views import View
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.home import PAGE_SIZE, build_home_view
from core.absence import declare_absence
from core.audit import Actor
from core.clock import local_date
from core.config import CoreConfig
from core.covenant import bundled_covenant_path, load_covenant
from core.covenant.sync import sync_covenant
from core.db import run_in_transaction, transaction
from core.errors import NotFound
from core.identity import IdentityKeys
from core.models import AuditEvent, Professional
from core.overview import Contact, MatchItem, MatchPartner, MyWork, SignalItem
from core.registration import RegisterYouth, register_youth
from core.signals import PlaceSignal, place_signal
from tests.conftest import TEST_SECRET
from tests.core.conftest import BSN_A, MONDAY, CoreDriver, youth

ANNA = "a.devries@ggd-groningen.example"
PIETER = "p.bakker@ggd-groningen.example"
SANNE = "s.jansen@wij-groningen.example"
THIJS = "t.boer@jeugdhulp-noord.example"
NOW = MONDAY + timedelta(hours=2)
TODAY = local_date(NOW)


@pytest.fixture(scope="module")
def config() -> CoreConfig:
    return CoreConfig(
        covenant=load_covenant(bundled_covenant_path()), keys=IdentityKeys(TEST_SECRET.encode())
    )


@pytest.fixture
def core(engine: Engine, config: CoreConfig) -> CoreDriver:
    with transaction(engine) as session:
        sync_covenant(session, config.covenant)
    return CoreDriver(engine, config)


@pytest.fixture
def scenario(core: CoreDriver) -> Iterator[CoreDriver]:
    """GGD and WIJ register a child; Anna (GGD) and Sanne (WIJ) signal it: match M-1, and
    coordination C-1 for WIJ. Anna is away for two weeks with Pieter standing in."""
    for institution, reference in (("ggd-groningen", "GGD-7"), ("wij-groningen", "WIJ-8")):
        registration = RegisterYouth(youth(), "Groningen", reference)
        by = core.institution(institution)

        def register(session: Session, r: RegisterYouth = registration, a: Actor = by) -> Any:
            return register_youth(r, session=session, config=core.config, actor=a, now=MONDAY)

        core.run(register)
    for email, own in ((ANNA, "dossier-a"), (SANNE, None)):
        placing = PlaceSignal(youth(), "Groningen", "laag", "ja", reference=own)
        signaller = core.professional(email)

        def signal(session: Session, p: PlaceSignal = placing, a: Actor = signaller) -> Any:
            return place_signal(p, session=session, config=core.config, actor=a, now=MONDAY)

        core.run(signal)
    anna = core.professional(ANNA)
    core.run(
        lambda session: declare_absence(
            ANNA, TODAY, TODAY + timedelta(days=14), PIETER,
            session=session, config=core.config, actor=anna, now=MONDAY,
        )
    )  # fmt: skip
    yield core


def _home(core: CoreDriver, email: str, now: datetime = NOW) -> dict[str, Any]:
    def build(session: Session) -> dict[str, Any]:
        professional = session.exec(select(Professional).where(Professional.email == email)).one()
        return build_home_view(session, core.config, professional, now=now)

    view = run_in_transaction(core.engine, build)
    parsed = View(**view)
    parsed.validate_json()  # slack_sdk checks the view's and every block's limits
    assert parsed.to_dict() == view
    return view


def _texts(view: dict[str, Any]) -> str:
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

    walk(view)
    return "\n".join(found)


def test_own_signals_matches_with_contacts_and_own_absence(scenario: CoreDriver) -> None:
    view = _home(scenario, ANNA)
    assert view["type"] == "home"
    text = _texts(view)
    assert "Verwijsindex regio Groningen" in text
    assert "Anna de Vries · GGD Groningen" in text
    assert "Mijn actieve signalen (1)" in text
    assert "*S-1* · code Laag · geplaatst 02-03-2026 · einddatum *02-03-2027*" in text
    assert "einddatum *02-03-2027* · kenmerk dossier-a" in text
    # The match waits for her contact and her institution's consent: first, with its buttons.
    assert "Wacht op uw antwoord (1)" in text and "*Match M-1* · bij signaal S-1" in text
    assert text.index("Wacht op uw antwoord") < text.index("*Match M-1*")
    assert text.index("*Match M-1*") < text.index("Mijn actieve signalen (1)")
    assert (
        "S-2: *Sanne Jansen* (WIJ Groningen) · "
        "<mailto:s.jansen@wij-groningen.example|s.jansen@wij-groningen.example> · tel. 050 367 1201"
    ) in text
    assert "bevestig contact vóór" in text
    assert ":palm_tree: *U bent afwezig* t/m maandag 16 maart 2026." in text
    assert "Uw vervanger is *Pieter Bakker* (GGD Groningen)" in text
    assert "Procescoördinatie van mijn instelling (0)" in text
    assert "geen openstaande procescoördinatie" in text


def test_the_institutions_open_coordination_with_its_deadline(scenario: CoreDriver) -> None:
    text = _texts(_home(scenario, SANNE))
    assert "Wacht op uw antwoord (2)" in text  # C-1 to accept, M-1's contact and consent
    assert (
        "*Procescoördinatie C-1* · uw instelling is aangewezen; "
        "antwoord vóór *maandag 9 maart 2026 om 23:59*"
    ) in text
    assert "Uw kenmerk voor deze jongere: WIJ-8" in text
    # Anna is away: Sanne sees whom to reach instead.
    assert "afwezig t/m 16-03-2026, vervanger: *Pieter Bakker*" in text
    assert "u bent niet afwezig gemeld" in text


def test_a_stand_in_sees_the_colleagues_work(scenario: CoreDriver) -> None:
    text = _texts(_home(scenario, PIETER))
    assert "Mijn actieve signalen (0)" in text
    assert "U hebt geen actieve signalen" in text
    assert ":busts_in_silhouette: U vervangt *Anna de Vries* t/m 16-03-2026" in text
    assert "Als vervanger: signalen en matches (1, 1)" in text
    assert "*S-1* · code Laag" in text and "*Match M-1*" in text
    # After the absence Pieter's home is his own again.
    later = _texts(_home(scenario, PIETER, now=NOW + timedelta(days=30)))
    assert "Anna de Vries" not in later


def test_a_signal_near_its_end_date_says_so(scenario: CoreDriver) -> None:
    near = datetime(2027, 2, 25, 9, 0, tzinfo=NOW.tzinfo)
    assert "loopt af over 5 dagen" in _texts(_home(scenario, SANNE, now=near))
    assert "loopt af over" not in _texts(_home(scenario, SANNE))


def test_the_view_is_logged(scenario: CoreDriver) -> None:
    _home(scenario, SANNE)
    with Session(scenario.engine) as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "work-viewed")).one()
    assert event.actor == f"professional:{SANNE}" and event.channel == "slack"
    assert event.details == {"signals": ["S-2"], "matches": ["M-1"], "coordinations": ["C-1"]}


def test_no_youth_identity_in_the_view(scenario: CoreDriver) -> None:
    identity = youth()
    assert identity.name and identity.birth_date
    forbidden = [BSN_A, *identity.name.split(), identity.birth_date.isoformat(), "01-05-2016"]
    for email in (ANNA, PIETER, SANNE):
        shown = json.dumps(_home(scenario, email), ensure_ascii=False)
        for word in forbidden:
            assert word not in shown, f"{word!r} in the home of {email}"


def test_an_inactive_professional_gets_no_view(scenario: CoreDriver) -> None:
    with Session(scenario.engine) as session:
        thijs = session.exec(select(Professional).where(Professional.email == THIJS)).one()
        thijs.active = False
        session.add(thijs)
        session.commit()
    with pytest.raises(NotFound):
        _home(scenario, THIJS)


# --- long lists and awkward values ------------------------------------------------------------


def _contact(name: str) -> Contact:
    return Contact(name=name, email="x@example.org", phone="", institution="Instelling & Co")


def _work(count: int, name: str = "Anna de Vries") -> MyWork:
    signals = [
        SignalItem(f"S-{n}", "laag", "Laag", date(2026, 3, 2), date(2027, 3, 2), "")
        for n in range(count)
    ]
    partner = MatchPartner("S-999", _contact(name), None, None, False)
    matches = [
        MatchItem(f"M-{n}", False, f"S-{n}", [partner], None, False) for n in range(count)
    ]
    return MyWork(_contact(name), TODAY, signals, matches, [], [])


def test_long_lists_come_in_pages_within_slacks_limits(
    core: CoreDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.home.my_work", lambda *args, **kwargs: _work(PAGE_SIZE + 7))
    total = 2 * (PAGE_SIZE + 7)  # signals and matches
    text = _texts(_home(core, ANNA))
    assert f"Mijn actieve signalen ({PAGE_SIZE + 7})" in text
    assert f"Onderdeel 1–{PAGE_SIZE} van {total}" in text
    assert f"*S-{PAGE_SIZE - 1}*" in text and f"*S-{PAGE_SIZE}*" not in text

    def page(offset: int) -> str:
        def build(session: Session) -> dict[str, Any]:
            anna = session.exec(select(Professional).where(Professional.email == ANNA)).one()
            return build_home_view(session, core.config, anna, offset=offset, now=NOW)

        view = run_in_transaction(core.engine, build)
        View(**view).validate_json()
        return _texts(view)

    second = page(PAGE_SIZE)
    # The 7 signals left, then the first 13 matches.
    assert f"*S-{PAGE_SIZE}*" in second and "*Match M-12*" in second
    assert "*Match M-13*" not in second
    assert f"Onderdeel {PAGE_SIZE + 1}–{2 * PAGE_SIZE} van {total}" in second
    # An offset past the end (the list shrank meanwhile) shows the last page.
    assert f"Onderdeel {2 * PAGE_SIZE + 1}–{total} van {total}" in page(1000)


def test_values_cannot_break_the_view_or_mention_anyone(
    core: CoreDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    hostile = 'Jan "de" Baas <!channel> <https://evil.example|klik>\\'
    monkeypatch.setattr("bot.home.my_work", lambda *args, **kwargs: _work(1, hostile))
    text = _texts(_home(core, ANNA))
    assert "<!channel>" not in text and "<https://evil" not in text
    assert 'Jan "de" Baas &lt;!channel&gt;' in text
    assert "Instelling &amp; Co" in text
