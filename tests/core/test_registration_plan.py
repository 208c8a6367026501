"""The registration rule as a pure function (core.registration_plan): no database, only a
snapshot of the youths concerned and a list of requests. New, reactivated, updated and ended
registrations; refusals with their Dutch reasons; chain notices to those already involved; a
youth twice in one list planned as one by one, whatever the size of the list."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from itertools import count

import pytest

from core.config import CoreConfig
from core.errors import InvalidInput, NotFound
from core.models import Institution
from core.registration_plan import (
    ACTIVE,
    DEREGISTER,
    ENDED,
    REGISTER,
    ChainNotice,
    ChangeKind,
    CheckedRequest,
    KnownYouth,
    Plan,
    RegistrationContext,
    RegistrationRow,
    Snapshot,
    check_request,
    check_requests,
    plan_registrations,
)
from core.registration_requests import DeregisterYouth, RegisterYouth
from tests.core.conftest import BSN_A, BSN_B, BSN_C, BSN_PARENT, MONDAY, youth

LATER = MONDAY + timedelta(hours=1)
TODAY = MONDAY.date()
WIJ = Institution(
    id="wij-groningen",
    name="WIJ Groningen",
    kind="wijkteam",
    notification_email="verwijsindex@wij-groningen.example",
)
EMPTY = Snapshot(youths={}, own={}, others={}, signalled=set(), signalled_by_us=set())


@pytest.fixture
def context(config: CoreConfig) -> RegistrationContext:
    return RegistrationContext(
        config,
        WIJ,
        municipalities={"Groningen", "Westerkwartier"},
        professionals={"s.jansen@wij-groningen.example": 7},
    )


def _register(
    context: RegistrationContext, line: int, bsn: str = BSN_A, **fields: object
) -> CheckedRequest:
    values: dict[str, object] = {"municipality": "Groningen", "reference": f"W-{line}"}
    values.update(fields)
    request = RegisterYouth(youth(bsn), **values)  # type: ignore[arg-type]
    return check_request(line, request, context, TODAY)


def _deregister(context: RegistrationContext, line: int, bsn: str = BSN_A) -> CheckedRequest:
    return check_request(line, DeregisterYouth(youth(bsn)), context, TODAY)


def _key(context: RegistrationContext, bsn: str) -> str:
    return context.config.keys.identity_key(youth(bsn))


def _known(
    context: RegistrationContext,
    bsn: str,
    youth_id: int,
    *,
    own: RegistrationRow | None = None,
    others: dict[str, str] | None = None,
    signalled_by: set[str] = frozenset(),  # type: ignore[assignment]
) -> Snapshot:
    return Snapshot(
        youths={_key(context, bsn): KnownYouth(youth_id, "Groningen", True, True)},
        own={youth_id: dataclasses.replace(own, key=_key(context, bsn))} if own else {},
        others={youth_id: others} if others else {},
        signalled={youth_id} if signalled_by else set(),
        signalled_by_us={youth_id} if WIJ.id in signalled_by else set(),
    )


def _registration(status: str, key: str = "") -> RegistrationRow:
    """As stored; :func:`_known` gives it its youth's key."""
    ended = MONDAY - timedelta(days=3) if status == ENDED else None
    return RegistrationRow(key, 40, "W-0", None, None, status, MONDAY - timedelta(days=10), ended)


# --- checking a request's fields ---------------------------------------------------------------


def test_a_request_is_refused_on_its_fields_with_the_dutch_reason(
    context: RegistrationContext,
) -> None:
    requests = [
        (2, RegisterYouth(youth(), "Groningne", "W-2")),  # a typing error, not a move away
        (3, RegisterYouth(youth(), "Groningen", " ")),
        (4, RegisterYouth(youth(), "Groningen", "W-4", professional_email="x@wij.example")),
        (5, RegisterYouth(youth(birth=date(2003, 3, 2)), "Groningen", "W-5")),
        (6, RegisterYouth(youth(), "Groningen", f"dossier {BSN_A}")),
        (
            7,
            RegisterYouth(
                youth(), "groningen", "W-7", professional_email="S.Jansen@wij-groningen.example"
            ),
        ),
    ]
    checked, refused = check_requests(requests, lambda request: request, context, TODAY)
    assert [(r.line, r.field) for r in refused] == [
        (2, "Gemeente"),
        (3, "Kenmerk"),
        (4, "Hulpverlener"),
        (5, "Geboortedatum"),
        (6, "Kenmerk"),
    ]
    reasons = {r.line: r.reason for r in refused}
    assert "onbekende gemeente 'Groningne'; bedoelt u 'Groningen'?" in reasons[2]
    assert reasons[4] == (
        "x@wij.example is geen (actieve) hulpverlener van WIJ Groningen in het convenant"
    )
    assert "23 jaar" in reasons[5]
    assert all(isinstance(r.error, InvalidInput) for r in refused)
    [accepted] = checked
    assert (accepted.line, accepted.action, accepted.municipality) == (7, REGISTER, "Groningen")
    assert accepted.professional_id == 7


