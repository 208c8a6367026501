"""An institution that leaves the covenant (issue 11.4): its signals end and are archived
(Jeugdwet 7.1.4.6), its registrations end, the open coordinations it held are reassigned by the
rules, and the others are told once, by references only. ``covenant check --against-db``'s plan
says all of that before the change takes effect; the sync applies the same plan."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlmodel import Session, col, select

from core.audit import verify_chain
from core.covenant import Covenant, bundled_covenant_path
from core.covenant.sync import sync_covenant
from core.covenant_plan import describe, load_state, plan_covenant_change
from core.institution_departure import KIND
from core.models import (
    AuditEvent,
    Coordination,
    CoordinationStatus,
    Institution,
    Professional,
    Registration,
    RegistrationStatus,
    Signal,
    SignalStatus,
)
from core.registration import RegisterYouth, register_youth
from core.signal_terms import INSTITUTION_LEFT
from core.signals import PlaceSignal, place_signal
from tests.core.conftest import BSN_A, MONDAY, CoreDriver, youth
from tests.core.test_cli import Cli, as_json, cli, ok, place, register  # noqa: F401  (cli: fixture)

SANNE = "s.jansen@wij-groningen.example"  # WIJ Groningen: leaves
EVA = "e.meijer@jeugdhulp-noord.example"
LEFT_AT = MONDAY + timedelta(days=2)


def _without_wij(covenant: Covenant) -> Covenant:
    """WIJ Groningen leaves; the city's new social team, WIJ Stad, joins in its place."""
    old = covenant.institution("wij-groningen")
    assert old is not None
    newcomer = old.model_copy(
        update={
            "id": "wij-stad",
            "name": "WIJ Stad",
            "notification_email": "verwijsindex@wij-stad.example",
            "allowed_senders": ("@wij-stad.example",),
        }
    )
    return covenant.model_copy(
        update={
            "institutions": tuple(newcomer if i.id == old.id else i for i in covenant.institutions),
            "professionals": tuple(
                p for p in covenant.professionals if p.institution != "wij-groningen"
            ),
        }
    )


def _scene(core: CoreDriver) -> tuple[str, str, str]:
    """A nine-year-old in Groningen: WIJ registers and signals, Jeugdhulp Noord signals (a
    match), the GGD registers. WIJ Groningen is asked to coordinate."""
    cfg = core.config

    def register(institution: str, reference: str) -> str:
        request = RegisterYouth(youth(BSN_A), "Groningen", reference)
        actor = core.institution(institution)
        return core.run(
            lambda s: register_youth(request, session=s, config=cfg, actor=actor, now=MONDAY)
        ).registration_number

    def signal(email: str, reference: str) -> str:
        request = PlaceSignal(youth(BSN_A), "Groningen", "laag", "ja", reference=reference)
        actor = core.professional(email)
        return core.run(
            lambda s: place_signal(request, session=s, config=cfg, actor=actor, now=MONDAY)
        ).number

    wij_registration = register("wij-groningen", "W-1")
    register("ggd-groningen", "G-1")
    wij_signal = signal(SANNE, "W-S")
    signal(EVA, "E-7")
    with Session(core.engine) as session:
        coordination = session.exec(select(Coordination)).one()
    assert coordination.institution_id == "wij-groningen"
    return wij_registration, wij_signal, coordination.number


