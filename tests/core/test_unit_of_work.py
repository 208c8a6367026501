"""Domain events wait in the unit of work (core.unit_of_work) and reach their subscribers when it
commits: in publish order, with the events subscribers publish; a rollback — of the transaction or
of a savepoint — forgets what was published in it. The subscribers here are stand-ins that write
one outbox row per event, so what counts is what a commit leaves in the database."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from itertools import count

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core import audit, notifications, outbox
from core.config import CoreConfig
from core.db import transaction
from core.errors import SystemError_
from core.events import Event
from core.models import AuditEvent, OutboxMessage
from core.notifications import dispatch_pending, publish
from core.signals import PlaceSignal, place_signal
from core.unit_of_work import pending_events
from tests.core.conftest import BSN_A, BSN_B, MONDAY, CoreDriver, youth


@dataclass(frozen=True)
class Happened(Event):
    name: str
    then: str = ""  # the subscriber publishes Happened(then) in turn


@dataclass(frozen=True)
class Looped(Event):
    """Its subscriber publishes it again: a loop between subscribers."""


class Failed(Exception):
    pass


_ROW_NUMBERS = count()


def _write_row(session: Session, config: CoreConfig, event: Happened) -> None:
    outbox.enqueue(
        session,
        kind="test",
        channel="email",
        recipient="test@example.org",
        recipient_role="professional",
        reference=event.name,
        context={},
        idempotency_key=f"test:{event.name}:{next(_ROW_NUMBERS)}",  # a second dispatch shows
        now=event.at,
    )
    if event.then:
        publish(session, config, Happened(at=event.at, name=event.then))


def _loop(session: Session, config: CoreConfig, event: Looped) -> None:
    publish(session, config, event)


def _dispatched(session: Session) -> list[str]:
    query = select(OutboxMessage.reference).order_by(col(OutboxMessage.id))
    return list(session.exec(query).all())


@pytest.fixture
def stand_in_subscribers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notifications, "SUBSCRIBERS", [(Happened, _write_row), (Looped, _loop)])


def _publish(session: Session, config: CoreConfig, *names: str) -> None:
    for name in names:
        publish(session, config, Happened(at=MONDAY, name=name))


def _committed(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return _dispatched(session)


@pytest.mark.usefixtures("stand_in_subscribers")
def test_events_wait_for_the_commit_and_go_in_publish_order(
    engine: Engine, config: CoreConfig
) -> None:
    with transaction(engine) as session:
        _publish(session, config, "a", "b", "c")
        assert _dispatched(session) == []  # nothing ran in the middle of the command
        assert pending_events(session) == [Happened(at=MONDAY, name=n) for n in "abc"]
    assert _committed(engine) == ["a", "b", "c"]


@pytest.mark.usefixtures("stand_in_subscribers")
def test_a_plain_session_commit_dispatches_too(engine: Engine, config: CoreConfig) -> None:
    with Session(engine) as session:
        _publish(session, config, "a")
        session.commit()
        _publish(session, config, "b")  # the session's next transaction
        session.commit()
    assert _committed(engine) == ["a", "b"]


@pytest.mark.usefixtures("stand_in_subscribers")
def test_a_rolled_back_transaction_dispatches_nothing_and_forgets(
    engine: Engine, config: CoreConfig
) -> None:
    with pytest.raises(Failed), transaction(engine) as session:
        _publish(session, config, "lost")
        raise Failed
    with Session(engine) as session:
        _publish(session, config, "lost")
        session.rollback()
        _publish(session, config, "kept")
        session.commit()
    assert _committed(engine) == ["kept"]


@pytest.mark.usefixtures("stand_in_subscribers")
def test_a_session_closed_without_commit_forgets(engine: Engine, config: CoreConfig) -> None:
    session = Session(engine)
    _dispatched(session)  # begins the transaction
    _publish(session, config, "lost")
    session.close()
    _publish(session, config, "kept")
    session.commit()
    session.close()
    assert _committed(engine) == ["kept"]


@pytest.mark.usefixtures("stand_in_subscribers")
def test_a_rolled_back_savepoint_drops_only_its_own_events(
    engine: Engine, config: CoreConfig
) -> None:
    with transaction(engine) as session:
        _publish(session, config, "before")
        with pytest.raises(Failed), audit.savepoint(session):
            _publish(session, config, "in-failed-item")
            raise Failed
        with audit.savepoint(session):
            _publish(session, config, "in-good-item")
        with pytest.raises(Failed), audit.savepoint(session):
            with audit.savepoint(session):  # released, but inside one that is rolled back
                _publish(session, config, "in-inner-item")
            raise Failed
        _publish(session, config, "after")
    assert _committed(engine) == ["before", "in-good-item", "after"]


@pytest.mark.usefixtures("stand_in_subscribers")
def test_a_released_savepoint_is_a_command_boundary(engine: Engine, config: CoreConfig) -> None:
    """One command of a batch (a block of a mail) is dispatched when its savepoint is released,
    so its subscribers see the state that command left, not the next one's."""
    with transaction(engine) as session:
        with audit.savepoint(session):
            _publish(session, config, "first")
        assert _dispatched(session) == ["first"]
        assert pending_events(session) == []