# --- the four changes ----------------------------------------------------------------------------


def test_an_unknown_youth_is_created_and_registered(context: RegistrationContext) -> None:
    plan = plan_registrations(
        [_register(context, 2, parent_bsns=(BSN_PARENT, BSN_PARENT))], EMPTY, MONDAY
    )
    key = _key(context, BSN_A)
    [new] = plan.new_youths
    assert (new.key, new.bsn, new.name, new.municipality) == (
        key,
        BSN_A,
        "Testkind Geheimnaam",
        "Groningen",
    )
    assert plan.parents == [(key, BSN_PARENT)]
    [draft] = plan.registrations
    assert (draft.id, draft.status, draft.reference, draft.registered_at) == (
        None,
        ACTIVE,
        "W-2",
        MONDAY,
    )
    assert [(c.line, c.kind, c.audit_action) for c in plan.changes] == [
        (2, ChangeKind.CREATED, "registration-created")
    ]
    [outcome] = plan.outcomes
    assert outcome.new_involvement and outcome.others_involved == ()
    assert plan.notices == [] and plan.refusals == [] and plan.reconcile == []


def test_an_ended_registration_is_reactivated_and_the_involved_are_told_again(
    context: RegistrationContext,
) -> None:
    snapshot = _known(context, BSN_A, 5, own=_registration(ENDED), others={"ggd-groningen": "G-1"})
    plan = plan_registrations([_register(context, 2)], snapshot, LATER)
    [draft] = plan.registrations
    assert (draft.id, draft.status, draft.registered_at, draft.ended_at) == (
        40,
        ACTIVE,
        LATER,
        None,
    )
    assert draft.reference == "W-2"
    assert [c.kind for c in plan.changes] == [ChangeKind.REACTIVATED]
    assert plan.changes[0].audit_action == "registration-created"
    assert plan.notices == [ChainNotice(2, _key(context, BSN_A), (("ggd-groningen", "G-1"),))]
    assert plan.new_youths == [] and plan.new_involvements == 1


def test_an_active_registration_is_updated_without_telling_anyone(
    context: RegistrationContext,
) -> None:
    snapshot = _known(context, BSN_A, 5, own=_registration(ACTIVE), others={"ggd-groningen": "G-1"})
    request = _register(
        context, 2, ends_on=date(2027, 1, 1), professional_email="s.jansen@wij-groningen.example"
    )
    plan = plan_registrations([request], snapshot, LATER)
    [draft] = plan.registrations
    assert (draft.status, draft.reference, draft.professional_id, draft.ends_on) == (
        ACTIVE,
        "W-2",
        7,
        date(2027, 1, 1),
    )
    assert draft.registered_at == MONDAY - timedelta(days=10)  # registered since then still
    assert [(c.kind, c.audit_action) for c in plan.changes] == [
        (ChangeKind.UPDATED, "registration-updated")
    ]
    [outcome] = plan.outcomes
    assert not outcome.new_involvement and outcome.others_involved == ("ggd-groningen",)
    assert plan.notices == []


def test_afmelden_ends_the_registration(context: RegistrationContext) -> None:
    snapshot = _known(context, BSN_A, 5, own=_registration(ACTIVE))
    plan = plan_registrations([_deregister(context, 3)], snapshot, LATER)
    [draft] = plan.registrations
    assert (draft.id, draft.status, draft.ended_at) == (40, ENDED, LATER)
    assert [(c.kind, c.audit_action) for c in plan.changes] == [
        (ChangeKind.ENDED, "registration-ended")
    ]
    assert [(o.line, o.action) for o in plan.outcomes] == [(3, DEREGISTER)]


def test_afmelden_is_refused_without_an_active_registration(
    context: RegistrationContext,
) -> None:
    snapshot = _known(context, BSN_B, 6, own=_registration(ENDED))
    requests = [_deregister(context, 2, BSN_A), _deregister(context, 3, BSN_B)]
    plan = plan_registrations(requests, snapshot, MONDAY)
    assert [(r.line, r.field, r.reason) for r in plan.refusals] == [
        (2, "BSN", "deze jongere staat niet in de verwijsindex"),
        (3, "Actie", "uw instelling heeft geen actieve registratie voor deze jongere"),
    ]
    assert all(isinstance(r.error, NotFound) for r in plan.refusals)
    assert plan.registrations == [] and plan.changes == [] and plan.outcomes == []


