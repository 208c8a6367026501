"""Lifetimes set by law (DOMAIN: Age, Lifetime), driven by the sweep: the expiry warning a week
before a signal's end date, archiving the day after it, purging the archive after 5 years, and
purging everything about a youth on the 23rd birthday. The sweep is idempotent, leaves an audit
event for every purge, and keeps the audit chain intact."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, SQLModel, select

from core import scheduler
from core.audit import verify_chain
from core.db import transaction
from core.models import (
    AuditEvent,
    Coordination,
    InboundMessage,
    InboundStatus,
    Match,
    MatchKind,
    MatchMember,
    MatchStatus,
    OutboxMessage,
    Registration,
    RegistrationStatus,
    ReplyPurpose,
    ReplyToken,
    Signal,
    SignalStatus,
    Youth,
    YouthParent,
)
from core.registration import RegisterYouth, register_youth
from core.replies import ReplyAction, answer
from core.retention import purge_adults, purge_old_archive, purge_youth
from core.scheduler import sweep
from core.signals import PlaceSignal, SignalOutcome, place_signal, withdraw_signal
from tests.core.conftest import BSN_A, BSN_B, BSN_C, BSN_PARENT, MONDAY, CoreDriver, youth

M = TypeVar("M", bound=SQLModel)

GGD = "a.devries@ggd-groningen.example"
WIJ = "s.jansen@wij-groningen.example"
PLUSTEAM = "e.meijer@jeugdhulp-noord.example"
GRONINGEN = ZoneInfo("Europe/Amsterdam")
ON_SQLITE = not os.environ.get("VERWIJSINDEX_TEST_DATABASE_URL", "").startswith("postgresql")


@pytest.fixture(autouse=True)
def audit_chain_stays_intact(core: CoreDriver) -> Iterator[None]:
    yield
    with Session(core.engine) as session:
        _, broken = verify_chain(session)
    assert broken is None, broken


# --- helpers ----------------------------------------------------------------------------------


def at(day: date, hour: int = 3, minute: int = 0) -> datetime:
    """A moment on ``day`` in Groningen (a nightly sweep at 03:00 local time by default)."""
    return datetime.combine(day, time(hour, minute), tzinfo=GRONINGEN).astimezone(UTC)


def run_sweep(core: CoreDriver, day: date, hour: int = 3) -> dict[str, int]:
    return sweep(core.engine, core.config, now=at(day, hour))


def place(
    core: CoreDriver,
    email: str,
    *,
    bsn: str = BSN_A,
    birth: date = date(2016, 5, 1),
    ends_on: date | None = None,
    parent_bsns: tuple[str, ...] = (),
) -> SignalOutcome:
    actor = core.professional(email)
    request = PlaceSignal(
        youth(bsn, birth), "Groningen", "laag", "ja", ends_on=ends_on, parent_bsns=parent_bsns
    )
    return core.run(
        lambda s: place_signal(request, session=s, config=core.config, actor=actor, now=MONDAY)
    )


def register(
    core: CoreDriver,
    institution_id: str,
    *,
    bsn: str = BSN_A,
    birth: date = date(2016, 5, 1),
    ends_on: date | None = None,
    parent_bsns: tuple[str, ...] = (),
) -> None:
    request = RegisterYouth(
        youth(bsn, birth),
        "Groningen",
        f"{institution_id}-K{int(bsn) % 99991}",  # a kenmerk never holds the BSN
        ends_on=ends_on,
        parent_bsns=parent_bsns,
    )
    core.run(
        lambda s: register_youth(
            request,
            session=s,
            config=core.config,
            actor=core.institution(institution_id),
            now=MONDAY,
        )
    )


def archived_signals_purged(core: CoreDriver, day: date) -> int:
    return core.run(lambda s: purge_old_archive(s, core.config, at(day)))


def adults_purged(core: CoreDriver, day: date) -> int:
    return core.run(lambda s: purge_adults(s, core.config, at(day)))


def rows(core: CoreDriver, model: type[M]) -> list[M]:
    with Session(core.engine) as session:
        return list(session.exec(select(model)).all())


def signal(core: CoreDriver, number: str) -> Signal | None:
    with Session(core.engine) as session:
        return session.get(Signal, int(number.removeprefix("S-")))


def audit_events(core: CoreDriver, action: str) -> list[AuditEvent]:
    return [e for e in rows(core, AuditEvent) if e.action == action]


def snapshot(core: CoreDriver) -> dict[str, Any]:
    """Everything the sweep may change, in comparable form."""
    tables: list[type[SQLModel]] = [
        Youth,
        YouthParent,
        Registration,
        Signal,
        Match,
        MatchMember,
        Coordination,
        OutboxMessage,
        ReplyToken,
        AuditEvent,
    ]
    state: dict[str, Any] = {}
    with Session(core.engine) as session:
        for table in tables:
            state[table.__name__] = sorted(
                (repr(sorted(row.model_dump().items())) for row in session.exec(select(table))),
            )
    return state


# --- expiry warning ---------------------------------------------------------------------------

END = date(2026, 4, 1)  # a Wednesday; the warning is due 7 days earlier, on 25-03-2026


def test_expiry_warning_goes_out_reminder_lead_days_before_the_end_date(core: CoreDriver) -> None:
    assert core.config.covenant.region.reminder_lead_days == 7
    outcome = place(core, GGD, ends_on=END)
    run_sweep(core, END - timedelta(days=8))
    assert core.outbox("signaal-verloopt") == []
    report = run_sweep(core, END - timedelta(days=7))
    assert report["expiry_warnings"] == 1
    [warning] = core.outbox("signaal-verloopt")
    assert (warning.recipient, warning.reference) == (GGD, outcome.number)
    assert warning.context["signal"]["ends_on"] == END.isoformat()
    assert warning.context["can_extend"] is True
    # The reporter can answer VERLENG: the warning carries a personal reply token.
    assert warning.reply_token
    [token] = [t for t in rows(core, ReplyToken) if t.token == warning.reply_token]
    assert token.purpose == ReplyPurpose.SIGNAL_EXPIRY
    assert token.subject_id == int(outcome.number.removeprefix("S-"))
    assert token.professional_id == warning.professional_id


def test_expiry_warning_is_sent_once(core: CoreDriver) -> None:
    place(core, GGD, ends_on=END)
    run_sweep(core, END - timedelta(days=7))
    run_sweep(core, END - timedelta(days=7), hour=4)
    run_sweep(core, END - timedelta(days=6))
    run_sweep(core, END)
    assert len(core.outbox("signaal-verloopt")) == 1


def test_sweep_that_missed_the_lead_day_still_warns_before_the_end(core: CoreDriver) -> None:
    place(core, GGD, ends_on=END)
    assert run_sweep(core, END - timedelta(days=2))["expiry_warnings"] == 1


def test_extended_signal_is_warned_again_before_its_new_end_date(core: CoreDriver) -> None:
    outcome = place(core, GGD, ends_on=END)
    run_sweep(core, END - timedelta(days=7))
    [warning] = core.outbox("signaal-verloopt")
    assert warning.reply_token is not None
    token = warning.reply_token
    confirmation = core.run(
        lambda s: answer(
            token,
            ReplyAction("extend", "2"),
            sender=GGD,
            channel="smtp",
            session=s,
            config=core.config,
            now=at(END - timedelta(days=6)),
        )
    )
    assert "01-06-2026" in confirmation
    stored = signal(core, outcome.number)
    assert stored is not None and stored.ends_on == date(2026, 6, 1)
    assert stored.expiry_warned_at is None
    run_sweep(core, END + timedelta(days=1))
    stored = signal(core, outcome.number)
    assert stored is not None and stored.status == SignalStatus.ACTIVE
    assert len(core.outbox("signaal-verloopt")) == 1
    run_sweep(core, date(2026, 6, 1) - timedelta(days=7))
    assert [m.context["signal"]["ends_on"] for m in core.outbox("signaal-verloopt")] == [
        END.isoformat(),
        "2026-06-01",
    ]


def test_warning_of_a_signal_at_its_two_year_limit_says_it_cannot_be_extended(
    core: CoreDriver,
) -> None:
    last = date(2028, 3, 2)
    place(core, GGD, ends_on=last)
    run_sweep(core, last - timedelta(days=7))
    [warning] = core.outbox("signaal-verloopt")
    assert warning.context["can_extend"] is False
    assert warning.context["latest_end"] == last.isoformat()


# --- archiving at the end date ----------------------------------------------------------------


def test_signal_is_active_on_its_end_date_and_archived_the_day_after(core: CoreDriver) -> None:
    register(core, "wij-groningen")
    outcome = place(core, GGD, ends_on=END)
    run_sweep(core, END, hour=23)
    stored = signal(core, outcome.number)
    assert stored is not None and stored.status == SignalStatus.ACTIVE
    assert core.outbox("signaal-beeindigd") == []

    report = run_sweep(core, END + timedelta(days=1), hour=0)
    assert report["archived_signals"] == 1
    stored = signal(core, outcome.number)
    assert stored is not None
    assert stored.status == SignalStatus.ARCHIVED
    assert stored.archive_reason == "expired"
    assert stored.archived_at is not None
    ended = core.outbox("signaal-beeindigd")
    # The reporter (who did not extend) and the other involved institution are told.
    assert {(m.recipient_role, m.professional_id is not None) for m in ended} == {
        ("professional", True),
        ("institution", False),
    }
    assert {m.institution_id for m in ended} == {"ggd-groningen", "wij-groningen"}
    assert all(m.reference == outcome.number for m in ended)
    assert all(m.context["reason"] == "expired" for m in ended)
    [event] = audit_events(core, "signal-archived")
    assert event.details == {"signal": outcome.number, "reason": "expired"}
    assert event.actor == "system:scheduler"


def test_end_date_is_a_local_calendar_day(core: CoreDriver) -> None:
    outcome = place(core, GGD, ends_on=END)
    # 23:30 UTC on the end date is already the next day in Groningen.
    sweep(core.engine, core.config, now=datetime.combine(END, time(23, 30), tzinfo=UTC))
    stored = signal(core, outcome.number)
    assert stored is not None and stored.status == SignalStatus.ARCHIVED


def test_archiving_ends_the_match_of_the_expired_signal(core: CoreDriver) -> None:
    place(core, GGD, ends_on=END)
    second = place(core, WIJ, ends_on=date(2026, 9, 1))
    assert second.match_number is not None
    run_sweep(core, END + timedelta(days=1))
    [match] = rows(core, Match)
    assert match.status == MatchStatus.ENDED
    assert WIJ in {m.recipient for m in core.outbox("signaal-beeindigd")}


def test_archived_signal_is_recalled_once_when_the_youth_is_signalled_again(
    core: CoreDriver,
) -> None:
    old = place(core, GGD, ends_on=END)
    run_sweep(core, END + timedelta(days=1))
    actor = core.professional(WIJ)
    request = PlaceSignal(youth(), "Groningen", "laag", "ja")
    core.run(
        lambda s: place_signal(
            request, session=s, config=core.config, actor=actor, now=at(END + timedelta(days=3))
        )
    )
    notices = core.outbox("archief-match")
    assert {m.recipient for m in notices} == {GGD, WIJ}
    assert next(m for m in notices if m.recipient == WIJ).context["archived"][0]["number"] == (
        old.number
    )


# --- registrations with an end date -----------------------------------------------------------


def test_registration_with_an_end_date_ends_the_day_after(core: CoreDriver) -> None:
    register(core, "ggd-groningen", ends_on=END)
    run_sweep(core, END)
    [registration] = rows(core, Registration)
    assert registration.status == RegistrationStatus.ACTIVE
    assert run_sweep(core, END + timedelta(days=1))["ended_registrations"] == 1
    [registration] = rows(core, Registration)
    assert registration.status == RegistrationStatus.ENDED
    assert len(audit_events(core, "registration-ended")) == 1
    assert run_sweep(core, END + timedelta(days=2))["ended_registrations"] == 0


# --- the archive is purged after 5 years ------------------------------------------------------


def test_archived_signal_is_purged_5_years_after_archiving(core: CoreDriver) -> None:
    expired = place(core, GGD, ends_on=END)
    withdrawn = place(core, WIJ, ends_on=date(2027, 1, 1))
    still_active = place(core, PLUSTEAM, ends_on=date(2028, 3, 2))
    run_sweep(core, END + timedelta(days=1))  # archives `expired` on 02-04-2026
    actor = core.professional(WIJ)
    core.run(
        lambda s: withdraw_signal(
            withdrawn.number,
            "risico-weg",
            session=s,
            config=core.config,
            actor=actor,
            now=at(date(2026, 6, 1), hour=14),
        )
    )
    run_sweep(core, date(2028, 3, 3))  # archives `still_active` the day after its end date
    archived_on = END + timedelta(days=1)
    five_years_later = date(2031, 4, 2)

    run_sweep(core, five_years_later - timedelta(days=1), hour=23)
    assert signal(core, expired.number) is not None
    assert audit_events(core, "archive-purged") == []

    report = run_sweep(core, five_years_later)
    assert report["purged_archive"] == 1
    assert signal(core, expired.number) is None
    assert signal(core, withdrawn.number) is not None  # archived later: kept until 2031-06-01
    [event] = audit_events(core, "archive-purged")
    assert event.details == {"signals": [expired.number]}
    assert archived_on.replace(year=2031) == five_years_later

    # The youth itself stays (it is not 23 yet); the other archived signal goes in its turn.
    assert len(rows(core, Youth)) == 1
    run_sweep(core, date(2031, 6, 1))
    assert signal(core, withdrawn.number) is None
    assert len(audit_events(core, "archive-purged")) == 2
    # The signal that ran until 02-03-2028 was archived on 03-03-2028: purged on 03-03-2033.
    stored = signal(core, still_active.number)
    assert stored is not None and stored.status == SignalStatus.ARCHIVED
    assert archived_signals_purged(core, date(2033, 3, 2)) == 0
    assert archived_signals_purged(core, date(2033, 3, 3)) == 1


def test_archive_purge_deletes_the_signals_old_match_membership(core: CoreDriver) -> None:
    place(core, GGD, ends_on=END)
    place(core, WIJ, ends_on=END)
    run_sweep(core, END + timedelta(days=1))
    assert len(rows(core, MatchMember)) == 2
    run_sweep(core, date(2031, 4, 2))
    assert rows(core, Signal) == [] and rows(core, MatchMember) == []
    [match] = rows(core, Match)  # the ended match row carries no identity; it stays
    assert match.status == MatchStatus.ENDED


# --- everything is purged on the 23rd birthday ------------------------------------------------

# 22 years and 364 days old on MONDAY (02-03-2026): 23 on 03-03-2026.
ALMOST_23 = date(2003, 3, 3)
BIRTHDAY = date(2026, 3, 3)


def _family_with_an_almost_adult(core: CoreDriver) -> None:
    """The almost-adult (BSN_A): two registrations, two signals (a match, a coordination), a
    parent link; a younger sibling (BSN_B) with a signal of its own: a family match."""
    for institution in ("ggd-groningen", "wij-groningen"):
        register(core, institution, birth=ALMOST_23, parent_bsns=(BSN_PARENT,))
    place(core, GGD, birth=ALMOST_23, parent_bsns=(BSN_PARENT,))
    assert place(core, WIJ, birth=ALMOST_23).match_number is not None
    register(core, "jeugdhulp-noord", bsn=BSN_B, parent_bsns=(BSN_PARENT,))
    place(core, PLUSTEAM, bsn=BSN_B)
    # An unrelated youth is untouched throughout.
    register(core, "ggd-groningen", bsn=BSN_C)


def test_everything_about_a_youth_is_purged_on_the_23rd_birthday(core: CoreDriver) -> None:
    _family_with_an_almost_adult(core)
    with Session(core.engine) as session:
        adult_id = session.exec(
            select(Youth.id).where(Youth.identity_key == core.config.keys.bsn_digest(BSN_A))
        ).one()
        assert session.exec(select(Coordination).where(Coordination.youth_id == adult_id)).all()
    [family] = [m for m in rows(core, Match) if m.kind == MatchKind.FAMILY]
    assert family.status == MatchStatus.ACTIVE

    assert run_sweep(core, BIRTHDAY)["purge_adults"] == 1

    assert adult_id not in {y.id for y in rows(core, Youth)}
    assert len(rows(core, Youth)) == 2  # the sibling and the unrelated youth
    assert all(r.youth_id != adult_id for r in rows(core, Registration))
    assert all(s.youth_id != adult_id for s in rows(core, Signal))
    assert all(p.youth_id != adult_id for p in rows(core, YouthParent))
    assert all(c.youth_id != adult_id for c in rows(core, Coordination))
    remaining_signals = {s.id for s in rows(core, Signal)}
    assert all(m.signal_id in remaining_signals for m in rows(core, MatchMember))
    # The client match is ended and no longer points at the youth.
    [client] = [m for m in rows(core, Match) if m.kind == MatchKind.CLIENT]
    assert (client.status, client.youth_id) == (MatchStatus.ENDED, None)
    # Without the adult's signals the sibling alone is no family match any more.
    [family] = [m for m in rows(core, Match) if m.kind == MatchKind.FAMILY]
    assert family.status == MatchStatus.ENDED
    # The sibling keeps its own registration, signal and parent link.
    sibling_key = core.config.keys.bsn_digest(BSN_B)
    [sibling] = [y for y in rows(core, Youth) if y.identity_key == sibling_key]
    assert [s.status for s in rows(core, Signal) if s.youth_id == sibling.id] == ["active"]
    assert [p.youth_id for p in rows(core, YouthParent)] == [sibling.id]

    [event] = audit_events(core, "youth-purged")
    assert event.subject == f"youth:{adult_id}"
    assert event.details["reason"] == "23rd birthday"
    assert (event.details["signals"], event.details["registrations"]) == (2, 2)
    assert BSN_A not in str(event.details)


def test_nothing_is_purged_the_day_before_the_23rd_birthday(core: CoreDriver) -> None:
    _family_with_an_almost_adult(core)
    before = {table: len(rows(core, table)) for table in (Youth, Registration, Signal, Match)}
    run_sweep(core, BIRTHDAY - timedelta(days=1))
    # 23:59 local time on the last day of being 22 (22:59 UTC).
    sweep(core.engine, core.config, now=at(BIRTHDAY - timedelta(days=1), hour=23, minute=59))
    after = {table: len(rows(core, table)) for table in (Youth, Registration, Signal, Match)}
    assert after == before
    assert audit_events(core, "youth-purged") == []
    # Midnight in Groningen: the birthday has begun.
    sweep(core.engine, core.config, now=at(BIRTHDAY, hour=0))
    assert len(audit_events(core, "youth-purged")) == 1


def test_youth_born_on_29_february_is_purged_on_1_march(core: CoreDriver) -> None:
    born = date(2004, 2, 29)  # 23rd birthday: 01-03-2027
    register(core, "ggd-groningen", birth=born)
    assert adults_purged(core, date(2027, 2, 28)) == 0
    assert adults_purged(core, date(2027, 3, 1)) == 1
    assert rows(core, Youth) == [] and rows(core, Registration) == []


def test_purging_a_youth_that_is_already_gone_does_nothing(core: CoreDriver) -> None:
    register(core, "ggd-groningen", birth=ALMOST_23)
    [kid] = rows(core, Youth)
    assert kid.id is not None
    youth_id = kid.id
    with transaction(core.engine) as session:
        assert purge_youth(session, core.config, youth_id, reason="overleden", now=MONDAY)
    with transaction(core.engine) as session:
        assert not purge_youth(session, core.config, youth_id, reason="overleden", now=MONDAY)
    [event] = audit_events(core, "youth-purged")
    assert event.details["reason"] == "overleden"


def test_purged_youth_registered_again_starts_afresh(core: CoreDriver) -> None:
    """The BSN digest is the same, but nothing of the old record comes back."""
    register(core, "ggd-groningen", birth=date(2016, 5, 1))
    [kid] = rows(core, Youth)
    with transaction(core.engine) as session:
        purge_youth(session, core.config, kid.id or 0, reason="overleden", now=MONDAY)
    register(core, "wij-groningen", birth=date(2016, 5, 1))
    [again] = rows(core, Youth)
    assert again.identity_key == kid.identity_key
    assert rows(core, Signal) == []
    assert [r.institution_id for r in rows(core, Registration)] == ["wij-groningen"]
    assert core.outbox("nieuwe-betrokkenheid") == []  # GGD is no longer involved


def test_a_purged_youths_row_number_is_never_given_to_another(core: CoreDriver) -> None:
    """Audit events name a youth by row number ("youth:7"); a new youth must not inherit the
    purged youth's logboek."""
    register(core, "ggd-groningen", birth=date(2016, 5, 1))
    [kid] = rows(core, Youth)
    with transaction(core.engine) as session:
        purge_youth(session, core.config, kid.id or 0, reason="overleden", now=MONDAY)
    register(core, "wij-groningen", bsn=BSN_B, birth=date(2016, 5, 1))
    [other] = rows(core, Youth)
    assert other.id != kid.id


