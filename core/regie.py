"""The municipality's regie after an escalation (Jeugdwet 7.1.3.2: the municipality sees to it
that coordination and follow-up happen). An escalated or unassigned coordination, and a stalled
match, reach the contact of the youth's municipality with three possible answers (CONTRACT §4,
Replies; Slack buttons alike):

* ``REGIE`` (:func:`take_up`): the municipality takes it up. A coordination still waiting for an
  institution (or for nobody) becomes the municipality's (status ``municipality``): nobody is
  waiting for an answer any more, so no reminder or escalation follows; the municipality later
  names a coordinator or closes it (its confirmation asks which). A stalled match was already
  escalated once and is not escalated again.
* ``AANWIJZEN <instelling>`` (:func:`assign`): name the coordinating institution; it must accept
  as usual (assignment mail with a deadline, AKKOORD / WEIGER / OVERDRAGEN). For a match, the
  coordination that covers its youth (or family) gets the institution.
* ``AFGEROND <toelichting>`` (:func:`close`): closed by the municipality, with a reason. A
  coordination ends (a later registration or signal starts one anew by the rules, as for any
  family); a match stays a match, its follow-up is closed.

Each action is one :class:`~core.models.MunicipalityAction` row (counted in the follow-up
figures) and a logboek entry; the parties are told (``gemeente-regie``). Only the contact of the
municipality the youth belongs to may act (:func:`municipality_actor`): the one rule for mail,
Slack and any other caller.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from core import audit
from core.clock import utcnow
from core.config import CoreConfig
from core.coordination import assign_institution, end_coordination, find_coordination
from core.errors import Conflict, InvalidInput, NotAllowed
from core.events import MunicipalityActedEvent
from core.free_text import check_free_text, quote
from core.models import (
    Coordination,
    CoordinationStatus,
    Institution,
    MatchStatus,
    Municipality,
    MunicipalityAction,
    MunicipalityActionKind,
)
from core.notifications import publish
from core.regie_subjects import (
    RegieSubject,
    assignable_institutions,
    coordination_for_match,
    find_subject,
    is_contact,
    responsible_municipality,
    subject_youth_id,
)
from core.youths import lock_youth

MAX_NOTE = 500
_ACTOR_KIND = "municipality"


def municipality_actor(session: Session, reference: str, sender: str, channel: str) -> audit.Actor:
    """The actor for an answer about ``reference`` (C-4, M-3) from ``sender``: only the contact
    of the youth's municipality; anyone else gets the refusal every answer gets."""
    subject = find_subject(session, reference)
    if not is_contact(responsible_municipality(session, subject), sender):
        raise NotAllowed(
            "dit antwoord moet komen van de contactpersoon van de gemeente aan wie het bericht "
            "is gestuurd"
        )
    return audit.Actor(kind=_ACTOR_KIND, identifier=sender.strip().lower(), channel=channel)


def take_up(
    reference: str,
    *,
    session: Session,
    config: CoreConfig,
    actor: audit.Actor,
    now: datetime | None = None,
) -> MunicipalityAction:
    """REGIE: the municipality takes the coordination or match up."""
    now = now or utcnow()
    subject = _locked(session, reference)
    municipality = _require_contact(session, subject, actor)
    details: dict[str, str] = {}
    if subject.coordination is not None:
        coordination = subject.coordination
        _require_undecided(session, coordination)
        if coordination.status == CoordinationStatus.MUNICIPALITY:
            raise Conflict(f"de gemeente voert al regie over {coordination.number}")
        if coordination.institution_id:
            details["waited_for"] = coordination.institution_id
        coordination.status = CoordinationStatus.MUNICIPALITY
        coordination.institution_id = None
        coordination.due_at = None
        coordination.remind_at = None
        session.add(coordination)
    else:
        _require_open_match(session, subject, already=True)
    return _record(
        session, config, subject, municipality, MunicipalityActionKind.REGIE, actor, now, details
    )