def test_a_known_youth_moves_and_gets_the_name_it_lacked(context: RegistrationContext) -> None:
    key = _key(context, BSN_A)
    snapshot = dataclasses.replace(
        EMPTY, youths={key: KnownYouth(5, "Groningen", has_name=False, has_substitute=True)}
    )
    plan = plan_registrations(
        [_register(context, 2, municipality="westerkwartier")], snapshot, MONDAY
    )
    [change] = plan.youth_changes
    assert (change.id, change.name, change.substitute) == (5, "Testkind Geheimnaam", None)
    [move] = plan.moves
    assert (move.line, move.key, move.destination.name, move.destination.inside) == (
        2,
        key,
        "Westerkwartier",
        True,
    )
    again = plan_registrations([_register(context, 2)], snapshot, MONDAY)
    [named_only] = again.youth_changes
    assert again.moves == [] and named_only.name == "Testkind Geheimnaam"


def test_only_a_known_youth_can_move_outside_the_covenant(context: RegistrationContext) -> None:
    """Jeugdwet 7.1.2.3 g: a youth in the index moves away; one new to it is not of the
    region, and is refused naming the field."""
    known = dataclasses.replace(
        EMPTY, youths={_key(context, BSN_A): KnownYouth(5, "Groningen", True, True)}
    )
    requests = [
        _register(context, 2, BSN_A, municipality="Amsterdam"),
        _register(context, 3, BSN_B, municipality="Amsterdam"),
    ]
    plan = plan_registrations(requests, known, MONDAY)
    [move] = plan.moves
    assert (move.line, move.destination.name, move.destination.inside) == (2, "Amsterdam", False)
    [refusal] = plan.refusals
    assert (refusal.line, refusal.field) == (3, "Gemeente")
    assert "moet in het convenant staan" in refusal.reason
    assert [outcome.line for outcome in plan.outcomes] == [2]
    away = dataclasses.replace(
        known,
        youths={_key(context, BSN_A): KnownYouth(5, "Groningen", True, True, "Amsterdam")},
    )
    still = plan_registrations(
        [_register(context, 4, BSN_A, municipality="amsterdam")], away, MONDAY
    )
    assert still.moves == [], "it lives there already"
    back = plan_registrations([_register(context, 5, BSN_A)], away, MONDAY)
    [home] = back.moves
    assert (home.destination.name, home.destination.inside) == ("Groningen", True)


# --- involvement and chain notices ---------------------------------------------------------------


def test_a_chain_notice_goes_to_every_institution_already_involved(
    context: RegistrationContext,
) -> None:
    # GGD registered the youth; Jeugdhulp only signals it (no reference of its own).
    snapshot = _known(
        context,
        BSN_A,
        5,
        others={"jeugdhulp-noord": "", "ggd-groningen": "GGD-EIGEN-77"},
        signalled_by={"jeugdhulp-noord"},
    )
    plan = plan_registrations([_register(context, 2)], snapshot, MONDAY)
    [notice] = plan.notices
    assert notice.involved == (("ggd-groningen", "GGD-EIGEN-77"), ("jeugdhulp-noord", ""))
    assert notice.involved_count == 3
    [outcome] = plan.outcomes
    assert outcome.new_involvement
    assert outcome.others_involved == ("ggd-groningen", "jeugdhulp-noord")
    # An active signal: the youth's matches and coordination are derived again.
    assert plan.reconcile == [5]


def test_registering_a_youth_the_institution_signals_is_no_new_involvement(
    context: RegistrationContext,
) -> None:
    snapshot = _known(context, BSN_A, 5, others={"ggd-groningen": "G-1"}, signalled_by={WIJ.id})
    plan = plan_registrations([_register(context, 2)], snapshot, MONDAY)
    assert [c.kind for c in plan.changes] == [ChangeKind.CREATED]  # still in the logboek
    assert plan.notices == [] and plan.new_involvements == 0
    assert plan.reconcile == [5]


def test_only_youths_with_an_active_signal_are_derived_again(
    context: RegistrationContext,
) -> None:
    snapshot = Snapshot(
        youths={
            _key(context, BSN_A): KnownYouth(5, "Groningen", True, True),
            _key(context, BSN_B): KnownYouth(3, "Groningen", True, True),
        },
        own={5: _registration(ACTIVE, _key(context, BSN_A))},
        others={},
        signalled={3, 5, 9},
        signalled_by_us=set(),
    )
    requests = [_deregister(context, 2, BSN_A), _register(context, 3, BSN_B)]
    requests.append(_register(context, 4, BSN_C))  # new: no signal yet
    plan = plan_registrations(requests, snapshot, MONDAY)
    assert plan.reconcile == [3, 5]


