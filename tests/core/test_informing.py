"""Informing the youth or parents (Jeugdwet 7.1.5, AVG art. 14; issue 11.6): ``nee`` needs a
reason like ``uitgesteld``; a signal not yet informed earns its reporter one reminder after the
configured working days, naming who is to be informed at the youth's age then; the reporter
records informing later (core, and the reply token of the reminder). Every test ends with an
intact logboek."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest
from sqlmodel import Session, select

from core.absence import declare_absence
from core.audit import verify_chain
from core.clock import as_utc
from core.config import CoreConfig
from core.errors import Conflict, InvalidInput, NotAllowed, NotFound
from core.fields import parse_signal
from core.identity import YouthIdentity
from core.informing import record_informed, remind_uninformed
from core.models import AuditEvent, ReplyPurpose, ReplyToken, Signal
from core.replies import ReplyAction, answer
from core.scheduler import JOBS, sweep
from core.settings import Settings
from core.signals import PlaceSignal, SignalOutcome, check_signal, place_signal, withdraw_signal
from tests.conftest import TEST_SECRET
from tests.core.conftest import BSN_B, MONDAY, CoreDriver, youth

ANNA = "a.devries@ggd-groningen.example"  # GGD
PIETER = "p.bakker@ggd-groningen.example"  # GGD colleague
GGD_INSTITUTION_ADMIN = "h.visser@ggd-groningen.example"
SANNE = "s.jansen@wij-groningen.example"  # WIJ
KIND = "informeren-herinnering"

# MONDAY is 2 March 2026: five working days later is Monday 9 March.
FRIDAY = MONDAY + timedelta(days=4)
DUE = MONDAY + timedelta(days=7)


@pytest.fixture(autouse=True)
def logboek_stays_intact(core: CoreDriver) -> Iterator[None]:
    yield
    with Session(core.engine) as session:
        checked, broken = verify_chain(session)
    assert broken is None, broken
    assert checked > 0


def place(
    core: CoreDriver,
    email: str = ANNA,
    informed: str = "nee",
    *,
    reason: str | None = "nog geen contact gehad",
    identity: YouthIdentity | None = None,
    now: datetime = MONDAY,
) -> SignalOutcome:
    actor = core.professional(email)
    request = PlaceSignal(
        identity or youth(), "Groningen", "laag", informed, postpone_reason=reason
    )
    return core.run(
        lambda s: place_signal(request, session=s, config=core.config, actor=actor, now=now)
    )


def stored(core: CoreDriver, number: str) -> Signal:
    with Session(core.engine) as session:
        signal = session.get(Signal, int(number[2:]))
        assert signal is not None
        return signal


def remind(core: CoreDriver, now: datetime, config: CoreConfig | None = None) -> int:
    return core.run(lambda s: remind_uninformed(s, config or core.config, now))


def informed(core: CoreDriver, number: str, email: str = ANNA, now: datetime = FRIDAY) -> bool:
    actor = core.professional(email)
    outcome = core.run(
        lambda s: record_informed(number, session=s, config=core.config, actor=actor, now=now)
    )
    return not outcome.already


# --- Geïnformeerd: nee needs a reason ----------------------------------------------------------


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_not_informed_without_a_reason_is_refused_naming_the_field(
    core: CoreDriver, reason: str | None
) -> None:
    with pytest.raises(InvalidInput) as caught:
        place(core, informed="nee", reason=reason)
    assert caught.value.field == "Reden uitstel"
    assert "bij Geïnformeerd 'nee'" in caught.value.message
    with Session(core.engine) as session:
        assert session.exec(select(Signal)).first() is None


def test_the_same_rule_refuses_a_mail_or_slack_form_before_anything_is_stored(
    core: CoreDriver,
) -> None:
    """The mail body and the Slack form both become a PlaceSignal (core.fields) and are
    checked by check_signal, before placing: the one rule, core.signals.check_informing."""
    fields = {
        "BSN": BSN_B,
        "Geboortedatum": "01-05-2016",
        "Gemeente": "Groningen",
        "Code": "laag",
        "Geïnformeerd": "Nee",
    }
    with pytest.raises(InvalidInput) as caught:
        check_signal(parse_signal(fields), config=core.config, today=MONDAY.date())
    assert caught.value.field == "Reden uitstel"
    with_reason = parse_signal({**fields, "Reden uitstel": "ouders onbereikbaar"})
    check_signal(with_reason, config=core.config, today=MONDAY.date())


def test_the_reason_not_informed_is_kept_and_informed_signals_record_when(
    core: CoreDriver,
) -> None:
    not_yet = place(core, informed="nee", reason=" ouders onbereikbaar ")
    signal = stored(core, not_yet.number)
    assert (signal.informed, signal.postpone_reason, signal.informed_at) == (
        "nee",
        "ouders onbereikbaar",
        None,
    )
    told = place(core, PIETER, "ja", reason="niet nodig", identity=youth(BSN_B))
    signal = stored(core, told.number)
    assert (signal.informed, signal.postpone_reason) == ("ja", None)
    assert signal.informed_at is not None and as_utc(signal.informed_at) == MONDAY


# --- the reminder ------------------------------------------------------------------------------


def test_a_signal_not_yet_informed_is_reminded_once_after_five_working_days(
    core: CoreDriver,
) -> None:
    outcome = place(core)
    place(core, PIETER, "ja", identity=youth(BSN_B))  # informed: never reminded
    assert remind(core, FRIDAY) == 0
    assert remind(core, DUE) == 1
    [row] = core.outbox(KIND)
    assert (row.recipient, row.reference) == (ANNA, outcome.number)
    assert row.context["informed_party"] == "ouders"  # nine years old
    assert row.context["informed"] == "nee"
    assert row.context["reminder_days"] == 5
    with Session(core.engine) as session:
        token = session.exec(select(ReplyToken).where(ReplyToken.token == row.reply_token)).one()
    assert (token.purpose, token.subject_id) == (
        ReplyPurpose.INFORMING.value,
        int(outcome.number[2:]),
    )
    assert stored(core, outcome.number).informing_reminded_at is not None
    assert remind(core, DUE + timedelta(days=1)) == 0
    assert len(core.outbox(KIND)) == 1


def test_the_guidance_follows_the_youths_age_on_the_day_of_the_reminder(
    core: CoreDriver,
) -> None:
    """Eleven when signalled (the parents are informed), twelve by the reminder: now the youth
    and the parents."""
    birthday = YouthIdentity(bsn=BSN_B, birth_date=date(2014, 3, 5), name="Testkind Jarig")
    outcome = place(core, identity=birthday)
    assert outcome.informed_party == "ouders"
    remind(core, DUE)
    [row] = core.outbox(KIND)
    assert row.context["informed_party"] == "jongere en ouders"


def test_postponed_informing_is_reminded_too_and_the_days_are_a_setting(
    core: CoreDriver,
) -> None:
    place(core, informed="uitgesteld", reason="veiligheid")
    two_days = replace(core.config, informing_reminder_days=2)
    assert remind(core, MONDAY + timedelta(days=1), two_days) == 0
    assert remind(core, MONDAY + timedelta(days=2), two_days) == 1
    [row] = core.outbox(KIND)
    assert (row.context["informed"], row.context["reminder_days"]) == ("uitgesteld", 2)
    settings = Settings(secret_key=TEST_SECRET, informing_reminder_days=3)
    assert settings.informing_reminder_days == 3
    assert Settings(secret_key=TEST_SECRET).informing_reminder_days == 5
    with pytest.raises(ValueError):
        Settings(secret_key=TEST_SECRET, informing_reminder_days=0)


def test_the_stand_in_is_reminded_with_the_absent_reporter(core: CoreDriver) -> None:
    place(core)
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
    remind(core, DUE)
    rows = core.outbox(KIND, channel="email")
    assert sorted((r.recipient, r.recipient_role) for r in rows) == [
        (ANNA, "professional"),
        (PIETER, "stand-in"),
    ]


def test_informed_archived_or_withdrawn_signals_get_no_reminder(core: CoreDriver) -> None:
    first = place(core)
    second = place(core, PIETER, identity=youth(BSN_B))
    informed(core, first.number)
    core.run(
        lambda s: withdraw_signal(
            second.number,
            "risico-weg",
            session=s,
            config=core.config,
            actor=core.professional(PIETER),
            now=FRIDAY,
        )
    )
    assert remind(core, DUE) == 0
    assert core.outbox(KIND) == []


def test_the_sweep_runs_the_reminder_job(core: CoreDriver) -> None:
    assert "informing_reminders" in [name for name, _ in JOBS]
    place(core)
    assert sweep(core.engine, core.config, now=DUE)["informing_reminders"] == 1
    assert sweep(core.engine, core.config, now=DUE)["informing_reminders"] == 0


# --- recording informing later ---------------------------------------------------------------


def test_the_reporter_records_informing_later_and_it_is_logged(core: CoreDriver) -> None:
    outcome = place(core)
    assert informed(core, outcome.number) is True
    signal = stored(core, outcome.number)
    assert signal.informed == "ja"
    assert signal.informed_at is not None and as_utc(signal.informed_at) == FRIDAY
    assert signal.postpone_reason == "nog geen contact gehad"  # why it waited stays on record
    with Session(core.engine) as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "signal-informed")).one()
    assert event.details == {"signal": outcome.number, "before": "nee", "party": "ouders"}
    assert event.actor == f"professional:{ANNA}"
    assert informed(core, outcome.number, now=DUE) is False  # twice: nothing changes
    assert as_utc(stored(core, outcome.number).informed_at or MONDAY) == FRIDAY


def test_only_the_reporter_their_stand_in_or_the_institutions_coordinator_may_record(
    core: CoreDriver,
) -> None:
    outcome = place(core)
    with pytest.raises(NotAllowed):
        informed(core, outcome.number, SANNE)
    with pytest.raises(NotAllowed):
        informed(core, outcome.number, PIETER)  # a colleague, but no stand-in
    assert stored(core, outcome.number).informed == "nee"
    assert informed(core, outcome.number, GGD_INSTITUTION_ADMIN) is True


def test_a_stand_in_records_for_the_absent_reporter(core: CoreDriver) -> None:
    outcome = place(core)
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
    assert informed(core, outcome.number, PIETER) is True


def test_unknown_and_archived_signals_are_refused(core: CoreDriver) -> None:
    with pytest.raises(NotFound):
        informed(core, "S-999")
    outcome = place(core)
    core.run(
        lambda s: withdraw_signal(
            outcome.number,
            "risico-weg",
            session=s,
            config=core.config,
            actor=core.professional(ANNA),
            now=MONDAY,
        )
    )
    with pytest.raises(Conflict):
        informed(core, outcome.number)


def test_geinformeerd_on_the_reminders_token_records_it_once(core: CoreDriver) -> None:
    outcome = place(core)
    remind(core, DUE)
    [row] = core.outbox(KIND)
    token = row.reply_token or ""

    def reply(action: ReplyAction, sender: str = ANNA) -> str:
        return core.run(
            lambda s: answer(
                token, action, sender=sender, channel="email", session=s, config=core.config,
                now=DUE,
            )
        )  # fmt: skip

    with pytest.raises(InvalidInput) as wrong:
        reply(ReplyAction("contacted"))
    assert "GEINFORMEERD" in wrong.value.message
    with pytest.raises(NotAllowed):
        reply(ReplyAction("informed"), sender=SANNE)
    assert "geïnformeerd" in reply(ReplyAction("informed"))
    assert stored(core, outcome.number).informed == "ja"
    with pytest.raises(Conflict):
        reply(ReplyAction("informed"))  # the token is used
