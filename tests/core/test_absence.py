"""Short absence (DOMAIN: Transfer on absence): a stand-in of the same institution receives the
absent professional's notifications and correspondents see the stand-in, until 'terug'."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, select

from core.absence import declare_absence, end_absence
from core.errors import InvalidInput, NotAllowed, NotFound
from core.models import Absence, AuditEvent, Professional
from core.notifications.recipients import contact_card, professional_recipients
from core.registration import RegisterYouth, register_youth
from core.signals import PlaceSignal, place_signal
from tests.core.conftest import MONDAY, CoreDriver, youth

ANNA = "a.devries@ggd-groningen.example"
PIETER = "p.bakker@ggd-groningen.example"
TODAY = date(2026, 3, 2)  # MONDAY, local


def _declare(
    core: CoreDriver,
    by: str,
    absent: str = ANNA,
    stand_in: str | None = PIETER,
    starts_on: date = TODAY,
    ends_on: date = TODAY + timedelta(days=7),
) -> Absence:
    actor = core.professional(by)
    return core.run(
        lambda s: declare_absence(
            absent,
            starts_on,
            ends_on,
            stand_in,
            session=s,
            config=core.config,
            actor=actor,
            now=MONDAY,
        )
    )


def _back(
    core: CoreDriver, by: str, absent: str = ANNA, now: datetime = MONDAY + timedelta(days=1)
) -> Absence:
    actor = core.professional(by)
    return core.run(
        lambda s: end_absence(absent, session=s, config=core.config, actor=actor, now=now)
    )


def _signal(core: CoreDriver, email: str, now: datetime = MONDAY) -> str:
    actor = core.professional(email)
    return core.run(
        lambda s: place_signal(
            PlaceSignal(youth(), "Groningen", "laag", "ja"),
            session=s,
            config=core.config,
            actor=actor,
            now=now,
        )
    ).number


def _professional(core: CoreDriver, email: str) -> Professional:
    with Session(core.engine) as session:
        return session.exec(select(Professional).where(Professional.email == email)).one()


def test_declaring_with_a_stand_in_notifies_both(core: CoreDriver) -> None:
    absence = _declare(core, ANNA)
    assert absence.stand_in_id == _professional(core, PIETER).id
    rows = core.outbox("afwezigheid")
    assert {(m.recipient, m.recipient_role) for m in rows} == {
        (ANNA, "professional"),
        (PIETER, "stand-in"),
    }
    stand_in = next(m for m in rows if m.recipient_role == "stand-in")
    assert stand_in.context["on_behalf_of"] == "Anna de Vries"
    assert stand_in.context["stand_in"]["email"] == PIETER
    assert stand_in.context["starts_on"] == "2026-03-02"
    assert stand_in.context["ends_on"] == "2026-03-09"
    assert {m.reference for m in rows} == {f"A-{absence.id}"}
    with Session(core.engine) as session:
        event = session.exec(
            select(AuditEvent).where(AuditEvent.action == "absence-declared")
        ).one()
        assert event.details["stand_in"] == PIETER


def test_stand_in_must_be_a_colleague_and_not_oneself(core: CoreDriver) -> None:
    with pytest.raises(InvalidInput) as caught:
        _declare(core, ANNA, stand_in="s.jansen@wij-groningen.example")
    assert caught.value.field == "vervanger"
    with pytest.raises(InvalidInput) as caught:
        _declare(core, ANNA, stand_in=ANNA)
    assert caught.value.field == "vervanger"
    with pytest.raises(NotFound):
        _declare(core, ANNA, stand_in="niemand@ggd-groningen.example")
    assert core.outbox("afwezigheid") == []


def test_end_before_start_is_refused(core: CoreDriver) -> None:
    with pytest.raises(InvalidInput) as caught:
        _declare(core, ANNA, starts_on=TODAY + timedelta(days=3), ends_on=TODAY + timedelta(days=1))
    assert caught.value.field == "tot"
    with pytest.raises(InvalidInput):
        _declare(core, ANNA, starts_on=TODAY - timedelta(days=9), ends_on=TODAY - timedelta(days=2))


def test_absence_without_stand_in_notifies_only_the_absent(core: CoreDriver) -> None:
    _declare(core, ANNA, stand_in=None)
    assert [(m.recipient, m.recipient_role) for m in core.outbox("afwezigheid")] == [
        (ANNA, "professional")
    ]


def _match_setup(core: CoreDriver) -> None:
    for institution, reference in (("ggd-groningen", "G-1"), ("wij-groningen", "W-1")):
        actor = core.institution(institution)
        request = RegisterYouth(youth(), "Groningen", reference)

        def register(
            session: Session, request: RegisterYouth = request, actor: Any = actor
        ) -> None:
            register_youth(request, session=session, config=core.config, actor=actor, now=MONDAY)

        core.run(register)
    _signal(core, ANNA)


def test_during_absence_notifications_also_go_to_the_stand_in_and_cards_show_it(
    core: CoreDriver,
) -> None:
    _match_setup(core)
    _declare(core, ANNA)
    _signal(core, "s.jansen@wij-groningen.example", now=MONDAY + timedelta(hours=1))
    matches = core.outbox("match")
    assert {(m.recipient, m.recipient_role, m.context["on_behalf_of"]) for m in matches} == {
        (ANNA, "professional", None),
        (PIETER, "stand-in", "Anna de Vries"),
        ("s.jansen@wij-groningen.example", "professional", None),
    }
    to_stand_in = next(m for m in matches if m.recipient == PIETER)
    assert to_stand_in.professional_id == _professional(core, PIETER).id
    assert to_stand_in.reply_token  # a personal token: the stand-in may answer
    # Sanne sees Anna's card with the stand-in.
    to_sanne = next(m for m in matches if m.recipient == "s.jansen@wij-groningen.example")
    [anna_card] = [p["professional"] for p in to_sanne.context["partners"]]
    assert anna_card["email"] == ANNA
    assert anna_card["stand_in"] == {
        "name": "Pieter Bakker",
        "email": PIETER,
        "phone": "050 123 4502",
        "until": "2026-03-09",
    }
    with Session(core.engine) as session:
        anna = session.exec(select(Professional).where(Professional.email == ANNA)).one()
        assert [r.role for r in professional_recipients(session, anna, TODAY)] == [
            "professional",
            "stand-in",
        ]
        assert contact_card(session, anna, TODAY)["stand_in"]["email"] == PIETER
        # Not before it starts, not after it ends.
        assert contact_card(session, anna, TODAY - timedelta(days=1))["stand_in"] is None
        assert contact_card(session, anna, TODAY + timedelta(days=8))["stand_in"] is None


def test_after_terug_the_stand_in_no_longer_receives(core: CoreDriver) -> None:
    _match_setup(core)
    _declare(core, ANNA)
    ended = _back(core, ANNA)
    assert ended.ended_at is not None
    _signal(core, "s.jansen@wij-groningen.example", now=MONDAY + timedelta(days=1, hours=1))
    assert PIETER not in {m.recipient for m in core.outbox("match")}
    to_sanne = next(
        m for m in core.outbox("match") if m.recipient == "s.jansen@wij-groningen.example"
    )
    assert to_sanne.context["partners"][0]["professional"]["stand_in"] is None
    with Session(core.engine) as session:
        assert session.exec(select(AuditEvent).where(AuditEvent.action == "absence-ended")).one()
    with pytest.raises(NotFound):
        _back(core, ANNA)  # nothing left to end


def test_someone_else_may_not_declare_my_absence(core: CoreDriver) -> None:
    for outsider in (
        PIETER,
        "m.smit@ggd-groningen.example",
        "i.mulder@ggd-groningen.example",
        "r.bos@jeugdhulp-noord.example",
    ):
        with pytest.raises(NotAllowed):
            _declare(core, outsider)
    assert core.outbox("afwezigheid") == []


def test_institution_admin_of_my_institution_or_admin_may_declare_and_end_it(
    core: CoreDriver,
) -> None:
    _declare(core, "h.visser@ggd-groningen.example")
    with pytest.raises(NotAllowed):
        _back(core, PIETER)
    _back(core, "f.dijkstra@ggd-groningen.example")
    # The region's admin may do it for another institution too.
    _declare(
        core,
        "f.dijkstra@ggd-groningen.example",
        absent="e.meijer@jeugdhulp-noord.example",
        stand_in="t.boer@jeugdhulp-noord.example",
    )
    _back(core, "r.bos@jeugdhulp-noord.example", absent="e.meijer@jeugdhulp-noord.example")
    with Session(core.engine) as session:
        actors = [
            e.actor
            for e in session.exec(select(AuditEvent).where(AuditEvent.action == "absence-declared"))
        ]
    assert actors == [
        "professional:h.visser@ggd-groningen.example",
        "professional:f.dijkstra@ggd-groningen.example",
    ]


def test_a_new_absence_replaces_only_an_overlapping_one(core: CoreDriver) -> None:
    later = _declare(
        core, ANNA, starts_on=TODAY + timedelta(days=20), ends_on=TODAY + timedelta(days=25)
    )
    first = _declare(core, ANNA, stand_in=None, starts_on=TODAY, ends_on=TODAY + timedelta(days=3))
    replacing = _declare(
        core, ANNA, starts_on=TODAY + timedelta(days=2), ends_on=TODAY + timedelta(days=5)
    )
    with Session(core.engine) as session:
        rows = {a.id: a for a in session.exec(select(Absence))}
    assert rows[later.id].ended_at is None  # planned later: untouched
    assert rows[first.id].ended_at is not None  # overlapped: replaced
    assert rows[replacing.id].ended_at is None
