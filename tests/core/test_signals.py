"""Signals (DOMAIN: step 2, Lifetime, Who may signal, Informing): placing, forwarding,
withdrawing, extending, and the one-time notice when an archived signal's youth is signalled
again. Every test ends with an intact audit chain."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any, TypeVar

import pytest
from sqlmodel import Session, SQLModel, select

from core.absence import declare_absence, end_absence
from core.audit import verify_chain
from core.errors import Conflict, InvalidInput, NotAllowed, NotFound
from core.fields import parse_signal
from core.identity import YouthIdentity, passes_elfproef
from core.models import (
    AuditEvent,
    Match,
    MatchStatus,
    OutboxMessage,
    Signal,
    SignalStatus,
    Youth,
)
from core.registration import RegisterYouth, register_youth
from core.signals import (
    PlaceSignal,
    SignalOutcome,
    extend_signal,
    place_signal,
    withdraw_signal,
)
from tests.core.conftest import BSN_A, BSN_B, MONDAY, CoreDriver, youth

M = TypeVar("M", bound=SQLModel)

TODAY = date(2026, 3, 2)  # MONDAY in Groningen
GGD = "a.devries@ggd-groningen.example"
GGD_COLLEAGUE = "p.bakker@ggd-groningen.example"
GGD_INSTITUTION_ADMIN = "h.visser@ggd-groningen.example"
REGION_ADMIN = "f.dijkstra@ggd-groningen.example"
WIJ = "s.jansen@wij-groningen.example"
PLUSTEAM = "e.meijer@jeugdhulp-noord.example"
CAT = "j.vandijk@jeugdhulp-noord.example"
JHN_INSTITUTION_ADMIN = "r.bos@jeugdhulp-noord.example"
SCHOOL = "j.veenstra@scholengroep-noordkust.example"
POLICE = "i.wiersma@politie-nn.example"

ON_SQLITE = not os.environ.get("VERWIJSINDEX_TEST_DATABASE_URL", "").startswith("postgresql")

# Enough valid BSNs for tests that need many youths.
MORE_BSNS = [f"{n:09d}" for n in range(200_000_000, 200_000_200) if passes_elfproef(f"{n:09d}")]


@pytest.fixture(autouse=True)
def audit_chain_stays_intact(core: CoreDriver) -> Iterator[None]:
    yield
    with Session(core.engine) as session:
        checked, broken = verify_chain(session)
    assert broken is None, broken
    assert checked > 0


# --- helpers ----------------------------------------------------------------------------------


def place(
    core: CoreDriver,
    email: str,
    identity: YouthIdentity | None = None,
    *,
    code: str = "laag",
    informed: str = "ja",
    days_later: int = 0,
    **options: Any,
) -> SignalOutcome:
    actor = core.professional(email)
    request = PlaceSignal(identity or youth(), "Groningen", code, informed, **options)
    return core.run(
        lambda s: place_signal(
            request,
            session=s,
            config=core.config,
            actor=actor,
            now=MONDAY + timedelta(days=days_later),
        )
    )


def register(core: CoreDriver, institution_id: str, reference: str) -> None:
    core.run(
        lambda s: register_youth(
            RegisterYouth(youth(), "Groningen", reference),
            session=s,
            config=core.config,
            actor=core.institution(institution_id),
            now=MONDAY,
        )
    )


def withdraw(core: CoreDriver, email: str, number: str, reason: str, *, days_later: int = 0) -> str:
    actor = core.professional(email)
    return core.run(
        lambda s: withdraw_signal(
            number,
            reason,
            session=s,
            config=core.config,
            actor=actor,
            now=MONDAY + timedelta(days=days_later),
        )
    )


def extend(core: CoreDriver, email: str, number: str, months: int | None = None) -> date:
    actor = core.professional(email)
    return core.run(
        lambda s: extend_signal(
            number, months, session=s, config=core.config, actor=actor, now=MONDAY
        )
    )


def rows(core: CoreDriver, model: type[M]) -> list[M]:
    with Session(core.engine) as session:
        return list(session.exec(select(model)).all())


def signal(core: CoreDriver, number: str) -> Signal | None:
    with Session(core.engine) as session:
        return session.get(Signal, int(number.removeprefix("S-")))


def audit_actions(core: CoreDriver) -> list[str]:
    return [event.action for event in rows(core, AuditEvent)]


def born_years_ago(years: int, *, days_more: int = 0) -> date:
    """A birth date that makes the youth exactly ``years`` old on TODAY (plus ``days_more``)."""
    return TODAY.replace(year=TODAY.year - years) - timedelta(days=days_more)


# --- who may signal ---------------------------------------------------------------------------


def test_cat_member_may_not_signal_and_nothing_is_stored(core: CoreDriver) -> None:
    outbox_before = len(core.outbox())
    with pytest.raises(NotAllowed) as caught:
        place(core, CAT)
    assert "CAT" in caught.value.message
    assert rows(core, Signal) == []
    assert rows(core, Youth) == []
    assert len(core.outbox()) == outbox_before == 0
    assert "signal-placed" not in audit_actions(core)


@pytest.mark.parametrize("email", [GGD, WIJ, PLUSTEAM, SCHOOL, POLICE])
def test_professionals_of_signalling_teams_may_signal(core: CoreDriver, email: str) -> None:
    outcome = place(core, email)
    stored = signal(core, outcome.number)
    assert stored is not None and stored.status == SignalStatus.ACTIVE


def test_member_of_a_non_signalling_team_of_a_signalling_institution_is_refused(
    core: CoreDriver,
) -> None:
    with pytest.raises(NotAllowed):
        place(core, GGD_INSTITUTION_ADMIN)  # GGD's "Functioneel beheer" does not signal


# --- codes and end dates ----------------------------------------------------------------------


def test_unknown_signal_code_is_refused(core: CoreDriver) -> None:
    with pytest.raises(InvalidInput) as caught:
        place(core, GGD, code="hoog")
    assert caught.value.field == "Code"
    assert "laag" in caught.value.message and "urgent" in caught.value.message
    assert rows(core, Signal) == []


def test_signal_code_is_stored_as_the_covenant_spells_it(core: CoreDriver) -> None:
    outcome = place(core, GGD, code=" Urgent ")
    stored = signal(core, outcome.number)
    assert stored is not None and stored.code == "urgent"


def test_default_term_comes_from_the_covenant(core: CoreDriver) -> None:
    assert core.config.covenant.region.default_signal_term_months == 12
    outcome = place(core, GGD)
    assert outcome.ends_on == date(2027, 3, 2)


def test_end_date_exactly_two_years_after_placing_is_accepted(core: CoreDriver) -> None:
    outcome = place(core, GGD, ends_on=date(2028, 3, 2))
    assert outcome.ends_on == date(2028, 3, 2)


def test_end_date_one_day_past_two_years_is_refused(core: CoreDriver) -> None:
    with pytest.raises(InvalidInput) as caught:
        place(core, GGD, ends_on=date(2028, 3, 3))
    assert caught.value.field == "Einddatum"
    assert "02-03-2028" in caught.value.message
    assert rows(core, Signal) == []


@pytest.mark.parametrize("ends_on", [TODAY, TODAY - timedelta(days=1)])
def test_end_date_today_or_earlier_is_refused(core: CoreDriver, ends_on: date) -> None:
    with pytest.raises(InvalidInput) as caught:
        place(core, GGD, ends_on=ends_on)
    assert caught.value.field == "Einddatum"


def test_looptijd_of_24_months_is_the_maximum(core: CoreDriver) -> None:
    assert place(core, GGD, term_months=24).ends_on == date(2028, 3, 2)


@pytest.mark.parametrize("months", [25, 0, -1])
def test_looptijd_outside_1_to_24_months_is_refused(core: CoreDriver, months: int) -> None:
    with pytest.raises(InvalidInput) as caught:
        place(core, GGD, term_months=months)
    assert caught.value.field == "Looptijd"
    assert rows(core, Signal) == []


def test_looptijd_counts_calendar_months(core: CoreDriver) -> None:
    assert place(core, GGD, term_months=6).ends_on == date(2026, 9, 2)


def test_end_date_and_looptijd_together_are_refused(core: CoreDriver) -> None:
    with pytest.raises(InvalidInput):
        place(core, GGD, term_months=6, ends_on=date(2026, 9, 2))


# --- informing --------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_postponed_informing_without_reason_is_refused(
    core: CoreDriver, reason: str | None
) -> None:
    with pytest.raises(InvalidInput) as caught:
        place(core, GGD, informed="uitgesteld", postpone_reason=reason)
    assert caught.value.field == "Reden uitstel"
    assert rows(core, Signal) == []


def test_postponed_informing_with_reason_stores_the_reason(core: CoreDriver) -> None:
    outcome = place(core, GGD, informed="uitgesteld", postpone_reason=" veiligheid kind ")
    stored = signal(core, outcome.number)
    assert stored is not None
    assert (stored.informed, stored.postpone_reason) == ("uitgesteld", "veiligheid kind")


def test_a_postpone_reason_is_not_kept_when_informing_was_not_postponed(core: CoreDriver) -> None:
    outcome = place(core, GGD, informed="ja", postpone_reason="niet nodig", leaflet_given=True)
    stored = signal(core, outcome.number)
    assert stored is not None
    assert (stored.informed, stored.postpone_reason, stored.leaflet_given) == ("ja", None, True)


@pytest.mark.parametrize("informed", ["misschien", "", "yes"])
def test_informed_must_be_ja_nee_or_uitgesteld(core: CoreDriver, informed: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        place(core, GGD, informed=informed)
    assert caught.value.field == "Geïnformeerd"


@pytest.mark.parametrize(
    ("birth", "party"),
    [
        (born_years_ago(11), "ouders"),
        (born_years_ago(12, days_more=-1), "ouders"),  # 12 tomorrow
        (born_years_ago(12), "jongere en ouders"),
        (born_years_ago(15), "jongere en ouders"),
        (born_years_ago(16, days_more=-1), "jongere en ouders"),  # 16 tomorrow
        (born_years_ago(16), "jongere"),
        (born_years_ago(22), "jongere"),
    ],
)
def test_who_is_informed_depends_on_age(core: CoreDriver, birth: date, party: str) -> None:
    outcome = place(core, GGD, youth(BSN_A, birth))
    assert outcome.informed_party == party
    stored = signal(core, outcome.number)
    assert stored is not None and stored.informed_party == party


# --- age --------------------------------------------------------------------------------------


def test_youth_aged_23_is_refused(core: CoreDriver) -> None:
    with pytest.raises(InvalidInput) as caught:
        place(core, GGD, youth(BSN_A, born_years_ago(23)))
    assert caught.value.field == "Geboortedatum"
    assert rows(core, Signal) == [] and rows(core, Youth) == []


def test_youth_one_day_short_of_23_may_be_signalled(core: CoreDriver) -> None:
    outcome = place(core, GGD, youth(BSN_A, born_years_ago(23, days_more=-1)))
    assert outcome.informed_party == "jongere"


# --- one active signal per professional per youth ---------------------------------------------


def test_same_professional_twice_on_one_youth_is_a_conflict(core: CoreDriver) -> None:
    first = place(core, GGD)
    with pytest.raises(Conflict) as caught:
        place(core, GGD, code="urgent")
    assert first.number in caught.value.message
    assert len(rows(core, Signal)) == 1


def test_same_professional_may_signal_again_after_withdrawing(core: CoreDriver) -> None:
    first = place(core, GGD)
    withdraw(core, GGD, first.number, "risico-weg")
    second = place(core, GGD, days_later=1)
    assert second.number != first.number


def test_same_professional_may_signal_two_different_youths(core: CoreDriver) -> None:
    place(core, GGD, youth(BSN_A))
    place(core, GGD, youth(BSN_B))
    assert len(rows(core, Signal)) == 2


# --- forwarding -------------------------------------------------------------------------------


def test_signal_is_forwarded_to_every_involved_institution_but_the_signallers_own(
    core: CoreDriver,
) -> None:
    register(core, "ggd-groningen", "GGD-1")
    register(core, "wij-groningen", "WIJ-1")
    register(core, "jeugdhulp-noord", "JHN-1")
    register(core, "scholengroep-noordkust", "SCH-1")
    outcome = place(core, PLUSTEAM)  # Jeugdhulp Noord's own registration: not told
    forwarded = core.outbox("signaal")
    assert {m.institution_id for m in forwarded} == {
        "ggd-groningen",
        "wij-groningen",
        "scholengroep-noordkust",
    }
    assert all(m.reference == outcome.number for m in forwarded)
    assert all(m.recipient_role == "institution" for m in forwarded)
    by_institution = {m.institution_id: m for m in forwarded}
    # Each recipient finds the child by its own client reference, never by identity.
    assert by_institution["wij-groningen"].context["own_reference"] == "WIJ-1"
    for message in forwarded:
        assert BSN_A not in str(message.context) and "Geheimnaam" not in str(message.context)


def test_institution_involved_by_an_active_signal_is_told_of_the_next(core: CoreDriver) -> None:
    place(core, GGD)
    assert core.outbox("signaal") == []  # nobody else involved yet
    second = place(core, WIJ)
    assert [(m.institution_id, m.reference) for m in core.outbox("signaal")] == [
        ("ggd-groningen", second.number)
    ]


def test_colleague_of_the_same_institution_is_not_forwarded_the_signal(core: CoreDriver) -> None:
    register(core, "ggd-groningen", "GGD-1")
    place(core, GGD)
    place(core, GGD_COLLEAGUE)
    assert core.outbox("signaal") == []


# --- withdrawing ------------------------------------------------------------------------------


def test_withdraw_as_unjustified_deletes_the_signal(core: CoreDriver) -> None:
    outcome = place(core, GGD)
    assert withdraw(core, GGD, outcome.number.lower(), "onterecht") == outcome.number
    assert signal(core, outcome.number) is None
    deleted = [e for e in rows(core, AuditEvent) if e.action == "signal-deleted"]
    assert [e.details["signal"] for e in deleted] == [outcome.number]
    assert deleted[0].actor == f"professional:{GGD}"


def test_withdraw_as_risk_gone_archives_the_signal(core: CoreDriver) -> None:
    outcome = place(core, GGD)
    assert withdraw(core, GGD, outcome.number, "risico-weg") == outcome.number
    stored = signal(core, outcome.number)
    assert stored is not None
    assert stored.status == SignalStatus.ARCHIVED
    assert stored.archive_reason == "risk-gone"
    assert stored.archived_at is not None
    assert "signal-archived" in audit_actions(core)


def test_withdrawing_a_matched_signal_ends_the_match_and_tells_the_partner(
    core: CoreDriver,
) -> None:
    first = place(core, GGD)
    second = place(core, WIJ)
    assert second.match_number is not None
    withdraw(core, GGD, first.number, "onterecht")
    [match] = rows(core, Match)
    assert match.status == MatchStatus.ENDED
    ended = core.outbox("signaal-beeindigd")
    assert {m.recipient for m in ended} >= {WIJ}
    assert all(m.context["archived"] is False for m in ended)


def test_a_deleted_signals_number_is_never_given_again(core: CoreDriver) -> None:
    """S-numbers are in mail, Slack, reply tokens and the logboek: a new signal must never
    answer to the number of one that was deleted as unjustified."""
    deleted = place(core, GGD)
    withdraw(core, GGD, deleted.number, "onterecht")
    assert place(core, WIJ).number != deleted.number


@pytest.mark.parametrize("reason", ["weg", "", "risico"])
def test_withdraw_needs_a_known_reason(core: CoreDriver, reason: str) -> None:
    outcome = place(core, GGD)
    with pytest.raises(InvalidInput) as caught:
        withdraw(core, GGD, outcome.number, reason)
    assert caught.value.field == "reden"


@pytest.mark.parametrize("number", ["S-999", "999", "S-abc", "S-", "S-99999999999999999999999"])
def test_withdrawing_an_unknown_signal_is_not_found(core: CoreDriver, number: str) -> None:
    place(core, GGD)
    with pytest.raises(NotFound):
        withdraw(core, GGD, number, "risico-weg")


def test_withdrawing_an_archived_signal_is_a_conflict(core: CoreDriver) -> None:
    outcome = place(core, GGD)
    withdraw(core, GGD, outcome.number, "risico-weg")
    with pytest.raises(Conflict):
        withdraw(core, GGD, outcome.number, "onterecht")


@pytest.mark.parametrize(
    "email",
    [GGD, GGD_INSTITUTION_ADMIN, REGION_ADMIN],
    ids=["owner", "institution-admin", "admin"],
)
def test_owner_or_administrator_may_withdraw(core: CoreDriver, email: str) -> None:
    outcome = place(core, GGD)
    withdraw(core, email, outcome.number, "risico-weg")
    stored = signal(core, outcome.number)
    assert stored is not None and stored.status == SignalStatus.ARCHIVED


@pytest.mark.parametrize(
    "email",
    [GGD_COLLEAGUE, WIJ, JHN_INSTITUTION_ADMIN],
    ids=["colleague", "other-institution", "other-institutions-admin"],
)
def test_others_may_not_withdraw_or_extend(core: CoreDriver, email: str) -> None:
    outcome = place(core, GGD)
    with pytest.raises(NotAllowed):
        withdraw(core, email, outcome.number, "onterecht")
    with pytest.raises(NotAllowed):
        extend(core, email, outcome.number)
    stored = signal(core, outcome.number)
    assert stored is not None
    assert (stored.status, stored.ends_on) == (SignalStatus.ACTIVE, date(2027, 3, 2))


def test_current_stand_in_may_withdraw_and_extend_but_not_after_the_absence(
    core: CoreDriver,
) -> None:
    outcome = place(core, GGD, term_months=6)
    absent = core.professional(GGD)
    core.run(
        lambda s: declare_absence(
            GGD,
            TODAY,
            TODAY + timedelta(days=14),
            GGD_COLLEAGUE,
            session=s,
            config=core.config,
            actor=absent,
            now=MONDAY,
        )
    )
    assert extend(core, GGD_COLLEAGUE, outcome.number, 1) == date(2026, 10, 2)
    core.run(lambda s: end_absence(GGD, session=s, config=core.config, actor=absent, now=MONDAY))
    with pytest.raises(NotAllowed):
        extend(core, GGD_COLLEAGUE, outcome.number, 1)
    with pytest.raises(NotAllowed):
        withdraw(core, GGD_COLLEAGUE, outcome.number, "risico-weg")


def test_stand_in_may_withdraw_during_the_absence(core: CoreDriver) -> None:
    outcome = place(core, GGD)
    absent = core.professional(GGD)
    core.run(
        lambda s: declare_absence(
            GGD,
            TODAY,
            TODAY + timedelta(days=14),
            GGD_COLLEAGUE,
            session=s,
            config=core.config,
            actor=absent,
            now=MONDAY,
        )
    )
    withdraw(core, GGD_COLLEAGUE, outcome.number, "onterecht")
    assert signal(core, outcome.number) is None


def test_non_owner_learns_nothing_about_an_archived_signal(core: CoreDriver) -> None:
    outcome = place(core, GGD)
    withdraw(core, GGD, outcome.number, "risico-weg")
    with pytest.raises(NotAllowed):  # not "no longer active": permission comes first
        withdraw(core, WIJ, outcome.number, "onterecht")


# --- extending --------------------------------------------------------------------------------


def test_extend_by_the_default_term(core: CoreDriver) -> None:
    outcome = place(core, GGD, term_months=6)  # ends 02-09-2026
    assert extend(core, GGD, outcome.number) == date(2027, 9, 2)
    stored = signal(core, outcome.number)
    assert stored is not None and stored.ends_on == date(2027, 9, 2)
    [event] = [e for e in rows(core, AuditEvent) if e.action == "signal-extended"]
    assert event.details == {"signal": outcome.number, "from": "2026-09-02", "to": "2027-09-02"}


def test_extend_by_explicit_months(core: CoreDriver) -> None:
    outcome = place(core, GGD, term_months=6)
    assert extend(core, GGD, outcome.number, 3) == date(2026, 12, 2)


def test_explicit_extension_past_two_years_is_refused_naming_the_latest_date(
    core: CoreDriver,
) -> None:
    outcome = place(core, GGD)  # ends 02-03-2027; at most 02-03-2028
    with pytest.raises(InvalidInput) as caught:
        extend(core, GGD, outcome.number, 13)
    assert caught.value.field == "maanden"
    assert "02-03-2028" in caught.value.message
    stored = signal(core, outcome.number)
    assert stored is not None and stored.ends_on == date(2027, 3, 2)


def test_explicit_extension_up_to_exactly_two_years_is_accepted(core: CoreDriver) -> None:
    outcome = place(core, GGD)
    assert extend(core, GGD, outcome.number, 12) == date(2028, 3, 2)


def test_default_extension_is_clamped_to_two_years_after_placing(core: CoreDriver) -> None:
    outcome = place(core, GGD, term_months=18)  # ends 02-09-2027; +12 would be 02-09-2028
    assert extend(core, GGD, outcome.number) == date(2028, 3, 2)


def test_extending_a_signal_already_at_two_years_is_a_conflict(core: CoreDriver) -> None:
    outcome = place(core, GGD, term_months=24)
    with pytest.raises(Conflict) as caught:
        extend(core, GGD, outcome.number)
    assert "02-03-2028" in caught.value.message
    with pytest.raises(Conflict):
        extend(core, GGD, outcome.number, 1)


@pytest.mark.parametrize("months", [0, 25, -3])
def test_extension_months_must_be_1_to_24(core: CoreDriver, months: int) -> None:
    outcome = place(core, GGD, term_months=6)
    with pytest.raises(InvalidInput) as caught:
        extend(core, GGD, outcome.number, months)
    assert caught.value.field == "maanden"


def test_extending_an_archived_signal_is_a_conflict(core: CoreDriver) -> None:
    outcome = place(core, GGD)
    withdraw(core, GGD, outcome.number, "risico-weg")
    with pytest.raises(Conflict):
        extend(core, GGD, outcome.number)


def test_administrators_may_extend(core: CoreDriver) -> None:
    outcome = place(core, GGD, term_months=6)
    assert extend(core, GGD_INSTITUTION_ADMIN, outcome.number, 1) == date(2026, 10, 2)
    assert extend(core, REGION_ADMIN, outcome.number, 1) == date(2026, 11, 2)


# --- archived signal recall (DOMAIN: Lifetime) ------------------------------------------------


def test_new_signal_on_a_youth_with_an_archived_signal_gives_a_one_time_notice(
    core: CoreDriver,
) -> None:
    old = place(core, GGD)
    withdraw(core, GGD, old.number, "risico-weg", days_later=1)
    new = place(core, WIJ, days_later=2)
    assert new.match_number is None  # archived signals never match
    notices = core.outbox("archief-match")
    assert {m.recipient for m in notices} == {GGD, WIJ}
    to_new = next(m for m in notices if m.recipient == WIJ)
    assert [a["number"] for a in to_new.context["archived"]] == [old.number]
    to_old = next(m for m in notices if m.recipient == GGD)
    assert to_old.context["new_signal"]["number"] == new.number
    # A third signal does not repeat the notice.
    place(core, PLUSTEAM, days_later=3)
    assert len(core.outbox("archief-match")) == len(notices)


def test_the_archived_signals_own_reporter_signalling_again_gets_no_notice(
    core: CoreDriver,
) -> None:
    old = place(core, GGD)
    withdraw(core, GGD, old.number, "risico-weg")
    place(core, GGD, days_later=1)
    assert core.outbox("archief-match") == []
    # The notice is still owed to the next professional who signals.
    place(core, WIJ, days_later=2)
    assert {m.recipient for m in core.outbox("archief-match")} == {GGD, WIJ}


def test_a_deleted_unjustified_signal_is_never_recalled(core: CoreDriver) -> None:
    old = place(core, GGD)
    withdraw(core, GGD, old.number, "onterecht")
    place(core, WIJ, days_later=1)
    assert core.outbox("archief-match") == []


def test_archive_notice_is_sent_once_per_archived_signal(core: CoreDriver) -> None:
    first = place(core, GGD)
    withdraw(core, GGD, first.number, "risico-weg")
    place(core, WIJ, days_later=1)
    notices = len(core.outbox("archief-match"))
    # A second archived signal on the same youth is recalled by the next new signal.
    [wij_signal] = [s for s in rows(core, Signal) if s.status == SignalStatus.ACTIVE]
    withdraw(core, WIJ, wij_signal.number, "risico-weg", days_later=2)
    place(core, PLUSTEAM, days_later=3)
    recalled = core.outbox("archief-match")[notices:]
    assert {m.recipient for m in recalled} == {WIJ, PLUSTEAM}
    to_plusteam = next(m for m in recalled if m.recipient == PLUSTEAM)
    assert [a["number"] for a in to_plusteam.context["archived"]] == [wij_signal.number]


# --- from the edge to the core ----------------------------------------------------------------


def test_a_signal_parsed_from_mail_fields_is_placed(core: CoreDriver) -> None:
    request = parse_signal(
        {
            "BSN": "111 222 333",
            "Geboortedatum": "01-05-2016",
            "Gemeente": "groningen",
            "Code": "Urgent",
            "Looptijd": "6 maanden",
            "Geïnformeerd": "uitgesteld",
            "Reden uitstel": "veiligheid",
            "Folder": "nee",
            "BSN ouder": "100000009",
        }
    )
    actor = core.professional(PLUSTEAM)
    outcome = core.run(
        lambda s: place_signal(request, session=s, config=core.config, actor=actor, now=MONDAY)
    )
    assert outcome.ends_on == date(2026, 9, 2)
    assert outcome.informed_party == "ouders"
    stored = signal(core, outcome.number)
    assert stored is not None
    assert (stored.code, stored.informed, stored.postpone_reason, stored.leaflet_given) == (
        "urgent",
        "uitgesteld",
        "veiligheid",
        False,
    )
    [kid] = rows(core, Youth)
    assert kid.municipality == "Groningen"


def test_many_youths_get_their_own_signals(core: CoreDriver) -> None:
    for bsn in MORE_BSNS[:3]:
        place(core, GGD, youth(bsn))
    assert len(rows(core, Youth)) == 3
    assert len({s.youth_id for s in rows(core, Signal)}) == 3
    assert rows(core, OutboxMessage) == []  # nobody else involved: nothing to forward