# --- one list, or one by one -------------------------------------------------------------------


def _applied(snapshot: Snapshot, plan: Plan, ids: count[int]) -> Snapshot:
    """The snapshot after ``plan`` was written (as core.registration_apply writes it)."""
    youths = dict(snapshot.youths)
    for new in plan.new_youths:
        youths[new.key] = KnownYouth(
            next(ids), new.municipality, new.name is not None, new.substitute is not None
        )
    for move in plan.moves:
        known = youths[move.key]
        where = move.destination
        youths[move.key] = dataclasses.replace(
            known,
            municipality=where.name if where.inside else known.municipality,
            moved_out_to=None if where.inside else where.name,
        )
    own = dict(snapshot.own)
    for draft in plan.registrations:
        youth_id = youths[draft.key].id
        reg_id = draft.id if draft.id is not None else next(ids)
        own[youth_id] = dataclasses.replace(draft, id=reg_id)
    return dataclasses.replace(snapshot, youths=youths, own=own)


def _state(snapshot: Snapshot) -> dict[str, tuple[object, ...]]:
    """Per youth key: where it lives and its registration, whatever ids were given out."""
    return {
        key: (youth.municipality, youth.has_name, dataclasses.replace(own, id=0) if own else None)
        for key, youth in snapshot.youths.items()
        for own in [snapshot.own.get(youth.id)]
    }


def _in_lists(
    requests: list[CheckedRequest], snapshot: Snapshot, size: int
) -> tuple[dict[str, tuple[object, ...]], list[tuple[int, str, bool, bool]], list[tuple[int, str]]]:
    """Plan ``requests`` in lists of ``size``, each on what the ones before wrote."""
    ids = count(100)
    steps: list[tuple[int, str, bool, bool]] = []
    refused: list[tuple[int, str]] = []
    for start in range(0, len(requests), size):
        plan = plan_registrations(requests[start : start + size], snapshot, MONDAY)
        snapshot = _applied(snapshot, plan, ids)
        notified = {notice.line for notice in plan.notices}
        steps += [
            (c.line, c.kind.value, o.new_involvement, o.line in notified)
            for c, o in zip(plan.changes, plan.outcomes, strict=True)
        ]
        refused += [(r.line, r.field) for r in plan.refusals]
    return _state(snapshot), steps, refused


def test_a_youth_twice_in_one_list_comes_out_as_one_by_one(
    context: RegistrationContext,
) -> None:
    before = _known(context, BSN_B, 5, others={"ggd-groningen": "G-B"})
    requests = [
        _register(context, 2, BSN_A),
        _deregister(context, 3, BSN_A),  # the youth registered just before
        _register(context, 4, BSN_A, reference="W-4b"),  # and back again
        _deregister(context, 5, BSN_C),  # not in the index
        _register(context, 6, BSN_B),
        _register(context, 7, BSN_B, municipality="Westerkwartier"),  # moved meanwhile
        _deregister(context, 8, BSN_B),
        _deregister(context, 9, BSN_B),  # no longer active
        _register(context, 10, BSN_C),
    ]
    one_by_one = _in_lists(requests, before, 1)
    for size in (2, 3, 4, len(requests)):
        assert _in_lists(requests, before, size) == one_by_one, size
    after, steps, refused = one_by_one
    assert steps == [
        (2, "created", True, False),
        (3, "ended", False, False),
        (4, "reactivated", True, False),
        (6, "created", True, True),
        (7, "updated", False, False),
        (8, "ended", False, False),
        (10, "created", True, False),
    ]
    assert refused == [(5, "BSN"), (9, "Actie")]
    municipality, _named, registration = after[_key(context, BSN_A)]
    assert isinstance(registration, RegistrationRow)
    assert (municipality, registration.status, registration.reference) == (
        "Groningen",
        ACTIVE,
        "W-4b",
    )
    municipality, _named, registration = after[_key(context, BSN_B)]
    assert isinstance(registration, RegistrationRow)
    assert (municipality, registration.status) == ("Westerkwartier", ENDED)


def test_in_one_list_a_registration_is_written_once_as_it_ends_up(
    context: RegistrationContext,
) -> None:
    requests = [_register(context, 2), _deregister(context, 3), _register(context, 4)]
    plan = plan_registrations(requests, EMPTY, MONDAY)
    assert len(plan.new_youths) == 1
    [draft] = plan.registrations
    assert (draft.id, draft.status, draft.reference, draft.ended_at) == (None, ACTIVE, "W-4", None)
    assert [c.kind for c in plan.changes] == [
        ChangeKind.CREATED,
        ChangeKind.ENDED,
        ChangeKind.REACTIVATED,
    ]
    assert plan.new_involvements == 2
