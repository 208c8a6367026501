"""Transfer of active signals on long absence or leaving (DOMAIN: Transfer on absence;
Jeugdwet 7.1.3.3): the secretariat requests on a senior's instruction, an institution-admin or
admin executes; same institution only; dates unchanged; new owner and match partners told."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, select

from core.audit import verify_chain
from core.errors import Conflict, InvalidInput, NotAllowed, NotFound
from core.models import AuditEvent, Professional, Signal, TransferRequest, TransferStatus
from core.registration import RegisterYouth, register_youth
from core.signals import PlaceSignal, place_signal
from core.transfer import execute_transfer, reject_transfer, request_transfer, transfer_signals
from tests.core.conftest import BSN_A, BSN_B, MONDAY, CoreDriver, youth

EVA = "e.meijer@jeugdhulp-noord.example"
THIJS = "t.boer@jeugdhulp-noord.example"
KARIN = "k.deboer@jeugdhulp-noord.example"  # senior
JOOST = "j.vandijk@jeugdhulp-noord.example"  # CAT: may not signal
WENDY = "w.postma@jeugdhulp-noord.example"  # secretariat
RUUD = "r.bos@jeugdhulp-noord.example"  # institution-admin
FEMKE = "f.dijkstra@ggd-groningen.example"  # region admin
ANNA = "a.devries@ggd-groningen.example"
LATER = MONDAY + timedelta(days=3)


def _request(
    core: CoreDriver, by: str = WENDY, source: str = EVA, target: str = THIJS, senior: str = KARIN
) -> TransferRequest:
    actor = core.professional(by)
    return core.run(
        lambda s: request_transfer(
            source, target, senior, session=s, config=core.config, actor=actor, now=MONDAY
        )
    )


def _execute(core: CoreDriver, number: str, by: str = RUUD) -> TransferRequest:
    actor = core.professional(by)
    return core.run(
        lambda s: execute_transfer(number, session=s, config=core.config, actor=actor, now=LATER)
    )


def _signal(core: CoreDriver, email: str, bsn: str = BSN_A, now: datetime = MONDAY) -> str:
    actor = core.professional(email)
    return core.run(
        lambda s: place_signal(
            PlaceSignal(youth(bsn), "Groningen", "laag", "ja", ends_on=date(2026, 9, 1)),
            session=s,
            config=core.config,
            actor=actor,
            now=now,
        )
    ).number


def _signals(core: CoreDriver) -> dict[str, tuple[str, Any, date]]:
    with Session(core.engine) as session:
        emails = dict(session.exec(select(Professional.id, Professional.email)).all())
        return {
            s.number: (emails[s.professional_id], s.placed_at.replace(tzinfo=None), s.ends_on)
            for s in session.exec(select(Signal)).all()
        }


@pytest.fixture
def signalled(core: CoreDriver) -> CoreDriver:
    """Youth A: Eva (Jeugdhulp) and Anna (GGD) signal, a match. Youth B: only Eva."""
    for institution in ("ggd-groningen", "jeugdhulp-noord"):
        actor = core.institution(institution)

        def register(session: Session, actor: Any = actor) -> None:
            register_youth(
                RegisterYouth(youth(), "Groningen", "K"),
                session=session,
                config=core.config,
                actor=actor,
                now=MONDAY,
            )

        core.run(register)
    _signal(core, EVA)
    _signal(core, ANNA, now=MONDAY + timedelta(minutes=5))
    _signal(core, EVA, BSN_B, now=MONDAY + timedelta(minutes=10))
    assert core.outbox("match")
    return core


def test_secretariat_requests_on_a_seniors_instruction_and_the_admin_is_told(
    signalled: CoreDriver,
) -> None:
    core = signalled
    transfer = _request(core)
    assert transfer.status == TransferStatus.REQUESTED
    [message] = core.outbox("overdracht")
    assert message.recipient == RUUD
    assert message.recipient_role == "institution-admin"
    assert message.reference == transfer.number
    assert message.context["stage"] == "requested"
    assert message.context["from_professional"]["email"] == EVA
    assert message.context["to_professional"]["email"] == THIJS
    assert message.context["instructed_by"]["email"] == KARIN
    assert message.context["requested_by"]["email"] == WENDY
    assert message.context["signal_count"] == 2
    # Requesting changes nothing yet.
    assert {s[0] for s in _signals(core).values()} == {EVA, ANNA}
    with Session(core.engine) as session:
        event = session.exec(
            select(AuditEvent).where(AuditEvent.action == "transfer-requested")
        ).one()
        assert event.details["senior"] == KARIN


def test_a_professional_without_the_secretariat_role_may_not_request(signalled: CoreDriver) -> None:
    for requester in (THIJS, KARIN, RUUD, EVA, "i.mulder@ggd-groningen.example"):
        with pytest.raises(NotAllowed):
            _request(signalled, by=requester)
    assert signalled.outbox("overdracht") == []


def test_the_named_senior_must_be_a_senior_of_the_institution(signalled: CoreDriver) -> None:
    for senior in (THIJS, "m.smit@ggd-groningen.example"):
        with pytest.raises(InvalidInput) as caught:
            _request(signalled, senior=senior)
        assert caught.value.field == "senior"


def test_only_to_a_colleague_of_the_same_institution_who_may_signal(
    signalled: CoreDriver,
) -> None:
    for target in (ANNA, JOOST, EVA):
        with pytest.raises(InvalidInput) as caught:
            _request(signalled, target=target)
        assert caught.value.field == "naar"
    with pytest.raises(NotFound):
        _request(signalled, target="niemand@jeugdhulp-noord.example")


def test_executing_moves_the_signals_keeping_dates_and_tells_owner_and_partners(
    signalled: CoreDriver,
) -> None:
    core = signalled
    before = _signals(core)
    transfer = _execute(core, _request(core).number)
    assert transfer.status == TransferStatus.EXECUTED
    assert transfer.signals_moved == 2
    after = _signals(core)
    for number, (owner, placed_at, ends_on) in before.items():
        assert after[number][1:] == (placed_at, ends_on)  # dates never change
        assert after[number][0] == (THIJS if owner == EVA else owner)
    executed = [m for m in core.outbox("overdracht") if m.context["stage"] == "executed"]
    assert {(m.recipient, m.recipient_role) for m in executed} == {
        (THIJS, "professional"),
        (EVA, "professional"),
    }
    assert {s["number"] for s in executed[0].context["signals"]} == {
        n for n, v in before.items() if v[0] == EVA
    }
    [changed] = core.outbox("contactpersoon-gewijzigd")
    assert changed.recipient == ANNA
    assert changed.context["old_contact"]["email"] == EVA
    assert changed.context["new_contact"]["email"] == THIJS
    assert changed.reference.startswith("M-")
    with Session(core.engine) as session:
        event = session.exec(
            select(AuditEvent).where(AuditEvent.action == "transfer-executed")
        ).one()
        assert event.actor == f"professional:{RUUD}"
        assert sorted(event.details["signals"]) == sorted(
            n for n, v in before.items() if v[0] == EVA
        )
        assert verify_chain(session)[1] is None


def test_the_region_admin_may_execute(signalled: CoreDriver) -> None:
    transfer = _execute(signalled, _request(signalled).number, by=FEMKE)
    assert transfer.status == TransferStatus.EXECUTED
    assert {v[0] for v in _signals(signalled).values()} == {THIJS, ANNA}


def test_executing_without_the_role_is_not_allowed(signalled: CoreDriver) -> None:
    number = _request(signalled).number
    for executor in (WENDY, KARIN, THIJS, "h.visser@ggd-groningen.example"):
        with pytest.raises(NotAllowed):
            _execute(signalled, number, by=executor)
    assert {v[0] for v in _signals(signalled).values()} == {EVA, ANNA}


def test_executing_twice_is_a_conflict(signalled: CoreDriver) -> None:
    number = _request(signalled).number
    _execute(signalled, number)
    with pytest.raises(Conflict):
        _execute(signalled, number, by=FEMKE)
    with pytest.raises(NotAllowed):  # the role is checked before the state
        _execute(signalled, number, by=WENDY)
    assert len([m for m in signalled.outbox("overdracht") if m.context["stage"] == "executed"]) == 2
    with pytest.raises(NotFound):
        _execute(signalled, "T-999")


def test_a_second_open_request_for_the_same_pair_is_a_conflict(signalled: CoreDriver) -> None:
    _request(signalled)
    with pytest.raises(Conflict):
        _request(signalled)


def test_rejected_request_cannot_be_executed(signalled: CoreDriver) -> None:
    number = _request(signalled).number
    actor = signalled.professional(RUUD)
    signalled.run(
        lambda s: reject_transfer(
            number, session=s, config=signalled.config, actor=actor, now=LATER
        )
    )
    with pytest.raises(Conflict):
        _execute(signalled, number)


def test_a_colleague_already_signalling_the_youth_keeps_both_signals(
    signalled: CoreDriver,
) -> None:
    _signal(signalled, THIJS, now=MONDAY + timedelta(minutes=20))  # youth A
    transfer = _execute(signalled, _request(signalled).number)
    assert transfer.signals_moved == 1  # only youth B's
    owners = sorted(v[0] for v in _signals(signalled).values())
    assert owners == sorted([EVA, ANNA, THIJS, THIJS])


def test_an_inactive_target_is_not_executed(signalled: CoreDriver) -> None:
    number = _request(signalled).number
    with Session(signalled.engine) as session:
        thijs = session.exec(select(Professional).where(Professional.email == THIJS)).one()
        thijs.active = False
        session.add(thijs)
        session.commit()
    with pytest.raises(Conflict):
        _execute(signalled, number)


# --- the CLI's one-step form -----------------------------------------------------------------


def _one_step(
    core: CoreDriver,
    by: str,
    senior: str | None = None,
    *,
    by_email: str | None = None,
    source: str = EVA,
    target: str = THIJS,
) -> TransferRequest:
    actor = core.professional(by)
    return core.run(
        lambda s: transfer_signals(
            source,
            target,
            by_email=by_email if by_email is not None else by,
            instructed_by_email=senior,
            session=s,
            config=core.config,
            actor=actor,
            now=LATER,
        )
    )


def test_one_step_by_the_institution_admin_requests_and_executes(signalled: CoreDriver) -> None:
    transfer = _one_step(signalled, RUUD)
    assert transfer.status == TransferStatus.EXECUTED
    assert transfer.requested_by_id == transfer.executed_by_id
    assert {v[0] for v in _signals(signalled).values()} == {THIJS, ANNA}
    with Session(signalled.engine) as session:
        actions = [e.action for e in session.exec(select(AuditEvent))]
    assert "transfer-requested" in actions and "transfer-executed" in actions


def test_one_step_by_the_secretariat_only_requests_then_the_admin_executes_it(
    signalled: CoreDriver,
) -> None:
    requested = _one_step(signalled, WENDY, KARIN)
    assert requested.status == TransferStatus.REQUESTED
    assert {v[0] for v in _signals(signalled).values()} == {EVA, ANNA}
    executed = _one_step(signalled, FEMKE)
    assert executed.id == requested.id  # the open request, not a new one
    assert executed.status == TransferStatus.EXECUTED
    with Session(signalled.engine) as session:
        assert len(session.exec(select(TransferRequest)).all()) == 1


def test_one_step_refusals(signalled: CoreDriver) -> None:
    with pytest.raises(InvalidInput) as caught:
        _one_step(signalled, WENDY)  # no senior named
    assert caught.value.field == "senior"
    with pytest.raises(NotAllowed):
        _one_step(signalled, THIJS, KARIN)  # no secretariat role
    with pytest.raises(NotAllowed):
        _one_step(signalled, RUUD, by_email=FEMKE)  # acting for someone else
    with pytest.raises(InvalidInput):
        _one_step(signalled, RUUD, target=ANNA)  # another institution
    with pytest.raises(NotAllowed):
        _one_step(signalled, "h.visser@ggd-groningen.example", KARIN)