def assign(
    reference: str,
    institution_id: str,
    *,
    session: Session,
    config: CoreConfig,
    actor: audit.Actor,
    now: datetime | None = None,
) -> MunicipalityAction:
    """AANWIJZEN: name the coordinating institution, which must then accept as usual."""
    now = now or utcnow()
    subject = _locked(session, reference)
    municipality = _require_contact(session, subject, actor)
    coordination = subject.coordination
    if coordination is None:
        assert subject.match is not None
        _require_open_match(session, subject, already=False)
        coordination = coordination_for_match(session, subject.match)
        if coordination is None:
            raise Conflict(
                f"voor {subject.number} loopt geen procescoördinatie (daarvoor moeten twee "
                "instellingen betrokken zijn); antwoord met REGIE of AFGEROND <toelichting>"
            )
        coordination = find_coordination(session, coordination.id or 0)
    _require_undecided(session, coordination)
    target = _assignable(session, coordination, institution_id)
    action = _record(
        session,
        config,
        subject,
        municipality,
        MunicipalityActionKind.ASSIGNED,
        actor,
        now,
        {"coordination": coordination.number, "institution": target.id},
        institution_id=target.id,
    )
    assign_institution(
        session,
        config,
        coordination,
        target.id,
        rule_name="gemeente",
        reason=f"aangewezen door de gemeente {municipality.name}",
        now=now,
    )
    return action


def close(
    reference: str,
    note: str,
    *,
    session: Session,
    config: CoreConfig,
    actor: audit.Actor,
    now: datetime | None = None,
) -> MunicipalityAction:
    """AFGEROND: the municipality closes the coordination or the match's follow-up, with a
    reason (required: the figures and the parties must be able to tell why)."""
    now = now or utcnow()
    note = (note or "").strip()
    if not note:
        raise InvalidInput(
            "geef een toelichting bij het afronden, bijvoorbeeld 'AFGEROND hulp loopt via het "
            "wijkteam'",
            field="toelichting",
        )
    check_free_text(note, "toelichting", multiline=True)
    subject = _locked(session, reference)
    municipality = _require_contact(session, subject, actor)
    if subject.coordination is not None:
        _require_undecided(session, subject.coordination)
        end_coordination(session, subject.coordination, now)
    else:
        _require_open_match(session, subject, already=False)
    return _record(
        session,
        config,
        subject,
        municipality,
        MunicipalityActionKind.CLOSED,
        actor,
        now,
        {},
        note=note[:MAX_NOTE],
    )


def assign_options(session: Session, reference: str) -> list[Institution]:
    """The institutions AANWIJZEN may name for ``reference`` (none for a match without a
    coordination): the choices in the escalation mail and the Slack form."""
    subject = find_subject(session, reference)
    coordination = subject.coordination
    if coordination is None:
        assert subject.match is not None
        coordination = coordination_for_match(session, subject.match)
    if coordination is None:
        return []
    return assignable_institutions(session, coordination)


def actions_on(session: Session, subject: RegieSubject) -> list[MunicipalityAction]:
    """The municipality's actions on the coordination or match, oldest first."""
    if subject.coordination is not None:
        where = MunicipalityAction.coordination_id == subject.coordination.id
    else:
        assert subject.match is not None
        where = MunicipalityAction.match_id == subject.match.id
    return list(
        session.exec(
            select(MunicipalityAction).where(where).order_by(col(MunicipalityAction.id))
        ).all()
    )


# --- the checks ------------------------------------------------------------------------------


def _locked(session: Session, reference: str) -> RegieSubject:
    """The subject, its youth locked: two answers at once (a mail and a button) go one by one."""
    subject = find_subject(session, reference)
    if subject.coordination is not None:
        return RegieSubject(coordination=find_coordination(session, subject.coordination.id or 0))
    youth_id = subject_youth_id(session, subject)
    if youth_id is not None:
        lock_youth(session, youth_id)
    assert subject.match is not None
    session.refresh(subject.match)
    return subject