def test_the_plan_says_what_the_change_would_do_before_it_takes_effect(
    core: CoreDriver,
) -> None:
    registration, signal, coordination = _scene(core)
    new = _without_wij(core.config.covenant)
    with Session(core.engine) as session:
        state = load_state(session, core.config, new, LEFT_AT, every_coordination=True)
    plan = plan_covenant_change(state, new)
    [departure] = plan.institutions
    assert departure.institution_id == "wij-groningen"
    assert [s.number for s in departure.signals] == [signal]
    assert [r.number for r in departure.registrations] == [registration]
    [move] = departure.coordinations
    assert (move.coordination, move.to_institution, move.rule_name) == (
        coordination,
        "wij-stad",
        "stad-groningen-wij",
    )
    assert plan.professionals == (), "WIJ's people leave with it: no transfer to ask"
    assert plan.rule_changes == ()
    lines = describe(plan, {"wij-stad": "WIJ Stad", "wij-groningen": "WIJ Groningen"})
    assert any("verlaat het convenant: 1 signalen eindigen" in line for line in lines)
    assert any(f"{coordination}: opnieuw toegewezen aan WIJ Stad" in line for line in lines)
    # Only a plan: nothing changed.
    with Session(core.engine) as session:
        assert session.get(Institution, "wij-groningen").active  # type: ignore[union-attr]
    assert plan_covenant_change(state, core.config.covenant).changes_nothing


def test_the_sync_ends_its_signals_and_registrations_and_reassigns_its_coordination(
    core: CoreDriver,
) -> None:
    _, signal, coordination = _scene(core)
    new = _without_wij(core.config.covenant)
    core.run(lambda s: sync_covenant(s, new, config=core.config, now=LEFT_AT))
    with Session(core.engine) as session:
        gone = session.get(Institution, "wij-groningen")
        assert gone is not None and gone.active is False, "kept, inactive: the logboek refers"
        archived = session.exec(
            select(Signal).where(Signal.institution_id == "wij-groningen")
        ).one()
        assert archived.number == signal
        assert (archived.status, archived.archive_reason) == (
            SignalStatus.ARCHIVED,
            INSTITUTION_LEFT,
        )
        ended = session.exec(
            select(Registration).where(Registration.institution_id == "wij-groningen")
        ).one()
        assert ended.status == RegistrationStatus.ENDED
        current = session.exec(select(Coordination)).one()
        assert current.number == coordination
        assert (current.institution_id, current.status) == ("wij-stad", CoordinationStatus.PENDING)
        left = session.exec(select(AuditEvent).where(AuditEvent.action == "institution-left")).one()
        assert left.details == {
            "signals_ended": 1,
            "registrations_ended": 1,
            "coordinations_reassigned": 1,
        }
        assert verify_chain(session)[1] is None
        assert (
            session.exec(
                select(Professional).where(Professional.email == SANNE, col(Professional.active))
            ).first()
            is None
        )
    [assigned] = core.outbox("coordinatie-toegewezen", recipient="verwijsindex@wij-stad.example")
    assert assigned.reference == coordination
    assert core.outbox("signaal-beeindigd") == [], "told once per party, not per signal"


def test_the_other_parties_are_told_once_with_their_own_references(core: CoreDriver) -> None:
    registration, signal, coordination = _scene(core)
    new = _without_wij(core.config.covenant)
    core.run(lambda s: sync_covenant(s, new, config=core.config, now=LEFT_AT))
    told = core.outbox(KIND, channel="email")
    by_recipient = {m.recipient: m for m in told}
    assert set(by_recipient) == {
        "verwijsindex@ggd-groningen.example",  # registered
        "verwijsindex@jeugdhulp-noord.example",  # signals
        EVA,  # the match partner of WIJ's signal
    }
    ggd = by_recipient["verwijsindex@ggd-groningen.example"].context
    assert ggd["departed"] == {"id": "wij-groningen", "name": "WIJ Groningen"}
    [case] = ggd["cases"]
    assert case["own_reference"] == "G-1"
    assert sorted(case["ended"]) == sorted([registration, signal])
    assert case["coordination"]["number"] == coordination
    assert case["coordination"]["institution"]["id"] == "wij-stad"
    [eva_case] = by_recipient[EVA].context["cases"]
    assert eva_case["own_reference"] == "E-7" and eva_case["ended"] == [signal]
    assert not [m for m in core.outbox(KIND) if "wij-groningen" in m.recipient]
    # Syncing the same covenant again changes nothing and tells nobody again.
    core.run(lambda s: sync_covenant(s, new, config=core.config, now=LEFT_AT + timedelta(hours=1)))
    assert len(core.outbox(KIND, channel="email")) == len(told)
    with Session(core.engine) as session:
        left = session.exec(select(AuditEvent).where(AuditEvent.action == "institution-left"))
        assert len(left.all()) == 1


