"""What a covenant change would do to the index, before it takes effect (issue 11.4).

:func:`plan_covenant_change` is pure: it reads a :class:`IndexState` (what the database holds
that a change can touch, loaded by :func:`load_state`) and the new covenant, and returns a
:class:`CovenantPlan`. ``verwijsindex covenant check --against-db`` prints it; the covenant
sync (core.covenant.sync) applies its institution departures (core.institution_departure) and
leaves the departed professionals to the transfer request of core.departures.

* An institution leaves when the covenant no longer lists it: its signals end (archived, Jeugdwet
  7.1.4.6), its registrations end, and the open coordinations it holds are reassigned by the
  rules (or end, when the family no longer needs one).
* A professional leaves when the covenant no longer lists them; the signals they hold wait for
  a transfer.
* The rules of the new covenant may pick another coordinator for an open coordination: listed
  only — the current coordinator keeps it.

The prediction ranks with :func:`core.coordination_rules.ruled_candidates`, the rule the
coordination commands use, over the new covenant's institutions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlmodel import Session, col, select

from core.clock import local_date
from core.config import CoreConfig
from core.coordination_family import member_youth_ids
from core.coordination_rules import Candidate, CoordinationFacts, ruled_candidates
from core.covenant import Covenant
from core.models import (
    OPEN_STATUSES,
    Coordination,
    CoordinationStatus,
    Institution,
    Professional,
    Registration,
    RegistrationStatus,
    Signal,
    SignalStatus,
    Youth,
)
from core.youths import age_of

# --- the state a change can touch ------------------------------------------------------------


@dataclass(frozen=True)
class HeldSignal:
    id: int
    number: str
    youth_id: int
    institution_id: str
    professional_email: str


@dataclass(frozen=True)
class HeldRegistration:
    id: int
    number: str
    youth_id: int
    institution_id: str


@dataclass(frozen=True)
class MemberFacts:
    """A youth a coordination covers, as the rules see it."""

    youth_id: int
    municipality: str
    age: int
    registered: frozenset[str]  # institutions with an active registration
    signalling: frozenset[str]  # institutions with an active signal


@dataclass(frozen=True)
class OpenCoordination:
    id: int
    number: str
    lead_youth_id: int
    institution_id: str | None
    status: str
    declined: frozenset[str]
    members: tuple[MemberFacts, ...]


@dataclass(frozen=True)
class IndexState:
    institutions: Mapping[str, tuple[str, bool]]  # id -> (name, active)
    professionals: Mapping[str, tuple[str, str, bool]]  # e-mail -> (name, institution, active)
    signals: tuple[HeldSignal, ...]  # active signals of the parties that may leave
    registrations: tuple[HeldRegistration, ...]  # active, of the institutions that may leave
    coordinations: tuple[OpenCoordination, ...]


# --- the plan --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reassignment:
    coordination_id: int
    coordination: str  # C-4
    from_institution: str | None
    to_institution: str | None  # None: nobody can take it (the municipality decides) or it ends
    rule_name: str
    reason: str
    ends: bool = False  # the family no longer needs coordination once the institution is gone


@dataclass(frozen=True)
class ProfessionalDeparture:
    email: str
    name: str
    institution_id: str
    signals: tuple[str, ...]  # to be transferred (core.departures asks the institution)


@dataclass(frozen=True)
class InstitutionDeparture:
    institution_id: str
    name: str
    signals: tuple[HeldSignal, ...]
    registrations: tuple[HeldRegistration, ...]
    coordinations: tuple[Reassignment, ...]

    @property
    def youth_ids(self) -> list[int]:
        return sorted({s.youth_id for s in self.signals} | {r.youth_id for r in self.registrations})


@dataclass(frozen=True)
class RuleChange:
    coordination: str
    status: str
    current_institution: str | None
    rules_pick: str
    rule_name: str
    reason: str


@dataclass(frozen=True)
class CovenantPlan:
    institutions: tuple[InstitutionDeparture, ...] = ()
    professionals: tuple[ProfessionalDeparture, ...] = ()
    rule_changes: tuple[RuleChange, ...] = field(default=())

    @property
    def changes_nothing(self) -> bool:
        return not (self.institutions or self.professionals or self.rule_changes)


def plan_covenant_change(state: IndexState, covenant: Covenant) -> CovenantPlan:
    """What taking ``covenant`` into use would do to the index in ``state``."""
    listed = {i.id for i in covenant.institutions}
    leaving = {
        institution_id
        for institution_id, (_name, active) in state.institutions.items()
        if institution_id not in listed and (active or _holds_anything(state, institution_id))
    }
    departures = tuple(
        _institution_departure(state, covenant, institution_id, leaving)
        for institution_id in sorted(leaving)
    )
    listed_people = {p.email for p in covenant.professionals}
    held: dict[str, list[str]] = {}
    for signal in state.signals:
        if signal.institution_id not in leaving and signal.professional_email not in listed_people:
            held.setdefault(signal.professional_email, []).append(signal.number)
    people = tuple(
        ProfessionalDeparture(
            email, state.professionals[email][0], state.professionals[email][1], tuple(numbers)
        )
        for email, numbers in sorted(held.items())
    )
    changes = tuple(
        change
        for coordination in state.coordinations
        if coordination.institution_id not in leaving
        and coordination.status != CoordinationStatus.MUNICIPALITY  # the municipality directs it
        and (change := _rule_change(coordination, covenant, leaving)) is not None
    )
    return CovenantPlan(departures, people, changes)


def _holds_anything(state: IndexState, institution_id: str) -> bool:
    return (
        any(s.institution_id == institution_id for s in state.signals)
        or any(r.institution_id == institution_id for r in state.registrations)
        or any(c.institution_id == institution_id for c in state.coordinations)
    )


def _institution_departure(
    state: IndexState, covenant: Covenant, institution_id: str, leaving: set[str]
) -> InstitutionDeparture:
    held = [c for c in state.coordinations if c.institution_id == institution_id]
    return InstitutionDeparture(
        institution_id=institution_id,
        name=state.institutions[institution_id][0],
        signals=tuple(s for s in state.signals if s.institution_id == institution_id),
        registrations=tuple(r for r in state.registrations if r.institution_id == institution_id),
        coordinations=tuple(_reassignment(c, covenant, leaving) for c in held),
    )


def _ranked(
    coordination: OpenCoordination, covenant: Covenant, leaving: set[str]
) -> tuple[list[Candidate], bool]:
    """The new covenant's candidates for the coordination once ``leaving`` is gone, and
    whether the family still needs coordination (two institutions involved, a signal active:
    core.coordination.reconcile_coordination)."""
    involved = sorted(
        {i for m in coordination.members for i in m.registered | m.signalling} - leaving
    )
    signalled = any(m.signalling - leaving for m in coordination.members)
    kinds = {i.id: i.kind for i in covenant.institutions}
    ranked: dict[str, Candidate] = {}
    lead_first = sorted(
        coordination.members, key=lambda m: m.youth_id != coordination.lead_youth_id
    )
    for member in lead_first:
        facts = CoordinationFacts(
            municipality=member.municipality,
            age=member.age,
            involved_kinds=frozenset(kinds[i] for i in involved if i in kinds),
        )
        for candidate in ruled_candidates(
            covenant.coordination_rules,
            facts,
            covenant.institutions,
            [i for i in involved if i in kinds],
        ):
            ranked.setdefault(candidate.institution_id, candidate)
    options = [c for c in ranked.values() if c.institution_id not in coordination.declined]
    return options, len(involved) >= 2 and signalled


def _reassignment(
    coordination: OpenCoordination, covenant: Covenant, leaving: set[str]
) -> Reassignment:
    options, needed = _ranked(coordination, covenant, leaving)
    if not needed:
        return Reassignment(
            coordination.id,
            coordination.number,
            coordination.institution_id,
            None,
            "",
            "eindigt: minder dan twee instellingen betrokken, of geen actief signaal meer",
            ends=True,
        )
    if not options:
        return Reassignment(
            coordination.id,
            coordination.number,
            coordination.institution_id,
            None,
            "geen-kandidaat",
            "geen instelling kan of wil de coördinatie op zich nemen: de gemeente beslist",
        )
    choice = options[0]
    return Reassignment(
        coordination.id,
        coordination.number,
        coordination.institution_id,
        choice.institution_id,
        choice.rule_name,
        choice.reason,
    )


def _rule_change(
    coordination: OpenCoordination, covenant: Covenant, leaving: set[str]
) -> RuleChange | None:
    options, needed = _ranked(coordination, covenant, leaving)
    if not needed or not options or options[0].institution_id == coordination.institution_id:
        return None
    choice = options[0]
    return RuleChange(
        coordination.number,
        coordination.status,
        coordination.institution_id,
        choice.institution_id,
        choice.rule_name,
        choice.reason,
    )


# --- loading the state -----------------------------------------------------------------------


def load_state(
    session: Session,
    config: CoreConfig,
    covenant: Covenant,
    now: datetime,
    *,
    every_coordination: bool,
) -> IndexState:
    """What :func:`plan_covenant_change` reads: the parties, the active signals and
    registrations of those ``covenant`` no longer lists, and the open coordinations they hold
    (``every_coordination``: all open coordinations, to see where the rules now pick
    differently)."""
    institutions = {i.id: (i.name, i.active) for i in session.exec(select(Institution)).all()}
    people = session.exec(select(Professional)).all()
    professionals = {p.email: (p.name, p.institution_id, p.active) for p in people}
    unlisted = sorted(set(institutions) - {i.id for i in covenant.institutions})
    gone = sorted({p.email for p in people} - {p.email for p in covenant.professionals})
    signals = _signals(session, unlisted, gone)
    registrations = (
        tuple(
            HeldRegistration(r.id or 0, r.number, r.youth_id, r.institution_id)
            for r in session.exec(
                select(Registration)
                .where(
                    col(Registration.institution_id).in_(unlisted),
                    Registration.status == RegistrationStatus.ACTIVE,
                )
                .order_by(col(Registration.id))
            ).all()
        )
        if unlisted
        else ()
    )
    query = select(Coordination).where(
        col(Coordination.status).in_([s.value for s in OPEN_STATUSES])
    )
    if not every_coordination:
        query = query.where(col(Coordination.institution_id).in_(unlisted))
    today = local_date(now, config.tz)
    coordinations = tuple(
        _open_coordination(session, config, c, today)
        for c in session.exec(query.order_by(col(Coordination.id))).all()
    )
    return IndexState(institutions, professionals, signals, registrations, coordinations)


def _signals(
    session: Session, institutions: Sequence[str], emails: Sequence[str]
) -> tuple[HeldSignal, ...]:
    if not institutions and not emails:
        return ()
    rows = session.exec(
        select(Signal, Professional.email)
        .join(Professional, col(Professional.id) == col(Signal.professional_id))
        .where(
            Signal.status == SignalStatus.ACTIVE,
            col(Signal.institution_id).in_(list(institutions))
            | col(Professional.email).in_(list(emails)),
        )
        .order_by(col(Signal.id))
    ).all()
    return tuple(
        HeldSignal(s.id or 0, s.number, s.youth_id, s.institution_id, email) for s, email in rows
    )


def _open_coordination(
    session: Session, config: CoreConfig, coordination: Coordination, today: date
) -> OpenCoordination:
    members = member_youth_ids(session, coordination) or [coordination.youth_id]
    return OpenCoordination(
        id=coordination.id or 0,
        number=coordination.number,
        lead_youth_id=coordination.youth_id,
        institution_id=coordination.institution_id,
        status=coordination.status,
        declined=frozenset(d["institution_id"] for d in coordination.declined),
        members=tuple(_member(session, config, youth_id, today) for youth_id in members),
    )


def _member(session: Session, config: CoreConfig, youth_id: int, today: date) -> MemberFacts:
    youth = session.get(Youth, youth_id)
    assert youth is not None
    registered = session.exec(
        select(Registration.institution_id).where(
            Registration.youth_id == youth_id, Registration.status == RegistrationStatus.ACTIVE
        )
    ).all()
    signalling = session.exec(
        select(Signal.institution_id).where(
            Signal.youth_id == youth_id, Signal.status == SignalStatus.ACTIVE
        )
    ).all()
    return MemberFacts(
        youth_id,
        youth.municipality,
        age_of(config, youth, today),
        frozenset(registered),
        frozenset(signalling),
    )


def describe(plan: CovenantPlan, names: Mapping[str, str]) -> list[str]:
    """The plan as Dutch lines for the console (``names``: institution id -> name)."""

    def name(institution_id: str | None) -> str:
        return names.get(institution_id, institution_id) if institution_id else "geen instelling"

    lines: list[str] = []
    for departure in plan.institutions:
        lines.append(
            f"Instelling {departure.name} ({departure.institution_id}) verlaat het convenant: "
            f"{len(departure.signals)} signalen eindigen (archief), "
            f"{len(departure.registrations)} registraties eindigen"
        )
        for r in departure.coordinations:
            if r.ends or r.to_institution is None:
                lines.append(f"  {r.coordination}: {r.reason}")
            else:
                lines.append(
                    f"  {r.coordination}: opnieuw toegewezen aan {name(r.to_institution)} "
                    f"(beslisregel {r.rule_name}: {r.reason})"
                )
    for person in plan.professionals:
        lines.append(
            f"Hulpverlener {person.name} <{person.email}> ({name(person.institution_id)}) "
            f"vertrekt met {len(person.signals)} actieve signalen ({', '.join(person.signals)}): "
            "de instelling wordt gevraagd ze over te dragen"
        )
    for change in plan.rule_changes:
        lines.append(
            f"{change.coordination}: de beslisregels kiezen nu {name(change.rules_pick)} in "
            f"plaats van {name(change.current_institution)} (beslisregel {change.rule_name}); "
            "de huidige coördinator houdt haar"
        )
    return lines


def as_json(plan: CovenantPlan) -> dict[str, object]:
    return {
        "institutions": [
            {
                "id": d.institution_id,
                "name": d.name,
                "signals": [s.number for s in d.signals],
                "registrations": [r.number for r in d.registrations],
                "coordinations": [
                    {
                        "coordination": r.coordination,
                        "from": r.from_institution,
                        "to": r.to_institution,
                        "rule": r.rule_name,
                        "reason": r.reason,
                        "ends": r.ends,
                    }
                    for r in d.coordinations
                ],
            }
            for d in plan.institutions
        ],
        "professionals": [
            {"email": p.email, "institution": p.institution_id, "signals": list(p.signals)}
            for p in plan.professionals
        ],
        "rule_changes": [
            {
                "coordination": c.coordination,
                "status": c.status,
                "current": c.current_institution,
                "rules_pick": c.rules_pick,
                "rule": c.rule_name,
                "reason": c.reason,
            }
            for c in plan.rule_changes
        ],
    }
