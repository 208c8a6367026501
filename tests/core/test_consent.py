"""Consent after a match (seed 003; issue 11.7): recorded per match and institution — asked,
given or refused, with the moment — by the party itself; the matched partners are told the fact
(``match-toestemming``), never content; the current status is one row, its history the logboek;
the match views show it. Every test ends with an intact logboek."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlmodel import Session, select

from core.absence import declare_absence
from core.actors import professional_actor, require_professional
from core.audit import verify_chain
from core.clock import as_utc
from core.consent import ConsentOutcome, parse_consent_status, record_consent
from core.errors import Conflict, InvalidInput, NotAllowed, NotFound
from core.models import AuditEvent, ConsentStatus, Match, MatchConsent
from core.overview import my_work
from core.replies import ReplyAction, answer
from core.signals import PlaceSignal, place_signal, withdraw_signal
from tests.core.conftest import BSN_A, BSN_B, BSN_PARENT, MONDAY, CoreDriver, youth

ANNA = "a.devries@ggd-groningen.example"  # GGD
PIETER = "p.bakker@ggd-groningen.example"  # GGD colleague
GGD_INSTITUTION_ADMIN = "h.visser@ggd-groningen.example"
SANNE = "s.jansen@wij-groningen.example"  # WIJ
EVA = "e.meijer@jeugdhulp-noord.example"  # Jeugdhulp Noord
KIND = "match-toestemming"
LATER = MONDAY + timedelta(hours=2)


@pytest.fixture(autouse=True)
def logboek_stays_intact(core: CoreDriver) -> Iterator[None]:
    yield
    with Session(core.engine) as session:
        checked, broken = verify_chain(session)
    assert broken is None, broken
    assert checked > 0


def place(core: CoreDriver, email: str, bsn: str = BSN_A, parents: tuple[str, ...] = ()) -> str:
    actor = core.professional(email)
    request = PlaceSignal(youth(bsn), "Groningen", "laag", "ja", parent_bsns=parents)
    outcome = core.run(
        lambda s: place_signal(request, session=s, config=core.config, actor=actor, now=MONDAY)
    )
    return outcome.number


def matched(core: CoreDriver, *emails: str) -> Match:
    for email in emails:
        place(core, email)
    with Session(core.engine) as session:
        [match] = session.exec(select(Match)).all()
        return match


def consent(
    core: CoreDriver, email: str, number: str, status: str, now: datetime = LATER
) -> ConsentOutcome:
    actor = core.professional(email)
    return core.run(
        lambda s: record_consent(
            number, status, session=s, config=core.config, actor=actor, now=now
        )
    )


def rows(core: CoreDriver) -> list[MatchConsent]:
    with Session(core.engine) as session:
        return list(session.exec(select(MatchConsent).order_by(MatchConsent.id)).all())  # type: ignore[arg-type]


def logged(core: CoreDriver) -> list[dict[str, object]]:
    with Session(core.engine) as session:
        events = session.exec(
            select(AuditEvent).where(AuditEvent.action == "match-consent-recorded")
        ).all()
        return [dict(e.details or {}) for e in events]


# --- the words ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("gevraagd", ConsentStatus.ASKED),
        ("Gegeven.", ConsentStatus.GIVEN),
        ("GEWEIGERD", ConsentStatus.REFUSED),
        ("asked", ConsentStatus.ASKED),
        ("given", ConsentStatus.GIVEN),
        ("refused", ConsentStatus.REFUSED),
    ],
)
def test_dutch_and_english_words_name_the_status(word: str, status: ConsentStatus) -> None:
    assert parse_consent_status(word) is status


@pytest.mark.parametrize("word", ["", "misschien", "ja", "gegeven maar"])
def test_any_other_word_is_refused_naming_the_field(word: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_consent_status(word)
    assert caught.value.field == "toestemming"


# --- recording ---------------------------------------------------------------------------------


def test_a_party_records_consent_per_match_and_institution_and_the_partner_hears_the_fact(
    core: CoreDriver,
) -> None:
    match = matched(core, ANNA, SANNE)
    outcome = consent(core, ANNA, match.number, "gevraagd")
    assert (outcome.institution, outcome.status, outcome.changed) == (
        "GGD Groningen",
        "asked",
        True,
    )
    [row] = rows(core)
    assert (row.match_id, row.institution_id, row.status) == (match.id, "ggd-groningen", "asked")
    assert as_utc(row.recorded_at) == LATER
    [told] = core.outbox(KIND)
    assert told.recipient == SANNE  # the partner, never the party itself
    assert told.reference == match.number
    assert told.context["institution"]["name"] == "GGD Groningen"
    assert told.context["status"] == "asked"
    assert told.reply_token is None


def test_the_status_changes_in_place_and_its_history_is_in_the_logboek(
    core: CoreDriver,
) -> None:
    match = matched(core, ANNA, SANNE)
    consent(core, ANNA, match.number, "gevraagd")
    consent(core, ANNA, match.number, "given", now=LATER + timedelta(days=1))
    consent(core, SANNE, match.number, "geweigerd", now=LATER + timedelta(days=2))
    assert [(r.institution_id, r.status) for r in rows(core)] == [
        ("ggd-groningen", "given"),
        ("wij-groningen", "refused"),
    ]
    m = match.number
    assert logged(core) == [
        {"match": m, "institution": "ggd-groningen", "status": "asked", "before": None},
        {"match": m, "institution": "ggd-groningen", "status": "given", "before": "asked"},
        {"match": m, "institution": "wij-groningen", "status": "refused", "before": None},
    ]
    told = sorted((r.recipient, r.context["status"]) for r in core.outbox(KIND))
    assert told == [(ANNA, "refused"), (SANNE, "asked"), (SANNE, "given")]


def test_the_same_status_again_changes_nothing_and_tells_nobody(core: CoreDriver) -> None:
    match = matched(core, ANNA, SANNE)
    consent(core, ANNA, match.number, "gegeven")
    again = consent(core, ANNA, match.number, "given", now=LATER + timedelta(days=1))
    assert again.changed is False
    assert as_utc(again.recorded_at) == LATER
    assert len(rows(core)) == 1 and len(logged(core)) == 1
    assert len(core.outbox(KIND, channel="email")) == 1


def test_colleagues_of_one_institution_share_its_one_status(core: CoreDriver) -> None:
    """Two GGD professionals and WIJ in one match: GGD's consent is one row, told to WIJ."""
    match = matched(core, ANNA, PIETER, SANNE)
    consent(core, ANNA, match.number, "gevraagd")
    consent(core, PIETER, match.number, "gegeven")
    [row] = rows(core)
    assert (row.institution_id, row.status) == ("ggd-groningen", "given")
    assert {r.recipient for r in core.outbox(KIND)} == {SANNE}


