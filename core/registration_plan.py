"""The one registration rule (ketenregistratie, DOMAIN step 1), as pure functions: no Session,
no I/O. :mod:`core.registration_apply` loads what they read and writes what they decide; a
single registration is a plan of one, a CSV batch a plan of thousands.

* :func:`check_request` refuses a request on its own fields (age, municipality, hulpverlener,
  kenmerk), with the Dutch reason a sender sees.
* :func:`plan_registrations` takes the checked requests, in order, and a :class:`Snapshot` of
  the youths they name as they are now, and returns a :class:`Plan`: the youths to create or
  change, the registrations to write, one logboek change per accepted request, the chain notices
  (nieuwe-betrokkenheid) to the institutions already involved, the refusals that need the state
  (afmelden without an active registration) and the youths whose matches and coordination must
  be derived again (those with an active signal; they are few).

Requests are taken one after the other against the state the earlier ones left, so a youth
named twice in one list (aanmelden, then afmelden) comes out as it would one by one, whatever
the size of the list.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Container, Iterable, Mapping, Set
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import TypeVar

from core.config import CoreConfig
from core.errors import DomainError, NotFound
from core.identity import check_youth_age, normalize_bsn, substitute_identity
from core.models import Institution, RegistrationStatus
from core.registration_requests import (
    DeregisterYouth,
    RegisterYouth,
    check_reference,
    not_a_professional_of,
)
from core.youths import Destination, lives_at, resolve_destination

REGISTER = "register"
DEREGISTER = "deregister"
ACTIVE = RegistrationStatus.ACTIVE.value
ENDED = RegistrationStatus.ENDED.value

T = TypeVar("T")
_NOBODY: Mapping[str, str] = MappingProxyType({})  # nobody else involved

# --- checking one request on its fields ------------------------------------------------------


@dataclass
class RegistrationContext:
    """What checking a request needs beyond the request itself, looked up once per import (or
    per command): the acting institution, the active municipalities and the e-mail addresses
    of the institution's active professionals that the requests may name."""

    config: CoreConfig
    institution: Institution
    municipalities: Container[str]
    professionals: Mapping[str, int]  # lower-case e-mail -> professional id
    _resolved: dict[str, Destination] = field(default_factory=dict, repr=False)

    def municipality(self, name: str) -> Destination:
        # Few distinct names in a file: resolve each once.
        known = self._resolved.get(name)
        if known is None:
            known = resolve_destination(self.config, name, active_names=self.municipalities)
            self._resolved[name] = known
        return known

    def professional(self, email: str | None) -> int | None:
        if not email:
            return None
        professional_id = self.professionals.get(email.strip().lower())
        if professional_id is None:
            raise not_a_professional_of(email, self.institution)
        return professional_id


@dataclass(slots=True)
class CheckedRequest:
    """A request whose fields passed, with the youth's identity key: what the planner reads."""

    line: int
    action: str  # REGISTER | DEREGISTER
    key: str  # identity key under the ring's current key
    # The digests under the ring's previous keys: a youth not yet rotated is found by them.
    older_keys: tuple[str, ...] = ()
    bsn: str | None = None
    name: str | None = None
    birth_date: date | None = None
    substitute: str | None = None
    municipality: str = ""
    reference: str = ""
    professional_id: int | None = None
    ends_on: date | None = None
    parent_bsns: tuple[str, ...] = ()
    # A municipality outside the covenant: a known youth moved there; a new one is refused.
    outside: DomainError | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    line: int
    error: DomainError

    @property
    def field(self) -> str:
        return self.error.field or ""

    @property
    def reason(self) -> str:
        return self.error.message