@pytest.mark.usefixtures("stand_in_subscribers")
def test_events_published_by_subscribers_are_dispatched_after_the_waiting_ones(
    engine: Engine, config: CoreConfig
) -> None:
    with transaction(engine) as session:
        publish(session, config, Happened(at=MONDAY, name="a", then="a-cascade"))
        _publish(session, config, "b")
    assert _committed(engine) == ["a", "b", "a-cascade"]


@pytest.mark.usefixtures("stand_in_subscribers")
def test_an_endless_cascade_fails_the_commit(engine: Engine, config: CoreConfig) -> None:
    with (
        pytest.raises(SystemError_, match="blijven elkaar oproepen"),
        transaction(engine) as session,
    ):
        _publish(session, config, "a")
        publish(session, config, Looped(at=MONDAY))
    assert _committed(engine) == []


@pytest.mark.usefixtures("stand_in_subscribers")
def test_dispatch_pending_is_the_explicit_flush_point(engine: Engine, config: CoreConfig) -> None:
    with transaction(engine) as session:
        _publish(session, config, "a")
        assert dispatch_pending(session) == 1
        assert _dispatched(session) == ["a"]  # visible inside the command
        _publish(session, config, "b")
    assert _committed(engine) == ["a", "b"]  # a once


def test_a_subscribers_audit_event_is_written_in_the_same_commit(
    engine: Engine, config: CoreConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dispatch runs before the logboek's own before_commit listener, which must stay last."""

    def audited(session: Session, config: CoreConfig, event: Happened) -> None:
        audit.record(session, audit.SYSTEM, "test-subscriber", "test:1", at=event.at)

    monkeypatch.setattr(notifications, "SUBSCRIBERS", [(Happened, audited)])
    with transaction(engine) as session:
        _publish(session, config, "a")
    with Session(engine) as session:
        actions = session.exec(select(AuditEvent.action)).all()
        assert "test-subscriber" in actions


# --- the real subscribers --------------------------------------------------------------------

ANNA = "a.devries@ggd-groningen.example"  # GGD Groningen
SANNE = "s.jansen@wij-groningen.example"  # WIJ Groningen
EVA = "e.meijer@jeugdhulp-noord.example"  # Jeugdhulp Noord


def _place_three(core: CoreDriver, bsn: str, *, one_run: bool) -> list[tuple[str, str, str]]:
    """Three professionals signal one youth; returns the outbox rows this added."""
    actors = [core.professional(email) for email in (ANNA, SANNE, EVA)]
    request = PlaceSignal(youth(bsn), "Groningen", "laag", "ja")
    before = {m.id for m in core.outbox()}

    def place(session: Session, actor: audit.Actor) -> None:
        place_signal(request, session=session, config=core.config, actor=actor, now=MONDAY)

    if one_run:  # as the gateway takes a run of mails: one transaction, a savepoint each
        with transaction(core.engine) as session:
            for actor in actors:
                with audit.savepoint(session):
                    place(session, actor)
    else:
        for actor in actors:
            core.run(partial(place, actor=actor))
    return sorted(
        (m.kind, m.recipient, m.recipient_role) for m in core.outbox() if m.id not in before
    )


def test_a_run_of_commands_notifies_as_the_same_commands_one_by_one(core: CoreDriver) -> None:
    """Each command of a run is dispatched at its own savepoint, so its subscribers see the
    state it left: the third professional hears of the match once, when joining, not also on
    the occasion of the first two signals (which a dispatch at the run's commit would do)."""
    one_by_one = _place_three(core, BSN_A, one_run=False)
    assert [row[0] for row in one_by_one].count("match") == 2 + 3
    assert _place_three(core, BSN_B, one_run=True) == one_by_one