# --- the sweep as a whole ---------------------------------------------------------------------


def _busy_index(core: CoreDriver) -> None:
    _family_with_an_almost_adult(core)
    place(core, GGD, bsn=BSN_C, ends_on=END)


@pytest.mark.parametrize(
    "day",
    [BIRTHDAY, END - timedelta(days=7), END + timedelta(days=1), date(2031, 4, 2)],
    ids=["birthday", "warning-day", "archive-day", "archive-purge-day"],
)
def test_sweep_twice_is_the_same_as_once(core: CoreDriver, day: date) -> None:
    _busy_index(core)
    if day == date(2031, 4, 2):
        run_sweep(core, END + timedelta(days=1))
    run_sweep(core, day)
    once = snapshot(core)
    second = run_sweep(core, day, hour=4)
    assert snapshot(core) == once
    assert all(count == 0 for count in second.values()), second


def test_a_year_of_daily_sweeps_keeps_everything_consistent(core: CoreDriver) -> None:
    _busy_index(core)
    day = MONDAY.date()
    warned: set[str] = set()
    for _ in range(400):
        run_sweep(core, day)
        warned |= {m.reference for m in core.outbox("signaal-verloopt")}
        day += timedelta(days=1)
    # By now the adult is purged, BSN_C's short signal has expired, the sibling's has expired.
    statuses = sorted(s.status for s in rows(core, Signal))
    assert statuses == ["archived", "archived"]
    assert len(warned) == 2  # each signal that ran out was warned of once
    assert len(core.outbox("signaal-verloopt")) == 2
    assert len(audit_events(core, "youth-purged")) == 1