def check_request(
    line: int,
    request: RegisterYouth | DeregisterYouth,
    context: RegistrationContext,
    today: date,
) -> CheckedRequest:
    """The request as the planner reads it, or the :class:`DomainError` that refuses it."""
    identity = request.identity
    check_youth_age(identity.birth_date, today)
    key, *older = context.config.keys.identity_keys(identity)
    if isinstance(request, DeregisterYouth):
        return CheckedRequest(line, DEREGISTER, key, tuple(older))
    destination = context.municipality(request.municipality)
    professional_id = context.professional(request.professional_email)
    reference = check_reference(request.reference, request)
    parents = (normalize_bsn(bsn, field="BSN ouder") for bsn in request.parent_bsns)
    return CheckedRequest(
        line=line,
        action=REGISTER,
        key=key,
        older_keys=tuple(older),
        bsn=identity.bsn,
        name=identity.name or identity.surname,
        birth_date=identity.birth_date,
        substitute=substitute_identity(identity),
        municipality=destination.name,
        reference=reference,
        professional_id=professional_id,
        ends_on=request.ends_on,
        parent_bsns=tuple(dict.fromkeys(parents)),
        outside=None if destination.inside else destination.refusal,
    )


def check_requests(
    items: Iterable[tuple[int, T]],
    read: Callable[[T], RegisterYouth | DeregisterYouth],
    context: RegistrationContext,
    today: date,
) -> tuple[list[CheckedRequest], list[Refusal]]:
    """Each ``(line, item)`` read into a request by ``read`` (which may refuse it too) and
    checked; a refused one never stops the others."""
    checked: list[CheckedRequest] = []
    refused: list[Refusal] = []
    for line, item in items:
        try:
            checked.append(check_request(line, read(item), context, today))
        except DomainError as error:
            refused.append(Refusal(line, error))
    return checked, refused


# --- the state the planner reads ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KnownYouth:
    id: int
    municipality: str
    has_name: bool
    has_substitute: bool  # False only for a youth without BSN from before revision 0003
    moved_out_to: str | None = None  # moved outside the covenant (core.moves)


@dataclass(slots=True)
class RegistrationRow:
    """The acting institution's registration of a youth: as stored (in a snapshot, active or
    ended), or as a plan is to write it (new: ``id`` None). The planner changes copies."""

    key: str  # the youth's identity key
    id: int | None
    reference: str
    professional_id: int | None
    ends_on: date | None
    status: str
    registered_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True)
class Snapshot:
    """The youths the requests name, as they are before the plan, for one institution."""

    youths: Mapping[str, KnownYouth]  # identity key (current key) -> youth
    own: Mapping[int, RegistrationRow]  # youth id -> the institution's registration
    # youth id -> {other institution involved: its own reference, '' when it only signals}
    others: Mapping[int, Mapping[str, str]]
    signalled: Set[int]  # youths with an active signal
    signalled_by_us: Set[int]  # youths the institution has an active signal for


# --- the plan ----------------------------------------------------------------------------------


class ChangeKind(StrEnum):
    CREATED = "created"
    REACTIVATED = "reactivated"
    UPDATED = "updated"
    ENDED = "ended"


# The logboek's action per change: signing on again is a new registration there.
AUDIT_ACTIONS = {
    ChangeKind.CREATED: "registration-created",
    ChangeKind.REACTIVATED: "registration-created",
    ChangeKind.UPDATED: "registration-updated",
    ChangeKind.ENDED: "registration-ended",
}


@dataclass(slots=True)
class NewYouth:
    key: str
    bsn: str | None
    name: str | None
    birth_date: date
    substitute: str | None
    municipality: str


@dataclass(slots=True)
class YouthChange:
    """A known youth gets a name or substitute it lacked (a move is a :class:`PlannedMove`)."""

    key: str
    id: int
    name: str | None = None
    substitute: str | None = None


@dataclass(slots=True)
class PlannedMove:
    """A known youth that a request places elsewhere (core.moves applies it): its first
    request that did, and where the last one left it."""

    line: int
    key: str
    destination: Destination


@dataclass(frozen=True, slots=True)
class RegistrationChange:
    line: int
    key: str
    kind: ChangeKind

    @property
    def audit_action(self) -> str:
        return AUDIT_ACTIONS[self.kind]


