"""Correctie, verwijdering, verzet (AVG art. 16, 17, 21; Jeugdwet 7.1.4.6; issue 11.11): the
region's admin records a request with its 4-week deadline, is reminded before and after it, and
executing it corrects or removes the youth's records. A signal removed on a justified request is
deleted, not archived, and those it was disclosed to hear it ended — never why."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlmodel import Session, select

from core.audit import verify_chain
from core.errors import Conflict, InvalidInput, NotAllowed, NotFound
from core.models import (
    AuditEvent,
    Coordination,
    CoordinationStatus,
    Match,
    MatchStatus,
    Registration,
    RightsRequest,
    RightsRequestStatus,
    Signal,
    SignalStatus,
    Youth,
)
from core.registration import RegisterYouth, register_youth
from core.rendering import TemplateRenderer
from core.retention import purge_youth
from core.rights_requests import (
    KIND,
    Correction,
    execute_request,
    list_requests,
    record_request,
    reject_request,
)
from core.scheduler import sweep
from core.signals import PlaceSignal, place_signal, withdraw_signal
from tests.core.conftest import BSN_A, BSN_C, MONDAY, CoreDriver, youth

ADMIN = "f.dijkstra@ggd-groningen.example"  # the region's functional administrator
INSTITUTION_ADMIN = "h.visser@ggd-groningen.example"
GGD = "a.devries@ggd-groningen.example"
WIJ = "s.jansen@wij-groningen.example"
ADMIN_MAILBOX = "beheer@verwijsindex-groningen.example"  # covenant region.admin_email
TODAY = MONDAY.date()


@pytest.fixture(autouse=True)
def audit_chain_stays_intact(core: CoreDriver) -> Iterator[None]:
    yield
    with Session(core.engine) as session:
        _, broken = verify_chain(session)
    assert broken is None, broken


def _register(core: CoreDriver, institution: str, bsn: str = BSN_A) -> str:
    request = RegisterYouth(youth(bsn), "Groningen", f"{institution[:3].upper()}-{bsn[-3:]}")
    outcome = core.run(
        lambda s: register_youth(
            request, session=s, config=core.config, actor=core.institution(institution), now=MONDAY
        )
    )
    return outcome.registration_number


def _signal(core: CoreDriver, email: str, bsn: str = BSN_A, code: str = "laag") -> str:
    actor = core.professional(email)
    request = PlaceSignal(youth(bsn), "Groningen", code, "ja", reference="EIGEN-1")
    outcome = core.run(
        lambda s: place_signal(request, session=s, config=core.config, actor=actor, now=MONDAY)
    )
    return outcome.number


def _matched_youth(core: CoreDriver) -> dict[str, str]:
    """Two institutions registered, both signalled: a match and a coordination."""
    numbers = {"R-ggd": _register(core, "ggd-groningen"), "R-wij": _register(core, "wij-groningen")}
    numbers["S-ggd"] = _signal(core, GGD)
    numbers["S-wij"] = _signal(core, WIJ)
    return numbers


def _record(
    core: CoreDriver,
    kind: str = "verzet",
    *,
    by: str = ADMIN,
    requester: str = "ouder",
    received: date | None = TODAY,
    who: Any = None,
    now: Any = MONDAY,
) -> str:
    actor = core.professional(by)
    request = core.run(
        lambda s: record_request(
            who if who is not None else youth(),
            kind,
            requester,
            received,
            session=s,
            config=core.config,
            actor=actor,
            now=now,
        )
    )
    return request.number


def _execute(core: CoreDriver, number: str, **kwargs: Any) -> RightsRequest:
    actor = core.professional(kwargs.pop("by", ADMIN))
    return core.run(
        lambda s: execute_request(
            number, session=s, config=core.config, actor=actor, now=MONDAY, **kwargs
        )
    )


def _get(core: CoreDriver, model: Any, number: str) -> Any:
    with Session(core.engine) as session:
        return session.get(model, int(number.split("-")[1]))


def _audit(core: CoreDriver, action: str) -> list[AuditEvent]:
    with Session(core.engine) as session:
        return list(session.exec(select(AuditEvent).where(AuditEvent.action == action)).all())


# --- recording ---------------------------------------------------------------------------------


def test_a_request_is_recorded_with_its_4_week_deadline_and_logged(core: CoreDriver) -> None:
    _register(core, "ggd-groningen")
    number = _record(
        core, "correctie", requester="Wettelijk vertegenwoordiger", received=date(2026, 2, 23)
    )
    request = _get(core, RightsRequest, number)
    assert number.startswith("V-")
    assert (request.kind, request.requester_role) == ("correctie", "wettelijk-vertegenwoordiger")
    assert (request.received_on, request.deadline_on) == (date(2026, 2, 23), date(2026, 3, 23))
    assert request.status == RightsRequestStatus.OPEN
    [event] = _audit(core, "rights-request-recorded")
    assert event.actor == f"professional:{ADMIN}"
    assert event.details["request"] == number and event.details["deadline_on"] == "2026-03-23"
    assert BSN_A not in str(event.model_dump())


def test_bad_input_is_refused_naming_the_field(core: CoreDriver) -> None:
    _register(core, "ggd-groningen")
    for kwargs, field in (
        ({"kind": "inzage"}, "soort"),
        ({"requester": "Jan Jansen"}, "verzoeker"),
        ({"received": TODAY + timedelta(days=1)}, "ontvangen"),
    ):
        with pytest.raises(InvalidInput) as refused:
            _record(core, **kwargs)
        assert refused.value.field == field, kwargs
    with pytest.raises(NotFound):
        _record(core, who=youth(BSN_C))  # not in the index
    with pytest.raises(NotFound):
        _record(core, who="J-999")
    with Session(core.engine) as session:
        assert session.exec(select(RightsRequest)).all() == []


def test_only_the_regions_admin_handles_requests(core: CoreDriver) -> None:
    _register(core, "ggd-groningen")
    for email in (INSTITUTION_ADMIN, GGD):
        with pytest.raises(NotAllowed):
            _record(core, by=email)
    number = _record(core)
    with pytest.raises(NotAllowed):
        _execute(core, number, removals=["S-1"], by=INSTITUTION_ADMIN)
    with pytest.raises(NotAllowed):
        core.run(
            lambda s: list_requests(
                session=s, config=core.config, actor=core.professional(INSTITUTION_ADMIN)
            )
        )


def test_a_youth_is_named_by_its_reference_too(core: CoreDriver) -> None:
    _register(core, "ggd-groningen")
    with Session(core.engine) as session:
        [row] = session.exec(select(Youth)).all()
    number = _record(core, who=f"j-{row.id}")
    assert _get(core, RightsRequest, number).youth_id == row.id


# --- correction --------------------------------------------------------------------------------


def test_a_correction_changes_the_fields_with_the_checks_of_placing(core: CoreDriver) -> None:
    numbers = _matched_youth(core)
    number = _record(core, "correctie")
    signal_number = numbers["S-ggd"]
    request = _execute(
        core,
        number,
        corrections=[
            Correction(signal_number, "Code", "Urgent"),
            Correction(signal_number, "einddatum", "01-12-2026"),
            Correction(signal_number, "geinformeerd", "uitgesteld"),
            Correction(signal_number, "reden uitstel", "veiligheid"),
            Correction(signal_number, "folder", "ja"),
        ],
        note="code en einddatum waren verkeerd ingevoerd",
    )
    signal = _get(core, Signal, signal_number)
    assert (signal.code, signal.ends_on) == ("urgent", date(2026, 12, 1))
    assert (signal.informed, signal.postpone_reason, signal.leaflet_given) == (
        "uitgesteld",
        "veiligheid",
        True,
    )
    assert signal.status == SignalStatus.ACTIVE
    assert request.status == RightsRequestStatus.EXECUTED and request.decided_at is not None
    assert {(c["field"], c["from"], c["to"]) for c in request.changes} == {
        ("code", "laag", "urgent"),
        ("einddatum", "2027-03-02", "2026-12-01"),
        ("geïnformeerd", "ja", "uitgesteld"),
        ("folder", "nee", "ja"),
    }
    assert len(_audit(core, "signal-corrected")) == 4
    [executed] = _audit(core, "rights-request-executed")
    assert executed.details["request"] == number


@pytest.mark.parametrize(
    ("correction", "field"),
    [
        (Correction("S-1", "naam", "x"), "wijzigen"),
        (Correction("S-1", "code", "hoog"), "Code"),
        (Correction("S-1", "einddatum", "31-12-2029"), "Einddatum"),  # past 2 years
        (Correction("S-1", "einddatum", "01-01-2026"), "Einddatum"),  # in the past
        (Correction("S-1", "einddatum", "morgen"), "Einddatum"),
        (Correction("S-1", "geinformeerd", "uitgesteld"), "Reden uitstel"),
        (Correction("S-1", "folder", "misschien"), "Folder"),
        (Correction("R-1", "code", "urgent"), "wijzigen"),  # no code on a registration
        (Correction("R-1", "gemeente", "Amsterdam"), "Gemeente"),
        (Correction("M-1", "code", "urgent"), "wijzigen"),
    ],
)
def test_a_wrong_correction_is_refused_and_changes_nothing(
    core: CoreDriver, correction: Correction, field: str
) -> None:
    _matched_youth(core)
    number = _record(core, "correctie")
    before = _get(core, Signal, "S-1").model_dump()
    with pytest.raises(InvalidInput) as refused:
        _execute(core, number, corrections=[correction])
    assert refused.value.field == field
    assert _get(core, Signal, "S-1").model_dump() == before
    assert _get(core, RightsRequest, number).status == RightsRequestStatus.OPEN


def test_a_record_of_another_youth_is_refused(core: CoreDriver) -> None:
    _matched_youth(core)
    other = _register(core, "ggd-groningen", bsn=BSN_C)
    number = _record(core, "verwijdering")
    with pytest.raises(InvalidInput) as refused:
        _execute(core, number, removals=[other])
    assert "niet over de jongere van dit verzoek" in refused.value.message
    assert _get(core, Registration, other) is not None


def test_a_corrected_municipality_is_the_youths_and_coordination_follows(
    core: CoreDriver,
) -> None:
    numbers = _matched_youth(core)
    number = _record(core, "correctie")
    _execute(core, number, corrections=[Correction(numbers["R-ggd"], "Gemeente", "westerkwartier")])
    with Session(core.engine) as session:
        [row] = session.exec(select(Youth)).all()
        assert row.municipality == "Westerkwartier"
    [event] = _audit(core, "youth-municipality-corrected")
    assert (event.details["from"], event.details["to"]) == ("Groningen", "Westerkwartier")


# --- removal -----------------------------------------------------------------------------------


def test_an_upheld_objection_deletes_the_signal_instead_of_archiving_it(core: CoreDriver) -> None:
    numbers = _matched_youth(core)
    with Session(core.engine) as session:
        [match] = session.exec(select(Match)).all()
    number = _record(core, "verzet")
    assert core.outbox("signaal", reference=numbers["S-wij"]), "still to be delivered"
    request = _execute(core, number, removals=[numbers["S-wij"]], note="verzet gegrond")
    assert core.outbox("signaal", reference=numbers["S-wij"]) == [], "not sent after all"

    assert _get(core, Signal, numbers["S-wij"]) is None, "deleted, not archived (7.1.4.6)"
    assert _get(core, Match, match.number).status == MatchStatus.ENDED
    assert request.changes == [{"record": numbers["S-wij"], "action": "removed"}]
    [deleted] = _audit(core, "signal-deleted")
    assert deleted.details == {"signal": numbers["S-wij"], "reason": "removed"}
    # The others are told it ended — that it is gone, not why.
    notices = core.outbox("signaal-beeindigd", channel="email")
    assert {row.recipient for row in notices} >= {GGD, WIJ}  # partner and reporter
    renderer = TemplateRenderer()
    for row in notices:
        assert row.context["archived"] is False
        email = renderer.render_email(row.kind, dict(row.context))
        for part in (email.subject, email.text, email.html):
            assert numbers["S-wij"] in part or part is email.subject
            for word in ("verzet", "verzoek", "bezwaar", "correctie", "AVG"):
                assert word not in part, (row.recipient, word)
        assert "is verwijderd" in email.text


def test_a_normal_ended_signal_is_still_archived(core: CoreDriver) -> None:
    numbers = _matched_youth(core)
    actor = core.professional(WIJ)
    core.run(
        lambda s: withdraw_signal(
            numbers["S-wij"], "risico-weg", session=s, config=core.config, actor=actor, now=MONDAY
        )
    )
    signal = _get(core, Signal, numbers["S-wij"])
    assert signal is not None and signal.status == SignalStatus.ARCHIVED


def test_removing_an_archived_signal_and_a_registration(core: CoreDriver) -> None:
    numbers = _matched_youth(core)
    actor = core.professional(WIJ)
    core.run(
        lambda s: withdraw_signal(
            numbers["S-wij"], "risico-weg", session=s, config=core.config, actor=actor, now=MONDAY
        )
    )
    number = _record(core, "verwijdering")
    _execute(core, number, removals=[numbers["S-wij"], numbers["R-wij"]])
    assert _get(core, Signal, numbers["S-wij"]) is None
    assert _get(core, Registration, numbers["R-wij"]) is None
    # One institution is left: the coordination ends with the involvement it needed.
    with Session(core.engine) as session:
        statuses = {c.status for c in session.exec(select(Coordination)).all()}
    assert statuses == {CoordinationStatus.ENDED}
    assert len(_audit(core, "registration-deleted")) == 1


def test_removing_everything_purges_the_youth_and_keeps_the_request(core: CoreDriver) -> None:
    numbers = _matched_youth(core)
    number = _record(core, "verwijdering")
    _execute(core, number, removals=list(numbers.values()))
    with Session(core.engine) as session:
        assert session.exec(select(Youth)).all() == []
        request = session.get(RightsRequest, int(number[2:]))
        assert request is not None
        assert (request.status, request.youth_id) == (RightsRequestStatus.EXECUTED, None)
    [purged] = _audit(core, "youth-purged")
    assert purged.details["reason"] == "rights request"


def test_a_deletion_request_corrects_nothing_and_a_decision_is_final(core: CoreDriver) -> None:
    numbers = _matched_youth(core)
    number = _record(core, "verwijdering")
    with pytest.raises(InvalidInput) as refused:
        _execute(core, number, corrections=[Correction(numbers["S-ggd"], "code", "urgent")])
    assert refused.value.field == "wijzigen"
    with pytest.raises(InvalidInput) as refused:
        _execute(core, number)
    assert refused.value.field == "verwijderen"
    _execute(core, number, removals=[numbers["S-ggd"]])
    with pytest.raises(Conflict):
        _execute(core, number, removals=[numbers["S-wij"]])


def test_a_rejection_needs_the_reason_the_requester_is_given(core: CoreDriver) -> None:
    _matched_youth(core)
    number = _record(core, "verzet")
    actor = core.professional(ADMIN)

    def reject(reason: str) -> RightsRequest:
        return core.run(
            lambda s: reject_request(number, reason, session=s, actor=actor, now=MONDAY)
        )

    with pytest.raises(InvalidInput) as refused:
        reject("  ")
    assert refused.value.field == "reden"
    with pytest.raises(InvalidInput) as refused:
        reject(f"de jongere met BSN {BSN_A} blijft")
    assert "BSN" in refused.value.message and BSN_A not in refused.value.message
    request = reject("het signaal is nodig voor de veiligheid van de jongere")
    assert request.status == RightsRequestStatus.REJECTED
    assert request.outcome_note == "het signaal is nodig voor de veiligheid van de jongere"
    assert len(_audit(core, "rights-request-rejected")) == 1
    with pytest.raises(Conflict):
        reject("nogmaals")


def test_a_purge_lapses_an_open_request_and_keeps_it_without_the_youth(core: CoreDriver) -> None:
    _matched_youth(core)
    number = _record(core, "correctie")
    with Session(core.engine) as session:
        [row] = session.exec(select(Youth)).all()
    core.run(lambda s: purge_youth(s, core.config, row.id or 0, reason="23rd birthday", now=MONDAY))
    request = _get(core, RightsRequest, number)
    assert (request.status, request.youth_id) == (RightsRequestStatus.LAPSED, None)
    [item] = core.run(
        lambda s: list_requests(session=s, config=core.config, actor=core.professional(ADMIN))
    )
    assert (item["id"], item["youth"], item["status"]) == (number, None, "lapsed")


# --- the deadline ------------------------------------------------------------------------------


def _reminders(core: CoreDriver) -> list[Any]:
    return core.outbox(KIND)


def test_the_admins_are_reminded_a_week_before_the_deadline_and_after_it(
    core: CoreDriver,
) -> None:
    _register(core, "ggd-groningen")
    number = _record(core, "verwijdering", received=TODAY)  # deadline 30-03-2026
    sweep(core.engine, core.config, now=MONDAY + timedelta(days=20))  # 22-03: not yet
    assert _reminders(core) == []
    sweep(core.engine, core.config, now=MONDAY + timedelta(days=21))  # 23-03: a week before
    sweep(core.engine, core.config, now=MONDAY + timedelta(days=22))  # idempotent
    before = _reminders(core)
    assert {(r.recipient, r.recipient_role) for r in before} == {
        (ADMIN, "professional"),
        (ADMIN_MAILBOX, "administrator"),
    }
    assert {(r.reference, r.context["stage"], r.context["days"]) for r in before} == {
        (number, "bijna", 7)
    }
    sweep(core.engine, core.config, now=MONDAY + timedelta(days=28))  # the deadline day itself
    assert len(_reminders(core)) == 2
    sweep(core.engine, core.config, now=MONDAY + timedelta(days=29))  # passed
    sweep(core.engine, core.config, now=MONDAY + timedelta(days=35))
    after = [r for r in _reminders(core) if r.context["stage"] == "verlopen"]
    assert len(after) == 2 and {r.context["days"] for r in after} == {1}
    text = TemplateRenderer().render_email(KIND, dict(after[0].context)).text
    assert "is verstreken" in text and "30 maart 2026" in text and number in text


def test_a_decided_request_is_not_reminded_of(core: CoreDriver) -> None:
    numbers = _matched_youth(core)
    number = _record(core, "verzet", received=TODAY - timedelta(days=27))
    _execute(core, number, removals=[numbers["S-wij"]])
    sweep(core.engine, core.config, now=MONDAY + timedelta(days=3))
    assert _reminders(core) == []
