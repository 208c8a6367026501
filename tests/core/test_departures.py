"""A professional who leaves (issue 11.3): the covenant no longer lists them while they hold
active signals. Their institution's admins are asked at once (the next sweep) to transfer the
signals, once; the departed person gets no more mail; ``transfer --from`` accepts them."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from core.audit import verify_chain
from core.covenant.sync import sync_covenant
from core.departures import KIND, ask_for_transfers
from core.models import Professional, Signal
from core.scheduler import sweep
from core.signals import PlaceSignal, place_signal
from core.transfer import transfer_signals
from tests.core.conftest import BSN_A, MONDAY, CoreDriver, youth

EVA = "e.meijer@jeugdhulp-noord.example"  # Jeugdhulp Noord, leaves
THIJS = "t.boer@jeugdhulp-noord.example"  # her colleague
KARIN = "k.deboer@jeugdhulp-noord.example"  # senior
RUUD = "r.bos@jeugdhulp-noord.example"  # institution-admin
ANNA = "a.devries@ggd-groningen.example"
LATER = MONDAY + timedelta(days=3)


def _signal(core: CoreDriver, email: str) -> str:
    actor = core.professional(email)
    request = PlaceSignal(youth(BSN_A), "Groningen", "laag", "ja")
    return core.run(
        lambda s: place_signal(request, session=s, config=core.config, actor=actor, now=MONDAY)
    ).number


def _leave(core: CoreDriver, email: str) -> None:
    """The region's administrator takes the person out of the covenant file; serve syncs it."""
    covenant = core.config.covenant
    without = covenant.model_copy(
        update={"professionals": tuple(p for p in covenant.professionals if p.email != email)}
    )
    core.run(lambda s: sync_covenant(s, without))


def test_the_institutions_admins_are_asked_once_to_transfer_a_leavers_signals(
    core: CoreDriver,
) -> None:
    number = _signal(core, EVA)
    _leave(core, EVA)
    sweep(core.engine, core.config, now=LATER)
    asked = core.outbox(KIND)
    assert {(m.recipient_role, m.recipient) for m in asked if m.channel == "email"} == {
        ("institution", "verwijsindex@jeugdhulp-noord.example"),
        ("professional", RUUD),
    }
    [mail] = [m for m in asked if m.recipient == RUUD]
    assert [s["number"] for s in mail.context["signals"]] == [number]
    assert mail.context["departed"]["email"] == EVA
    assert EVA not in {m.recipient for m in asked}, "the person who left is not asked"
    # Once: the next sweeps add nothing.
    sweep(core.engine, core.config, now=LATER + timedelta(minutes=1))
    assert len(core.outbox(KIND)) == len(asked)
    with Session(core.engine) as session:
        assert verify_chain(session)[1] is None


def test_the_departed_person_gets_no_more_mail_their_institution_does(core: CoreDriver) -> None:
    _signal(core, EVA)
    _leave(core, EVA)
    _signal(core, ANNA)  # a match with the departed professional's signal
    matches = core.outbox("match")
    assert EVA not in {m.recipient for m in matches}
    [for_eva] = [m for m in matches if m.channel == "email" and m.recipient_role == "institution"]
    assert for_eva.recipient == "verwijsindex@jeugdhulp-noord.example"
    assert "niet meer in het convenant" in (for_eva.context["on_behalf_of"] or "")


def test_a_departed_professionals_signals_are_transferred_from_the_console(
    core: CoreDriver,
) -> None:
    number = _signal(core, EVA)
    _leave(core, EVA)
    actor = core.professional(RUUD)
    core.run(
        lambda s: transfer_signals(
            EVA,
            THIJS,
            by_email=RUUD,
            instructed_by_email=KARIN,
            session=s,
            config=core.config,
            actor=actor,
            now=LATER,
        )
    )
    with Session(core.engine) as session:
        signal = session.exec(select(Signal)).one()
        thijs = session.exec(select(Professional).where(Professional.email == THIJS)).one()
        assert signal.number == number and signal.professional_id == thijs.id
    # Nothing left to ask for.
    assert core.run(lambda s: ask_for_transfers(s, core.config, LATER)) == 0