@dataclass(frozen=True, slots=True)
class ChainNotice:
    """nieuwe-betrokkenheid: the registration at ``key`` is told to every institution already
    involved, each with its own reference (never the newcomer's, never the youth)."""

    line: int
    key: str
    involved: tuple[tuple[str, str], ...]  # (institution id, its own reference), by id

    @property
    def involved_count(self) -> int:
        return len(self.involved) + 1


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an accepted request came to: for an aanmelding, whether it is a new involvement and
    who else was involved before it."""

    line: int
    action: str
    key: str
    new_involvement: bool = False
    others_involved: tuple[str, ...] = ()  # institution ids


@dataclass
class Plan:
    new_youths: list[NewYouth] = field(default_factory=list)
    youth_changes: list[YouthChange] = field(default_factory=list)
    moves: list[PlannedMove] = field(default_factory=list)  # known youths only
    parents: list[tuple[str, str]] = field(default_factory=list)  # (youth key, parent BSN)
    registrations: list[RegistrationRow] = field(default_factory=list)
    changes: list[RegistrationChange] = field(default_factory=list)  # in request order
    notices: list[ChainNotice] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)  # per accepted request, in order
    refusals: list[Refusal] = field(default_factory=list)
    reconcile: list[int] = field(default_factory=list)  # youth ids, ascending

    @property
    def new_involvements(self) -> int:
        return sum(outcome.new_involvement for outcome in self.outcomes)


def plan_registrations(
    requests: Iterable[CheckedRequest], snapshot: Snapshot, now: datetime
) -> Plan:
    """The plan for ``requests`` (checked, in order) against ``snapshot``, at ``now``."""
    planner = _Planner(snapshot, now)
    for request in requests:
        if request.action == DEREGISTER:
            planner.deregister(request)
        else:
            planner.register(request)
    return planner.finish()


@dataclass(slots=True)
class _Youth:
    """A youth as the requests planned so far left it."""

    id: int | None  # None: created by this plan
    municipality: str
    has_name: bool
    has_substitute: bool
    moved_out_to: str | None = None
    new: NewYouth | None = None
    change: YouthChange | None = None
    move: PlannedMove | None = None


class _Planner:
    def __init__(self, snapshot: Snapshot, now: datetime):
        self.snapshot = snapshot
        self.now = now
        self.plan = Plan()
        self.youths: dict[str, _Youth] = {}
        self.registrations: dict[str, RegistrationRow] = {}
        self.written: set[str] = set()
        self.reconcile: set[int] = set()

    def register(self, request: CheckedRequest) -> None:
        key = request.key
        youth = self._youth(key)
        if youth is None and request.outside is not None:
            # Only a youth of the region enters the index; one already in it may move away.
            self.plan.refusals.append(Refusal(request.line, request.outside))
            return
        if youth is None:
            youth = self._new_youth(request)
        else:
            self._update_youth(key, youth, request)
        if request.parent_bsns:
            self.plan.parents += [(key, bsn) for bsn in request.parent_bsns]
        draft = self._registration(key, youth)
        # An institution that signals the youth is involved already, registered or not.
        active = draft is not None and draft.status == ACTIVE
        new_involvement = not active and youth.id not in self.snapshot.signalled_by_us
        if draft is None:
            kind = ChangeKind.CREATED
            draft = RegistrationRow(
                key, None, request.reference, None, None, ACTIVE, self.now, None
            )
            self.registrations[key] = draft
        elif not active:
            kind = ChangeKind.REACTIVATED
            draft.status, draft.registered_at, draft.ended_at = ACTIVE, self.now, None
        else:
            kind = ChangeKind.UPDATED
        draft.reference = request.reference
        draft.professional_id = request.professional_id
        draft.ends_on = request.ends_on
        self._changed(draft, RegistrationChange(request.line, key, kind))
        others = self._others(youth)
        if new_involvement and others:
            involved = tuple(sorted(others.items()))
            self.plan.notices.append(ChainNotice(request.line, key, involved))
        others_involved = tuple(sorted(others)) if others else ()
        self.plan.outcomes.append(
            Outcome(request.line, REGISTER, key, new_involvement, others_involved)
        )
        self._touched(youth)

    def deregister(self, request: CheckedRequest) -> None:
        key = request.key
        youth = self._youth(key)
        if youth is None:  # named as the refusal of a row: the field to look at
            self._refuse(request, "deze jongere staat niet in de verwijsindex", "BSN")
            return
        draft = self._registration(key, youth)
        if draft is None or draft.status != ACTIVE:
            self._refuse(
                request, "uw instelling heeft geen actieve registratie voor deze jongere", "Actie"
            )
            return
        draft.status, draft.ended_at = ENDED, self.now
        self._changed(draft, RegistrationChange(request.line, key, ChangeKind.ENDED))
        self.plan.outcomes.append(Outcome(request.line, DEREGISTER, key))
        self._touched(youth)

    def finish(self) -> Plan:
        self.plan.reconcile = sorted(self.reconcile)
        return self.plan

    def _youth(self, key: str) -> _Youth | None:
        youth = self.youths.get(key)
        if youth is None:
            known = self.snapshot.youths.get(key)
            if known is None:
                return None
            youth = _Youth(
                known.id,
                known.municipality,
                known.has_name,
                known.has_substitute,
                known.moved_out_to,
            )
            self.youths[key] = youth
        return youth

    def _new_youth(self, request: CheckedRequest) -> _Youth:
        assert request.birth_date is not None
        new = NewYouth(
            request.key,
            request.bsn,
            request.name,
            request.birth_date,
            request.substitute,
            request.municipality,
        )
        self.plan.new_youths.append(new)
        youth = _Youth(
            None, new.municipality, new.name is not None, new.substitute is not None, new=new
        )
        self.youths[request.key] = youth
        return youth

    def _update_youth(self, key: str, youth: _Youth, request: CheckedRequest) -> None:
        """The youth moved (coordination rules follow), or gets a name or substitute it lacked."""
        self._move(key, youth, request)
        named = not youth.has_name and request.name is not None
        substituted = not youth.has_substitute and request.substitute is not None
        if not (named or substituted):
            return
        target: NewYouth | YouthChange
        if youth.new is not None:
            target = youth.new
        else:
            if youth.change is None:
                assert youth.id is not None
                youth.change = YouthChange(key, youth.id)
                self.plan.youth_changes.append(youth.change)
            target = youth.change
        if named:
            youth.has_name, target.name = True, request.name
        if substituted:
            youth.has_substitute, target.substitute = True, request.substitute

    def _move(self, key: str, youth: _Youth, request: CheckedRequest) -> None:
        inside = request.outside is None
        if youth.new is not None:  # created by this plan: it simply lives there
            youth.municipality = youth.new.municipality = request.municipality
            return
        destination = Destination(request.municipality, inside, request.outside)
        if lives_at(youth.municipality, youth.moved_out_to, destination):
            return
        if inside:
            youth.municipality, youth.moved_out_to = request.municipality, None
        else:
            youth.moved_out_to = request.municipality
        if youth.move is None:
            youth.move = PlannedMove(request.line, key, destination)
            self.plan.moves.append(youth.move)
        else:
            youth.move.destination = destination

    def _registration(self, key: str, youth: _Youth) -> RegistrationRow | None:
        draft = self.registrations.get(key)
        if draft is None and youth.id is not None:
            known = self.snapshot.own.get(youth.id)
            if known is not None:
                draft = self.registrations[key] = dataclasses.replace(known)
        return draft

    def _changed(self, draft: RegistrationRow, change: RegistrationChange) -> None:
        if draft.key not in self.written:  # each registration is written once, as it ends up
            self.written.add(draft.key)
            self.plan.registrations.append(draft)
        self.plan.changes.append(change)

    def _others(self, youth: _Youth) -> Mapping[str, str]:
        return self.snapshot.others.get(youth.id, _NOBODY) if youth.id is not None else _NOBODY

    def _touched(self, youth: _Youth) -> None:
        # Matches and coordination follow registrations only where a signal is active.
        if youth.id is not None and youth.id in self.snapshot.signalled:
            self.reconcile.add(youth.id)

    def _refuse(self, request: CheckedRequest, reason: str, field_name: str) -> None:
        self.plan.refusals.append(Refusal(request.line, NotFound(reason, field=field_name)))