def test_a_departed_professional_of_a_staying_institution_is_listed_for_transfer(
    core: CoreDriver,
) -> None:
    _, _, _ = _scene(core)
    covenant = core.config.covenant
    without_eva = covenant.model_copy(
        update={"professionals": tuple(p for p in covenant.professionals if p.email != EVA)}
    )
    with Session(core.engine) as session:
        plan = plan_covenant_change(
            load_state(session, core.config, without_eva, LEFT_AT, every_coordination=True),
            without_eva,
        )
    [person] = plan.professionals
    assert (person.email, person.institution_id, len(person.signals)) == (EVA, "jeugdhulp-noord", 1)
    assert plan.institutions == ()


def test_rules_that_now_pick_differently_are_listed_and_not_applied(core: CoreDriver) -> None:
    _, _, coordination = _scene(core)
    covenant = core.config.covenant
    # The region lets the GGD coordinate for every child in the city from now on.
    rules = covenant.coordination_rules
    ggd_everywhere = rules[0].model_copy(
        update={
            "name": "stad-ggd",
            "min_age": None,
            "max_age": None,
            "municipalities": ("Groningen",),
        }
    )
    changed = covenant.model_copy(update={"coordination_rules": (ggd_everywhere, *rules)})
    with Session(core.engine) as session:
        plan = plan_covenant_change(
            load_state(session, core.config, changed, LEFT_AT, every_coordination=True), changed
        )
    [change] = plan.rule_changes
    assert (change.coordination, change.current_institution, change.rules_pick) == (
        coordination,
        "wij-groningen",
        "ggd-groningen",
    )
    core.run(lambda s: sync_covenant(s, changed, config=core.config, now=LEFT_AT))
    with Session(core.engine) as session:
        assert session.exec(select(Coordination)).one().institution_id == "wij-groningen"


def test_covenant_check_against_the_database_lists_the_change_and_changes_nothing(
    cli: Cli,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> None:
    """CONTRACT §6: ``covenant check FILE --against-db`` before a covenant change."""
    register(cli, tmp_path, "wij-groningen", f"{BSN_A};Een;01-05-2016;Groningen;W-1")
    register(cli, tmp_path, "ggd-groningen", f"{BSN_A};Een;01-05-2016;Groningen;G-1")
    ok(place(cli, SANNE, "laag"))
    ok(place(cli, EVA, "laag"))
    # WIJ Groningen becomes WIJ Stad: the old institution (and its people) leave.
    text = bundled_covenant_path().read_text().replace("wij-groningen", "wij-stad")
    new = tmp_path / "convenant-nieuw.toml"
    new.write_text(text)
    human = ok(cli("covenant", "check", str(new), "--against-db"))
    assert "Tegen de database: wat deze wijziging zou doen" in human.stdout
    assert "Instelling WIJ Groningen (wij-groningen) verlaat het convenant" in human.stdout
    assert "C-1: opnieuw toegewezen aan WIJ Groningen (beslisregel stad-groningen-wij" in (
        human.stdout
    )
    report = as_json(cli("covenant", "check", str(new), "--against-db", "--json"))
    [departure] = report["against_db"]["institutions"]
    assert (departure["id"], departure["signals"], departure["registrations"]) == (
        "wij-groningen",
        ["S-1"],
        ["R-1"],
    )
    assert departure["coordinations"][0]["to"] == "wij-stad"
    # Nothing was changed: the same file lists the same change, the current one none.
    again = as_json(cli("covenant", "check", str(new), "--against-db", "--json"))
    assert again["against_db"] == report["against_db"]
    same = ok(cli("covenant", "check", str(bundled_covenant_path()), "--against-db"))
    assert "verandert niets aan lopende signalen" in same.stdout