def test_two_sweeps_at_once_do_the_work_once(core: CoreDriver) -> None:
    _busy_index(core)
    run_sweep(core, END - timedelta(days=30))
    moment = at(BIRTHDAY)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            sweep(core.engine, core.config, now=moment)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert len(audit_events(core, "youth-purged")) == 1
    single = snapshot(core)
    run_sweep(core, BIRTHDAY, hour=5)
    assert snapshot(core) == single


def test_a_failing_job_does_not_hold_back_the_others(
    core: CoreDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    place(core, GGD, ends_on=END)

    def broken(session: Session, config: Any, now: datetime) -> int:
        raise RuntimeError("job broke")

    monkeypatch.setattr(scheduler, "JOBS", [("broken", broken), *scheduler.JOBS])
    with pytest.raises(RuntimeError, match="job broke"):
        run_sweep(core, END + timedelta(days=1))
    # The jobs after the broken one still ran, each in its own transaction.
    [stored] = rows(core, Signal)
    assert stored.status == SignalStatus.ARCHIVED


def _inbound(core: CoreDriver, number: int, status: str, received_at: datetime) -> int:
    row = InboundMessage(
        dedupe_key=f"kept-{number}",
        message_id=f"<kept-{number}@ggd-groningen.example>",
        transport="smtp",
        mail_from="koppeling@ggd-groningen.example",
        rcpt_to="registratie@verwijsindex.localhost",
        mailbox="registratie",
        raw=b"sealed bytes",
        received_at=received_at,
        status=status,
    )
    return core.run(lambda session: (session.add(row), session.flush(), row.id)[2]) or 0


def test_kept_mail_is_erased_after_kept_mail_days_and_nothing_else(core: CoreDriver) -> None:
    days = core.config.covenant.region.kept_mail_days
    old = MONDAY - timedelta(days=days, minutes=1)
    young = MONDAY - timedelta(days=days - 1)
    failed_old = _inbound(core, 1, InboundStatus.FAILED, old)
    ignored_old = _inbound(core, 2, InboundStatus.IGNORED, old)
    failed_young = _inbound(core, 3, InboundStatus.FAILED, young)
    waiting_old = _inbound(core, 4, InboundStatus.RECEIVED, old)  # still to be processed

    first = sweep(core.engine, core.config, now=MONDAY)
    again = sweep(core.engine, core.config, now=MONDAY)

    assert first["erased_kept_mail"] == 2 and again["erased_kept_mail"] == 0
    with Session(core.engine) as session:
        raw = {row.id: row.raw for row in session.exec(select(InboundMessage)).all()}
        erased = session.exec(
            select(AuditEvent).where(AuditEvent.action == "kept-mail-erased")
        ).all()
    assert raw[failed_old] == b"" and raw[ignored_old] == b""
    assert raw[failed_young] == b"sealed bytes" and raw[waiting_old] == b"sealed bytes"
    assert len(erased) == 1