def _require_contact(session: Session, subject: RegieSubject, actor: audit.Actor) -> Municipality:
    municipality = responsible_municipality(session, subject)
    if municipality is None:
        raise Conflict(f"{subject.number} hoort niet (meer) bij een gemeente uit het convenant")
    if actor.kind != _ACTOR_KIND or not is_contact(municipality, actor.identifier):
        raise NotAllowed(
            f"alleen de contactpersoon van de gemeente {municipality.name} kan over "
            f"{subject.number} beslissen"
        )
    return municipality


def _require_undecided(session: Session, coordination: Coordination) -> None:
    """The municipality decides while no institution has taken the coordination on."""
    if coordination.status == CoordinationStatus.ACCEPTED:
        holder = session.get(Institution, coordination.institution_id or "")
        raise Conflict(
            f"{coordination.number} is inmiddels geaccepteerd door "
            f"{holder.name if holder else 'een instelling'}; er is niets meer te beslissen"
        )
    if coordination.status == CoordinationStatus.ENDED:
        raise Conflict(f"{coordination.number} is beëindigd")


def _require_open_match(session: Session, subject: RegieSubject, *, already: bool) -> None:
    """A match the municipality can still act on: active, not closed by it, and (for REGIE,
    ``already``) not taken up already."""
    assert subject.match is not None
    if subject.match.status != MatchStatus.ACTIVE:
        raise Conflict(f"{subject.number} is beëindigd")
    done = {a.action for a in actions_on(session, subject)}
    if MunicipalityActionKind.CLOSED in done:
        raise Conflict(f"de gemeente heeft {subject.number} al afgerond")
    if already and MunicipalityActionKind.REGIE in done:
        raise Conflict(f"de gemeente voert al regie over {subject.number}")


def _assignable(session: Session, coordination: Coordination, institution_id: str) -> Institution:
    wanted = (institution_id or "").strip().lower()
    if not wanted:
        raise InvalidInput(
            "geef de instelling-id op, bijvoorbeeld 'AANWIJZEN ggd-groningen'", field="instelling"
        )
    target = session.get(Institution, wanted)
    if target is None or not target.active:
        raise InvalidInput(f"onbekende instelling {quote(institution_id)}", field="instelling")
    if target in assignable_institutions(session, coordination):
        return target
    # The rule is the list; the refusal says which part of it the target misses.
    if not target.may_coordinate:
        reason = f"{target.name} mag volgens het convenant niet coördineren"
    else:
        reason = f"{target.name} is niet betrokken en werkt niet in de gemeente van de jongere"
    raise InvalidInput(reason, field="instelling")


def _record(
    session: Session,
    config: CoreConfig,
    subject: RegieSubject,
    municipality: Municipality,
    kind: MunicipalityActionKind,
    actor: audit.Actor,
    now: datetime,
    details: dict[str, str],
    *,
    institution_id: str | None = None,
    note: str | None = None,
) -> MunicipalityAction:
    action = MunicipalityAction(
        municipality=municipality.name,
        coordination_id=subject.coordination.id if subject.coordination else None,
        match_id=subject.match.id if subject.match else None,
        action=kind.value,
        institution_id=institution_id,
        note=note,
        at=now,
    )
    session.add(action)
    session.flush()
    youth_id = subject_youth_id(session, subject)
    audit.record(
        session,
        actor,
        f"municipality-{kind.value}",
        f"youth:{youth_id}" if youth_id else f"match:{subject.subject_id}",
        # The toelichting stays in its row: the logboek names the fact, not free text.
        details={"subject": subject.number, "municipality": municipality.name, **details},
        at=now,
    )
    publish(session, config, MunicipalityActedEvent(at=now, action_id=action.id or 0))
    return action
