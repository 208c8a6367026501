"""The follow-up figures (issue 11.9, core.report): a March with known counts, checked figure by
figure through the `<5` rule — counts under 5 hidden, a breakdown's lone hidden cell protected
by hiding the next smallest, shares and medians over too few cases withheld — for a
municipality and for the region, and nothing outside the period."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial

import pytest
from sqlmodel import Session, select

from core.consent import record_consent
from core.coordination import accept_coordination
from core.errors import InvalidInput
from core.follow_up import confirm_match_contact
from core.identity import YouthIdentity
from core.models import AuditEvent
from core.regie import close, municipality_actor, take_up
from core.report import (
    COORDINATION,
    ENDED,
    INFORMING,
    MATCHES,
    PLACED,
    REGIE,
    SIGNALS,
    STALLS,
    SUPPRESSED,
    WITHDRAWN,
    WITHHELD,
    Report,
    ReportPeriod,
    follow_up_report,
    monthly_trend,
    report_csv,
    report_period,
    shown,
    shown_breakdown,
    shown_median,
    shown_share,
    view_report,
)
from core.scheduler import sweep
from core.signals import PlaceSignal, SignalOutcome, place_signal, withdraw_signal
from tests.bsns import valid_bsns
from tests.core.conftest import MONDAY, CoreDriver

MARCH = ReportPeriod(date(2026, 3, 1), date(2026, 3, 31))
ANNA = "a.devries@ggd-groningen.example"  # GGD
SANNE = "s.jansen@wij-groningen.example"  # WIJ-team
EVA = "e.meijer@jeugdhulp-noord.example"  # jeugdhulp
IRIS = "i.wiersma@politie-nn.example"  # politie
LOTTE = "l.hoekstra@sociaalteam-westerkwartier.example"  # sociaal team
GRONINGEN_CONTACT = "regie.verwijsindex@gemeente-groningen.example"


@dataclass(frozen=True)
class March:
    """What the scenario did, for the tests that build on it (CLI, mail)."""

    core: CoreDriver
    swept_at: datetime


def child(bsn: str) -> YouthIdentity:
    return YouthIdentity(bsn=bsn, birth_date=date(2016, 5, 1), name="Testkind Geheimnaam")


def place(
    core: CoreDriver,
    email: str,
    identity: YouthIdentity,
    *,
    code: str = "laag",
    town: str = "Groningen",
    informed: str = "ja",
    at: datetime = MONDAY,
) -> SignalOutcome:
    reason = None if informed == "ja" else "nog geen contact gehad"
    request = PlaceSignal(identity, town, code, informed, postpone_reason=reason)
    actor = core.professional(email)
    return core.run(
        lambda s: place_signal(request, session=s, config=core.config, actor=actor, now=at)
    )


def act_as_municipality(
    core: CoreDriver, reference: str, action: Callable[..., object], at: datetime
) -> None:
    def work(session: Session) -> object:
        actor = municipality_actor(session, reference, GRONINGEN_CONTACT, "smtp")
        return action(reference, session=session, config=core.config, actor=actor, now=at)

    core.run(work)


def number(reference: str | None) -> int:
    assert reference is not None
    return int(reference.split("-")[1])


def play_march(core: CoreDriver) -> March:
    """In Groningen, March 2026 (MONDAY is the 2nd):

    * 10 youths signalled by Anna (GGD, informed) and Sanne (WIJ, not yet informed): 20 signals,
      10 matches, 10 coordinations (WIJ, by the city's rule). WIJ accepts 6 the next day (in
      time); the other 4 are escalated at the deadline. Both partners confirm contact in 5
      matches after 2 days; the other 5 matches are escalated.
    * 5 youths signalled by Eva (jeugdhulp), withdrawn the same day: 3 unjustified (deleted), 2
      because the risk is gone (archived).
    * 5 youths signalled urgent by Iris (politie), informing postponed.

    After the sweep (the 12th), Anna records consent given and Sanne consent refused in the 5
    followed-up matches; the municipality takes up (REGIE) the 5 stalled matches and closes
    (AFGEROND) one escalated coordination.

    In Westerkwartier one more youth with a match (Anna and Lotte); in April one more signal.
    """
    bsns = valid_bsns(22, start_prefix=31_000_000)
    pairs, withdrawn, urgent = bsns[:10], bsns[10:15], bsns[15:20]
    day = timedelta(days=1)
    matches, coordinations = [], []
    for bsn in pairs:
        place(core, ANNA, child(bsn))
        outcome = place(core, SANNE, child(bsn), informed="nee")
        matches.append(number(outcome.match_number))
        coordination = number(outcome.coordination_number)
        coordinations.append(coordination)
        if len(matches) <= 6:
            wij = core.institution("wij-groningen")
            core.run(
                lambda s, c=coordination, w=wij: accept_coordination(
                    c, session=s, config=core.config, actor=w, now=MONDAY + day
                )
            )
    for match_id in matches[:5]:
        for email in (ANNA, SANNE):
            actor = core.professional(email)
            core.run(
                lambda s, m=match_id, a=actor: confirm_match_contact(
                    m, session=s, config=core.config, actor=a, now=MONDAY + 2 * day
                )
            )
    for index, bsn in enumerate(withdrawn):
        outcome = place(core, EVA, child(bsn))
        reason = "onterecht" if index < 3 else "risico-weg"
        eva = core.professional(EVA)
        core.run(
            lambda s, n=outcome.number, r=reason, e=eva: withdraw_signal(
                n, r, session=s, config=core.config, actor=e, now=MONDAY + timedelta(hours=2)
            )
        )
    for bsn in urgent:
        place(core, IRIS, child(bsn), code="urgent", informed="uitgesteld")
    place(core, ANNA, child(bsns[20]), town="Westerkwartier")
    place(core, LOTTE, child(bsns[20]), town="Westerkwartier")
    swept_at = MONDAY + 10 * day  # past every deadline of the 2nd (5 working days)
    sweep(core.engine, core.config, now=swept_at)
    for match_id in matches[:5]:  # consent: Anna's youths gave it, Sanne's refused
        for email, status in ((ANNA, "gegeven"), (SANNE, "geweigerd")):
            actor = core.professional(email)
            core.run(
                lambda s, m=match_id, a=actor, w=status: record_consent(
                    f"M-{m}", w, session=s, config=core.config, actor=a, now=swept_at
                )
            )
    for match_id in matches[5:]:  # the municipality takes up the 5 stalled matches
        act_as_municipality(core, f"M-{match_id}", take_up, swept_at)
    act_as_municipality(
        core, f"C-{coordinations[-1]}", partial(close, note="gezin verhuisd"), swept_at
    )
    place(core, EVA, child(bsns[21]), at=datetime(2026, 4, 1, 8, 0, tzinfo=MONDAY.tzinfo))
    return March(core, swept_at)


@pytest.fixture
def march(core: CoreDriver) -> March:
    return play_march(core)


def report_for(core: CoreDriver, municipality: str | None, period: ReportPeriod) -> Report:
    with Session(core.engine) as session:
        return follow_up_report(session, core.config, municipality=municipality, period=period)


# --- the suppression rule ------------------------------------------------------------------


def test_a_count_under_five_is_shown_as_less_than_five() -> None:
    assert [shown(n) for n in (0, 1, 4, 5, 6, 120)] == ["<5", "<5", "<5", "5", "6", "120"]


def test_a_lone_hidden_cell_of_a_breakdown_takes_the_smallest_visible_cell_with_it() -> None:
    assert shown_breakdown({"laag": 25, "urgent": 5}) == {"laag": "25", "urgent": "5"}
    assert shown_breakdown({"laag": 25, "urgent": 2}) == {"laag": "<5", "urgent": "<5"}
    assert shown_breakdown({"a": 9, "b": 3, "c": 6}) == {"a": "9", "b": "<5", "c": "<5"}
    # Two hidden cells already hide each other: their sum is known, not their values.
    assert shown_breakdown({"a": 9, "b": 3, "c": 1}) == {"a": "9", "b": "<5", "c": "<5"}
    assert shown_breakdown({"a": 0}) == {"a": "<5"}


def test_a_share_or_median_over_few_cases_or_giving_away_a_small_count_is_withheld() -> None:
    assert shown_share(5, 10) == "50 %"
    assert shown_share(12, 27) == "44 %"
    assert shown_share(3, 4) == WITHHELD  # fewer than 5 cases
    assert shown_share(2, 10) == WITHHELD  # 20 % of a shown 10 would give away 2
    assert shown_share(8, 10) == WITHHELD  # ... and 80 % the 2 that did not
    assert shown_median([1.0, 2.0, 2.5, 3.0, 10.0]) == "2,5"
    assert shown_median([1.0, 2.0, 3.0, 4.0]) == WITHHELD


def test_the_period_defaults_to_the_last_full_month_and_must_not_end_before_it_starts() -> None:
    assert report_period(None, None, today=date(2026, 4, 1)) == MARCH
    assert report_period(None, None, today=date(2026, 1, 15)) == ReportPeriod(
        date(2025, 12, 1), date(2025, 12, 31)
    )
    assert report_period(date(2026, 3, 10), None, today=date(2026, 3, 20)) == ReportPeriod(
        date(2026, 3, 10), date(2026, 3, 20)
    )
    assert report_period(None, date(2026, 3, 20), today=date(2026, 4, 2)) == ReportPeriod(
        date(2026, 3, 1), date(2026, 3, 20)
    )
    with pytest.raises(InvalidInput) as refused:
        report_period(date(2026, 3, 10), date(2026, 3, 1), today=date(2026, 4, 1))
    assert refused.value.field == "--to"
    assert MARCH.label == "maart 2026"
    assert ReportPeriod(date(2026, 3, 10), date(2026, 3, 20)).label == "10-03-2026 t/m 20-03-2026"


# --- the figures of a known March ----------------------------------------------------------


def test_the_signal_figures_of_a_municipality(march: March) -> None:
    report = report_for(march.core, "Groningen", MARCH)
    value = report.value
    assert value(SIGNALS, "totaal", PLACED) == "30"  # 20 + 5 withdrawn + 5 urgent
    assert value(SIGNALS, "code laag", PLACED) == "25"
    assert value(SIGNALS, "code urgent", PLACED) == "5"
    assert value(SIGNALS, "instelling ggd", PLACED) == "10"
    assert value(SIGNALS, "instelling wij-team", PLACED) == "10"
    assert value(SIGNALS, "instelling jeugdhulp", PLACED) == "5"
    assert value(SIGNALS, "instelling politie", PLACED) == "5"
    # Withdrawn: 3 deleted as unjustified (only the logboek still knows them) + 2 risk gone.
    assert value(SIGNALS, "totaal", WITHDRAWN) == "5"
    assert value(SIGNALS, "instelling jeugdhulp", WITHDRAWN) == "5"
    assert value(SIGNALS, "instelling ggd", WITHDRAWN) == SUPPRESSED
    # laag 5 / urgent 0: the 0 alone would be derivable from the total, so laag hides too.
    assert value(SIGNALS, "code laag", WITHDRAWN) == SUPPRESSED
    assert value(SIGNALS, "code urgent", WITHDRAWN) == SUPPRESSED
    assert value(SIGNALS, "totaal", ENDED) == SUPPRESSED
    assert "instelling sociaal-team" not in report.section(SIGNALS)[0]  # Westerkwartier's


def test_the_match_coordination_stall_and_informing_figures_of_a_municipality(
    march: March,
) -> None:
    value = report_for(march.core, "Groningen", MARCH).value
    assert value(MATCHES, "totaal") == "10"
    # 10 matches of one youth and 0 family matches: the 0 would give the 10 away.
    assert value(MATCHES, "matches (één jeugdige)") == SUPPRESSED
    assert value(MATCHES, "gezinsmatches") == SUPPRESSED
    assert value(MATCHES, "contact bevestigd door alle partners") == "50 %"
    assert value(MATCHES, "mediaan dagen tot contact") == "2,0"
    assert value(COORDINATION, "toegewezen") == "10"
    assert value(COORDINATION, "geaccepteerd") == "6"
    # 6 of 6 in time: 0 late is a count under 5, so the share is withheld.
    assert value(COORDINATION, "geaccepteerd binnen de termijn") == WITHHELD
    assert value(COORDINATION, "geweigerd") == SUPPRESSED
    assert value(COORDINATION, "geëscaleerd naar de gemeente") == SUPPRESSED  # 4
    assert value(COORDINATION, "mediaan dagen tot acceptatie") == "1,0"
    assert value(STALLS, "totaal") == "9"  # 4 coordinations + 5 matches
    assert value(STALLS, "match-opvolging: geen contact binnen de termijn") == "5"
    assert value(STALLS, "procescoördinatie: geen antwoord binnen de termijn") == SUPPRESSED
    assert value(REGIE, "totaal") == "6"
    assert value(REGIE, "regie genomen") == "5"
    assert value(REGIE, "afgerond") == SUPPRESSED
    assert value(REGIE, "instelling aangewezen") == SUPPRESSED
    # Held signals placed in March: 27 (3 were deleted); informed: Anna's 10 and Eva's 2.
    assert value(INFORMING, "signalen waarbij jongere/ouders zijn geïnformeerd") == "44 %"
    assert value(INFORMING, "toestemming na een match vastgelegd") == "10"
    assert value(INFORMING, "waarvan toestemming gegeven") == "50 %"


def test_the_region_counts_every_municipality(march: March) -> None:
    value = report_for(march.core, None, MARCH).value
    assert value(SIGNALS, "totaal", PLACED) == "32"
    assert value(SIGNALS, "instelling ggd", PLACED) == "11"
    assert value(SIGNALS, "instelling sociaal-team", PLACED) == SUPPRESSED
    assert value(MATCHES, "totaal") == "11"
    assert value(COORDINATION, "toegewezen") == "11"
    westerkwartier = report_for(march.core, "Westerkwartier", MARCH).value
    assert westerkwartier(SIGNALS, "totaal", PLACED) == SUPPRESSED
    assert westerkwartier(MATCHES, "contact bevestigd door alle partners") == WITHHELD


def test_nothing_outside_the_period_counts(march: March) -> None:
    april = report_for(march.core, "Groningen", ReportPeriod.month_of(date(2026, 4, 1)))
    assert april.value(SIGNALS, "totaal", PLACED) == SUPPRESSED  # the one of 1 April
    assert april.value(MATCHES, "totaal") == SUPPRESSED
    first_days = report_for(march.core, "Groningen", ReportPeriod(MARCH.first, date(2026, 3, 2)))
    assert first_days.value(SIGNALS, "totaal", PLACED) == "30"
    assert first_days.value(COORDINATION, "geaccepteerd") == SUPPRESSED  # on the 3rd


def test_every_cell_is_a_shown_value_and_the_csv_carries_them_all(march: March) -> None:
    report = report_for(march.core, "Groningen", MARCH)
    for figure in report.figures:
        value = figure.value
        assert (
            value in (SUPPRESSED, WITHHELD)
            or value.endswith(" %")
            or "," in value
            or (value.isdigit() and int(value) >= 5)
        ), figure
    lines = report_csv(report).splitlines()
    assert lines[0] == "gemeente;van;tot en met;onderdeel;regel;kolom;waarde"
    assert len(lines) == 1 + len(report.figures)
    assert "Groningen;2026-03-01;2026-03-31;Signalen;totaal;geplaatst;30" in lines


def test_the_trend_counts_each_month(march: March) -> None:
    with Session(march.core.engine) as session:
        trend = monthly_trend(
            session, march.core.config, municipality="Groningen", last_month=MARCH, months=3
        )
    assert [p.period.label for p in trend] == ["januari 2026", "februari 2026", "maart 2026"]
    assert [(p.signals_placed, p.matches) for p in trend] == [
        ("<5", "<5"),
        ("<5", "<5"),
        ("30", "10"),
    ]


def test_viewing_a_report_is_in_the_logboek_and_an_unknown_municipality_is_refused(
    core: CoreDriver,
) -> None:
    actor = core.professional(ANNA)
    core.run(
        lambda s: view_report(
            s,
            core.config,
            municipality="midden-groningen",
            first=None,
            last=None,
            actor=actor,
            now=MONDAY,
        )
    )
    with Session(core.engine) as session:
        [event] = session.exec(select(AuditEvent).where(AuditEvent.action == "report-viewed")).all()
    assert event.subject == "municipality:Midden-Groningen"
    assert event.details == {"from": "2026-02-01", "to": "2026-02-28"}
    with pytest.raises(InvalidInput) as refused:
        core.run(
            lambda s: view_report(
                s,
                core.config,
                municipality="Atlantis",
                first=None,
                last=None,
                actor=actor,
                now=MONDAY,
            )
        )
    assert refused.value.field == "--municipality"
    assert "onbekende gemeente 'Atlantis'" in refused.value.message


def test_an_acceptance_after_the_working_day_deadline_is_not_in_time(core: CoreDriver) -> None:
    """5 coordinations accepted the next day, 5 after the deadline (5 working days; no sweep
    ran, so none was escalated): half in time."""
    wij = core.institution("wij-groningen")
    for index, bsn in enumerate(valid_bsns(10, start_prefix=32_000_000)):
        place(core, ANNA, child(bsn))
        coordination = number(place(core, SANNE, child(bsn)).coordination_number)
        late = MONDAY + timedelta(days=8 if index % 2 else 1)  # Tuesday the 10th: one day late
        core.run(
            lambda s, c=coordination, at=late: accept_coordination(
                c, session=s, config=core.config, actor=wij, now=at
            )
        )
    value = report_for(core, "Groningen", MARCH).value
    assert value(COORDINATION, "geaccepteerd") == "10"
    assert value(COORDINATION, "geaccepteerd binnen de termijn") == "50 %"
    assert value(COORDINATION, "mediaan dagen tot acceptatie") == "4,5"