def test_only_a_party_to_the_match_may_record(core: CoreDriver) -> None:
    match = matched(core, ANNA, SANNE)
    with pytest.raises(NotAllowed):
        consent(core, EVA, match.number, "gegeven")
    with pytest.raises(NotAllowed):
        consent(core, PIETER, match.number, "gegeven")  # GGD, but not in the match
    assert consent(core, GGD_INSTITUTION_ADMIN, match.number, "gegeven").institution == (
        "GGD Groningen"
    )  # the institution's coordinator may act for its signal
    with pytest.raises(NotFound):
        consent(core, ANNA, "M-999", "gegeven")
    with pytest.raises(InvalidInput):
        consent(core, ANNA, match.number, "misschien")
    assert [r.status for r in rows(core)] == ["given"]


def test_a_stand_in_records_for_the_absent_partys_institution(core: CoreDriver) -> None:
    match = matched(core, ANNA, SANNE)
    anna = core.professional(ANNA)
    core.run(
        lambda s: declare_absence(
            ANNA,
            MONDAY.date(),
            MONDAY.date() + timedelta(days=14),
            PIETER,
            session=s,
            config=core.config,
            actor=anna,
            now=MONDAY,
        )
    )
    outcome = consent(core, PIETER, match.number, "gegeven")
    assert outcome.institution == "GGD Groningen"
    [row] = rows(core)
    assert row.recorded_by_professional_id == core.professional(PIETER).professional_id


def test_an_ended_match_takes_no_more_consent(core: CoreDriver) -> None:
    match = matched(core, ANNA, SANNE)
    core.run(
        lambda s: withdraw_signal(
            "S-1",  # Anna's
            "risico-weg",
            session=s,
            config=core.config,
            actor=core.professional(ANNA),
            now=LATER,
        )
    )
    with pytest.raises(Conflict):
        consent(core, SANNE, match.number, "gegeven")


def test_a_family_match_records_consent_too(core: CoreDriver) -> None:
    place(core, ANNA, BSN_A, (BSN_PARENT,))
    place(core, SANNE, BSN_B, (BSN_PARENT,))
    with Session(core.engine) as session:
        [match] = session.exec(select(Match)).all()
    assert match.kind == "family"
    consent(core, SANNE, match.number, "gegeven")
    [told] = core.outbox(KIND, channel="email")
    assert told.recipient == ANNA and told.context["family"] is True


# --- through the match mail's token -----------------------------------------------------------


def test_consent_on_the_match_token_works_before_and_after_contact_gelegd(
    core: CoreDriver,
) -> None:
    """Consent is a status that may change: it leaves the token usable, and follows or precedes
    CONTACT GELEGD on the same match mail."""
    matched(core, ANNA, SANNE)
    [mail] = [r for r in core.outbox("match", channel="email") if r.recipient == ANNA]
    token = mail.reply_token or ""

    def reply(action: ReplyAction, sender: str = ANNA, at: datetime = LATER) -> str:
        return core.run(
            lambda s: answer(
                token, action, sender=sender, channel="email", session=s, config=core.config,
                now=at,
            )
        )  # fmt: skip

    assert "toestemming gevraagd" in reply(ReplyAction("consent", "asked"))
    assert "contact gelegd" in reply(ReplyAction("contacted"))
    assert "toestemming gegeven" in reply(ReplyAction("consent", "given"), at=LATER + timedelta(1))
    with pytest.raises(NotAllowed):
        reply(ReplyAction("consent", "refused"), sender=SANNE)  # Anna's token
    [row] = rows(core)
    assert (row.institution_id, row.status) == ("ggd-groningen", "given")
    with pytest.raises(Conflict):
        reply(ReplyAction("contacted"))  # that answer was given


# --- the match views -----------------------------------------------------------------------------


def test_the_partners_overview_shows_each_institutions_consent(core: CoreDriver) -> None:
    match = matched(core, ANNA, SANNE)
    consent(core, ANNA, match.number, "gegeven")

    def work(email: str) -> list[tuple[str, str]]:
        def view(session: Session) -> list[tuple[str, str]]:
            professional = require_professional(session, email)
            actor = professional_actor(professional, "slack")
            mine = my_work(session, core.config, professional, actor=actor)
            [item] = mine.matches
            return [(c.institution, c.status_nl) for c in item.consents]

        return core.run(view)

    assert work(SANNE) == [("GGD Groningen", "gegeven")]
    assert work(ANNA) == [("GGD Groningen", "gegeven")]
