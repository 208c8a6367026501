"""Who is told what, for every domain event (CONTRACT §4, "Kinds").

Contexts hold references (S-12, M-3, C-7, the recipient's own client reference), signal codes,
dates and professionals' contact details — never a youth's BSN, name, address or birth date.
Dates are ISO strings; templates format them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from core.clock import as_utc, local_date
from core.config import CoreConfig
from core.coordination_family import member_youth_ids
from core.events import (
    AbsenceDeclaredEvent,
    ArchivedSignalRecalledEvent,
    CoordinationAcceptedEvent,
    CoordinationAssignedEvent,
    CoordinationEscalatedEvent,
    CoordinationReminderDueEvent,
    Event,
    InformingReminderDueEvent,
    MatchConsentRecordedEvent,
    MatchEscalatedEvent,
    MatchFollowUpDueEvent,
    MatchMembersJoinedEvent,
    MunicipalityActedEvent,
    SignalEndedEvent,
    SignalExpiringEvent,
    SignalPlacedEvent,
    TransferExecutedEvent,
    TransferRequestedEvent,
)
from core.involvement import (
    active_signals_of,
    institution_reference,
    involved_in_any,
    takeover_candidates,
)
from core.match_members import match_members
from core.models import (
    Absence,
    Coordination,
    Institution,
    Match,
    MatchKind,
    MatchMember,
    MatchStatus,
    Municipality,
    Professional,
    ReplyPurpose,
    Role,
    Signal,
    TransferRequest,
    Youth,
)
from core.notifications.dispatch import ReplyRequest, notify
from core.notifications.recipients import (
    Recipient,
    contact_card,
    coordinator_recipients,
    institution_card,
    institution_recipient,
    municipality_recipients,
    professional_recipients,
)
from core.notifications.regie import assign_choices, escalation_reply, on_municipality_acted
from core.regie_subjects import RegieSubject, match_youth_id
from core.signal_terms import INSTITUTION_LEFT, REMOVED, archived_on_end, latest_end_date
from core.slack_threads import ANSWERS, on_answered

Subscriber = Callable[[Session, CoreConfig, Any], None]


# --- helpers ---------------------------------------------------------------------------------


def _institution(session: Session, institution_id: str) -> Institution:
    institution = session.get(Institution, institution_id)
    assert institution is not None, institution_id
    return institution


def _professional(session: Session, professional_id: int) -> Professional:
    professional = session.get(Professional, professional_id)
    assert professional is not None, professional_id
    return professional


def _today(config: CoreConfig, now: datetime) -> Any:
    return local_date(now, config.tz)


def _signal_card(
    session: Session, config: CoreConfig, signal: Signal, now: datetime
) -> dict[str, Any]:
    return {
        "number": signal.number,
        "code": signal.code,
        "code_label": config.code_label(signal.code),
        "placed_on": local_date(signal.placed_at, config.tz).isoformat(),
        "ends_on": signal.ends_on.isoformat(),
        "own_reference": signal.reference or "",
        "professional": contact_card(
            session, _professional(session, signal.professional_id), _today(config, now)
        ),
    }


def _municipality_of(session: Session, youth_id: int) -> Municipality | None:
    youth = session.get(Youth, youth_id)
    return session.get(Municipality, youth.municipality) if youth else None


def _involved_cards(session: Session, youth_ids: list[int]) -> list[dict[str, Any]]:
    cards = []
    for institution_id in involved_in_any(session, youth_ids):
        card = institution_card(_institution(session, institution_id))
        card["own_reference"] = ""  # an institution's reference is its own business
        cards.append(card)
    return cards


def _most_urgent_label(config: CoreConfig, signals: list[Signal]) -> str:
    if not signals:
        return ""
    urgent = min(signals, key=lambda s: config.response_working_days(s.code))
    return config.code_label(urgent.code)


def _moment(at: datetime | None) -> str:
    return as_utc(at).isoformat() if at is not None else ""


# --- signals ---------------------------------------------------------------------------------


def on_signal_placed(session: Session, config: CoreConfig, event: SignalPlacedEvent) -> None:
    signal = session.get(Signal, event.signal_id)
    assert signal is not None
    card = _signal_card(session, config, signal, event.at)
    for institution_id in event.involved:
        notify(
            session,
            config,
            kind="signaal",
            recipients=[institution_recipient(_institution(session, institution_id))],
            reference=signal.number,
            context={
                "signal": card,
                "own_reference": institution_reference(session, signal.youth_id, institution_id)
                or "",
            },
            key=signal.number,
            now=event.at,
        )


def on_archived_signal_recalled(
    session: Session, config: CoreConfig, event: ArchivedSignalRecalledEvent
) -> None:
    """One-time notice: the new signaller and the earlier (archived) signallers learn of each
    other, though archived signals never make a match."""
    signal = session.get(Signal, event.signal_id)
    assert signal is not None
    today = _today(config, event.at)
    archived = [s for s in (session.get(Signal, i) for i in event.archived_signal_ids) if s]
    archived_cards = [
        {
            **_signal_card(session, config, old, event.at),
            "archived_on": local_date(old.archived_at or event.at, config.tz).isoformat(),
        }
        for old in archived
    ]
    notify(
        session,
        config,
        kind="archief-match",
        recipients=professional_recipients(
            session, _professional(session, signal.professional_id), today
        ),
        reference=signal.number,
        context={
            "signal": _signal_card(session, config, signal, event.at),
            "archived": archived_cards,
        },
        key=signal.number,
        now=event.at,
    )
    new_card = _signal_card(session, config, signal, event.at)
    for old, old_card in zip(archived, archived_cards, strict=True):
        notify(
            session,
            config,
            kind="archief-match",
            recipients=professional_recipients(
                session, _professional(session, old.professional_id), today
            ),
            reference=old.number,
            context={"signal": old_card, "archived": [], "new_signal": new_card},
            key=f"{old.number}:{signal.number}",
            now=event.at,
        )


_END_REASONS = {
    "expired": "de einddatum is bereikt",
    "risk-gone": "de melder heeft aangegeven dat het risico weg is",
    "unjustified": "de melder heeft het signaal als onterecht ingetrokken",
    # AVG art. 19: those it was disclosed to learn it is gone, never why (core.rights_requests).
    REMOVED: "het signaal is uit de verwijsindex verwijderd",
}


def on_signal_ended(session: Session, config: CoreConfig, event: SignalEndedEvent) -> None:
    if event.reason == INSTITUTION_LEFT:
        return  # told once per party, not per signal (core.institution_departure)
    today = _today(config, event.at)
    context = {
        "signal_number": event.signal_number,
        "reason": event.reason,
        "reason_text": _END_REASONS.get(event.reason, event.reason),
        "archived": archived_on_end(event.reason),
    }
    recipients: list[Recipient] = []
    for institution_id in event.notify_institutions:
        recipients.append(institution_recipient(_institution(session, institution_id)))
    for professional_id in event.notify_professionals:
        recipients += professional_recipients(
            session, _professional(session, professional_id), today
        )
    if event.reason in ("expired", REMOVED):  # the reporter did not end it: tell them too
        reporter = session.get(Professional, event.professional_id)
        if reporter is not None:
            recipients += professional_recipients(session, reporter, today)
    notify(
        session,
        config,
        kind="signaal-beeindigd",
        recipients=recipients,
        reference=event.signal_number,
        context=context,
        key=event.signal_number,
        now=event.at,
    )


def on_signal_expiring(session: Session, config: CoreConfig, event: SignalExpiringEvent) -> None:
    signal = session.get(Signal, event.signal_id)
    assert signal is not None
    latest = latest_end_date(local_date(signal.placed_at, config.tz))
    notify(
        session,
        config,
        kind="signaal-verloopt",
        recipients=professional_recipients(
            session, _professional(session, signal.professional_id), _today(config, event.at)
        ),
        reference=signal.number,
        context={
            "signal": _signal_card(session, config, signal, event.at),
            "latest_end": latest.isoformat(),
            "can_extend": signal.ends_on < latest,
        },
        key=f"{signal.number}:{signal.ends_on.isoformat()}",
        now=event.at,
        reply=ReplyRequest(ReplyPurpose.SIGNAL_EXPIRY.value, signal.id or 0),
    )


def on_informing_reminder_due(
    session: Session, config: CoreConfig, event: InformingReminderDueEvent
) -> None:
    """Jeugdwet 7.1.5: the reporter is reminded to inform, with who that is at this age."""
    signal = session.get(Signal, event.signal_id)
    if signal is None:
        return  # withdrawn as unjustified since
    notify(
        session,
        config,
        kind="informeren-herinnering",
        recipients=professional_recipients(
            session, _professional(session, signal.professional_id), _today(config, event.at)
        ),
        reference=signal.number,
        context={
            "signal": _signal_card(session, config, signal, event.at),
            "informed": signal.informed,
            "informed_party": event.informed_party,
            "reminder_days": config.informing_reminder_days,
        },
        key=signal.number,
        now=event.at,
        reply=ReplyRequest(ReplyPurpose.INFORMING.value, signal.id or 0),
    )


# --- matches ---------------------------------------------------------------------------------


def _match_context(
    session: Session,
    config: CoreConfig,
    match: Match,
    own: Signal,
    signals: list[Signal],
    now: datetime,
) -> dict[str, Any]:
    partners = [
        _signal_card(session, config, s, now)
        for s in signals
        if s.professional_id != own.professional_id
    ]
    return {
        "match_number": match.number,
        "family": match.kind == MatchKind.FAMILY,
        "own_signal": _signal_card(session, config, own, now),
        "partners": partners,
        "follow_up_due": match.follow_up_due_at.isoformat() if match.follow_up_due_at else "",
    }


def on_match_members_joined(
    session: Session, config: CoreConfig, event: MatchMembersJoinedEvent
) -> None:

    match = session.get(Match, event.match_id)
    assert match is not None
    members = match_members(session, event.match_id)
    signals = [signal for _, signal in members]
    today = _today(config, event.at)
    joined = set(event.joined_signal_ids)
    kind = "gezinsmatch" if match.kind == MatchKind.FAMILY else "match"
    # Everyone hears of the newcomers; newcomers hear of everyone. Once per professional: who
    # signalled two siblings is one partner in the family match, not two.
    occasion = ",".join(str(i) for i in sorted(joined))
    for professional_id, own in _first_signal_per_professional(signals).items():
        notify(
            session,
            config,
            kind=kind,
            recipients=professional_recipients(
                session, _professional(session, professional_id), today
            ),
            reference=match.number,
            context=_match_context(session, config, match, own, signals, event.at),
            key=f"{match.number}:P{professional_id}:{occasion}",
            now=event.at,
            reply=ReplyRequest(ReplyPurpose.MATCH.value, match.id or 0),
        )


def _first_signal_per_professional(signals: list[Signal]) -> dict[int, Signal]:
    first: dict[int, Signal] = {}
    for signal in signals:
        first.setdefault(signal.professional_id, signal)
    return first


def on_match_follow_up_due(
    session: Session, config: CoreConfig, event: MatchFollowUpDueEvent
) -> None:

    match = session.get(Match, event.match_id)
    assert match is not None
    members = match_members(session, event.match_id)
    signals = [signal for _, signal in members]
    today = _today(config, event.at)
    unconfirmed = [signal for member, signal in members if member.contact_confirmed_at is None]
    for professional_id, own in _first_signal_per_professional(unconfirmed).items():
        notify(
            session,
            config,
            kind="match-opvolging",
            recipients=professional_recipients(
                session, _professional(session, professional_id), today
            ),
            reference=match.number,
            context=_match_context(session, config, match, own, signals, event.at),
            key=f"{match.number}:P{professional_id}:{_moment(match.follow_up_due_at)}",
            now=event.at,
            reply=ReplyRequest(ReplyPurpose.MATCH.value, match.id or 0),
        )


def on_match_escalated(session: Session, config: CoreConfig, event: MatchEscalatedEvent) -> None:

    match = session.get(Match, event.match_id)
    assert match is not None
    members = match_members(session, event.match_id)
    municipality = _municipality_of(session, match_youth_id(session, match) or 0)
    if municipality is None:
        return
    rows = [
        {
            **_signal_card(session, config, signal, event.at),
            "contact_confirmed": member.contact_confirmed_at is not None,
        }
        for member, signal in members
    ]
    notify(
        session,
        config,
        kind="match-escalatie",
        recipients=municipality_recipients(session, municipality),
        reference=match.number,
        context={
            "match_number": match.number,
            "family": match.kind == MatchKind.FAMILY,
            "members": rows,
            "follow_up_due": match.follow_up_due_at.isoformat() if match.follow_up_due_at else "",
            "municipality": municipality.name,
            "assign_options": assign_choices(session, RegieSubject(match=match)),
        },
        key=f"{match.number}:{match.follow_up_due_at}",
        now=event.at,
        reply=escalation_reply(RegieSubject(match=match)),
    )


def on_match_consent_recorded(
    session: Session, config: CoreConfig, event: MatchConsentRecordedEvent
) -> None:
    """The other parties in the match hear the fact (seed 003), never any content."""
    match = session.get(Match, event.match_id)
    assert match is not None
    today = _today(config, event.at)
    others = [
        signal
        for _, signal in match_members(session, event.match_id)
        if signal.institution_id != event.institution_id
    ]
    institution = institution_card(_institution(session, event.institution_id))
    for professional_id, own in _first_signal_per_professional(others).items():
        notify(
            session,
            config,
            kind="match-toestemming",
            recipients=professional_recipients(
                session, _professional(session, professional_id), today
            ),
            reference=match.number,
            context={
                "match_number": match.number,
                "family": match.kind == MatchKind.FAMILY,
                "institution": institution,
                "status": event.status,
                "recorded_on": today.isoformat(),
                "own_signal": _signal_card(session, config, own, event.at),
            },
            key=f"{match.number}:{event.institution_id}:{event.status}:{_moment(event.at)}",
            now=event.at,
        )


# --- coordination ----------------------------------------------------------------------------


def _covered(session: Session, coordination: Coordination) -> list[int]:
    """The youths of the family the coordination directs help for (its lead once it ended)."""
    return member_youth_ids(session, coordination) or [coordination.youth_id]


def _own_references(session: Session, coordination: Coordination) -> str:
    """The assignee's own client references (kenmerken) for the family's youths."""
    references = (
        institution_reference(session, youth_id, coordination.institution_id or "")
        for youth_id in _covered(session, coordination)
    )
    return ", ".join(r for r in references if r)


def _coordination_context(
    session: Session, config: CoreConfig, coordination: Coordination, now: datetime
) -> dict[str, Any]:
    signals = active_signals_of(session, _covered(session, coordination))
    institution = (
        session.get(Institution, coordination.institution_id)
        if coordination.institution_id
        else None
    )
    municipality = _municipality_of(session, coordination.youth_id)
    hand_over_options = [
        institution_card(i)
        for i in takeover_candidates(session, coordination.youth_id, coordination.institution_id)
    ]
    return {
        "coordination_number": coordination.number,
        "institution": institution_card(institution) if institution else None,
        "rule_name": coordination.rule_name,
        "rule_reason": coordination.rule_reason,
        "due": coordination.due_at.isoformat() if coordination.due_at else "",
        "response_working_days": coordination.response_working_days,
        "code_label": _most_urgent_label(config, signals),
        "signals": [_signal_card(session, config, s, now) for s in signals],
        "involved": _involved_cards(session, _covered(session, coordination)),
        "hand_over_options": hand_over_options,
        "declined": [
            {"institution": _institution(session, d["institution_id"]).name, "reason": d["reason"]}
            for d in coordination.declined
            if session.get(Institution, d["institution_id"])
        ],
        "municipality": municipality.name if municipality else "",
        "accepted_by": coordination.accepted_by or "",
    }


def _assignee_recipients(
    session: Session, config: CoreConfig, coordination: Coordination, now: datetime
) -> list[Recipient]:
    if coordination.institution_id is None:
        return []
    institution = _institution(session, coordination.institution_id)
    return coordinator_recipients(session, institution, _today(config, now))


def on_coordination_assigned(
    session: Session, config: CoreConfig, event: CoordinationAssignedEvent
) -> None:
    coordination = session.get(Coordination, event.coordination_id)
    assert coordination is not None
    context = _coordination_context(session, config, coordination, event.at)
    context["own_reference"] = _own_references(session, coordination)
    kind = "coordinatie-toegewezen"
    if event.handed_over_from:
        kind = "coordinatie-overgedragen"
        context["handed_over_from"] = institution_card(
            _institution(session, event.handed_over_from)
        )
    notify(
        session,
        config,
        kind=kind,
        recipients=_assignee_recipients(session, config, coordination, event.at),
        reference=coordination.number,
        context=context,
        key=f"{coordination.number}:{event.round}",
        now=event.at,
        reply=ReplyRequest(ReplyPurpose.COORDINATION.value, coordination.id or 0),
    )


def on_coordination_reminder_due(
    session: Session, config: CoreConfig, event: CoordinationReminderDueEvent
) -> None:
    coordination = session.get(Coordination, event.coordination_id)
    assert coordination is not None
    context = _coordination_context(session, config, coordination, event.at)
    context["own_reference"] = _own_references(session, coordination)
    notify(
        session,
        config,
        kind="coordinatie-herinnering",
        recipients=_assignee_recipients(session, config, coordination, event.at),
        reference=coordination.number,
        context=context,
        # The deadline too: a tightened deadline (a more urgent signal) earns its own reminder.
        key=f"{coordination.number}:{event.round}:{_moment(coordination.due_at)}",
        now=event.at,
        reply=ReplyRequest(ReplyPurpose.COORDINATION.value, coordination.id or 0),
    )


def on_coordination_escalated(
    session: Session, config: CoreConfig, event: CoordinationEscalatedEvent
) -> None:
    coordination = session.get(Coordination, event.coordination_id)
    assert coordination is not None
    municipality = _municipality_of(session, coordination.youth_id)
    if municipality is None:
        return
    context = _coordination_context(session, config, coordination, event.at)
    context["reason"] = event.reason
    context["assign_options"] = assign_choices(session, RegieSubject(coordination=coordination))
    notify(
        session,
        config,
        kind="coordinatie-escalatie",
        recipients=municipality_recipients(session, municipality),
        reference=coordination.number,
        context=context,
        key=f"{coordination.number}:{event.round}:{event.reason}",
        now=event.at,
        reply=escalation_reply(RegieSubject(coordination=coordination)),
    )


def on_coordination_accepted(
    session: Session, config: CoreConfig, event: CoordinationAcceptedEvent
) -> None:
    coordination = session.get(Coordination, event.coordination_id)
    assert coordination is not None
    context = _coordination_context(session, config, coordination, event.at)
    accepted_by = None
    if coordination.accepted_by and "@" in coordination.accepted_by:
        person = session.exec(
            select(Professional).where(Professional.email == coordination.accepted_by)
        ).first()
        if person is not None:
            accepted_by = contact_card(session, person, _today(config, event.at))
    context["coordinator_contact"] = accepted_by
    recipients = [
        institution_recipient(_institution(session, i))
        for i in involved_in_any(session, _covered(session, coordination))
    ]
    today = _today(config, event.at)
    for signal in active_signals_of(session, _covered(session, coordination)):
        recipients += professional_recipients(
            session, _professional(session, signal.professional_id), today
        )
    notify(
        session,
        config,
        kind="coordinatie-geaccepteerd",
        recipients=recipients,
        reference=coordination.number,
        context=context,
        key=f"{coordination.number}:{coordination.round}",
        now=event.at,
    )


# --- absence and transfer --------------------------------------------------------------------


def on_absence_declared(session: Session, config: CoreConfig, event: AbsenceDeclaredEvent) -> None:
    absence = session.get(Absence, event.absence_id)
    assert absence is not None
    absent = _professional(session, absence.professional_id)
    stand_in = session.get(Professional, absence.stand_in_id) if absence.stand_in_id else None
    active = session.exec(
        select(Signal).where(Signal.professional_id == absent.id, Signal.status == "active")
    ).all()
    context = {
        "absent": {"name": absent.name, "email": absent.email, "phone": absent.phone or ""},
        "stand_in": {"name": stand_in.name, "email": stand_in.email, "phone": stand_in.phone or ""}
        if stand_in
        else None,
        "starts_on": absence.starts_on.isoformat(),
        "ends_on": absence.ends_on.isoformat(),
        "active_signal_count": len(active),
    }
    recipients = [
        Recipient(
            absent.email,
            "professional",
            absent.name,
            absent.id,
            absent.institution_id,
            absent.slack_user_id,
        )
    ]
    if stand_in is not None:
        recipients.append(
            Recipient(
                stand_in.email,
                "stand-in",
                stand_in.name,
                stand_in.id,
                stand_in.institution_id,
                stand_in.slack_user_id,
                absent.name,
            )
        )
    notify(
        session,
        config,
        kind="afwezigheid",
        recipients=recipients,
        reference=f"A-{absence.id}",
        context=context,
        key=f"A-{absence.id}",
        now=event.at,
    )


def _person(p: Professional) -> dict[str, str]:
    return {"name": p.name, "email": p.email, "phone": p.phone or ""}


def on_transfer_requested(
    session: Session, config: CoreConfig, event: TransferRequestedEvent
) -> None:
    transfer = session.get(TransferRequest, event.transfer_id)
    assert transfer is not None
    admins = session.exec(
        select(Professional).where(
            Professional.institution_id == transfer.institution_id, col(Professional.active)
        )
    ).all()
    recipients = [
        Recipient(p.email, "institution-admin", p.name, p.id, p.institution_id, p.slack_user_id)
        for p in admins
        if p.has_role(Role.INSTITUTION_ADMIN)
    ]
    notify(
        session,
        config,
        kind="overdracht",
        recipients=recipients,
        reference=transfer.number,
        context=_transfer_context(session, transfer, stage="requested"),
        key=f"{transfer.number}:requested",
        now=event.at,
    )


def _transfer_context(session: Session, transfer: TransferRequest, *, stage: str) -> dict[str, Any]:
    count = len(
        session.exec(
            select(Signal.id).where(
                Signal.professional_id
                == (
                    transfer.to_professional_id
                    if stage == "executed"
                    else transfer.from_professional_id
                ),
                Signal.status == "active",
            )
        ).all()
    )
    return {
        "transfer_number": transfer.number,
        "stage": stage,
        "from_professional": _person(_professional(session, transfer.from_professional_id)),
        "to_professional": _person(_professional(session, transfer.to_professional_id)),
        "requested_by": _person(_professional(session, transfer.requested_by_id)),
        "instructed_by": _person(_professional(session, transfer.instructed_by_id)),
        "signal_count": transfer.signals_moved if stage == "executed" else count,
    }


def on_transfer_executed(
    session: Session, config: CoreConfig, event: TransferExecutedEvent
) -> None:
    transfer = session.get(TransferRequest, event.transfer_id)
    assert transfer is not None
    today = _today(config, event.at)
    new_owner = _professional(session, transfer.to_professional_id)
    old_owner = _professional(session, transfer.from_professional_id)
    context = _transfer_context(session, transfer, stage="executed")
    context["signals"] = [
        _signal_card(session, config, s, event.at)
        for s in (session.get(Signal, i) for i in event.signal_ids)
        if s is not None
    ]
    notify(
        session,
        config,
        kind="overdracht",
        recipients=[
            *professional_recipients(session, new_owner, today),
            Recipient(
                old_owner.email,
                "professional",
                old_owner.name,
                old_owner.id,
                old_owner.institution_id,
                old_owner.slack_user_id,
            ),
        ],
        reference=transfer.number,
        context=context,
        key=f"{transfer.number}:executed",
        now=event.at,
    )
    # Match partners: their contact for these signals changed.
    for signal_id in event.signal_ids:
        signal = session.get(Signal, signal_id)
        if signal is None:
            continue
        match_ids = session.exec(
            select(MatchMember.match_id)
            .join(Match, col(Match.id) == MatchMember.match_id)
            .where(
                MatchMember.signal_id == signal_id,
                Match.status == MatchStatus.ACTIVE,
                col(MatchMember.left_at).is_(None),
            )
        ).all()
        for match_id in match_ids:
            match = session.get(Match, match_id)
            assert match is not None
            for _member, partner_signal in match_members(session, match_id):
                if partner_signal.professional_id in (new_owner.id, old_owner.id):
                    continue
                notify(
                    session,
                    config,
                    kind="contactpersoon-gewijzigd",
                    recipients=professional_recipients(
                        session, _professional(session, partner_signal.professional_id), today
                    ),
                    reference=match.number,
                    context={
                        "match_number": match.number,
                        "signal_number": signal.number,
                        "own_signal": _signal_card(session, config, partner_signal, event.at),
                        "old_contact": _person(old_owner),
                        "new_contact": contact_card(session, new_owner, today),
                    },
                    key=f"{transfer.number}:{match.number}:{signal.number}:{partner_signal.number}",
                    now=event.at,
                )


SUBSCRIBERS: list[tuple[type[Event], Subscriber]] = [
    (SignalPlacedEvent, on_signal_placed),
    (ArchivedSignalRecalledEvent, on_archived_signal_recalled),
    (SignalEndedEvent, on_signal_ended),
    (SignalExpiringEvent, on_signal_expiring),
    (InformingReminderDueEvent, on_informing_reminder_due),
    (MatchConsentRecordedEvent, on_match_consent_recorded),
    (MatchMembersJoinedEvent, on_match_members_joined),
    (MatchFollowUpDueEvent, on_match_follow_up_due),
    (MatchEscalatedEvent, on_match_escalated),
    (CoordinationAssignedEvent, on_coordination_assigned),
    (CoordinationReminderDueEvent, on_coordination_reminder_due),
    (CoordinationEscalatedEvent, on_coordination_escalated),
    (CoordinationAcceptedEvent, on_coordination_accepted),
    (MunicipalityActedEvent, on_municipality_acted),
    (AbsenceDeclaredEvent, on_absence_declared),
    (TransferRequestedEvent, on_transfer_requested),
    (TransferExecutedEvent, on_transfer_executed),
    # A question answered, by anyone, by mail or Slack: the Slack messages asking it lose their
    # buttons (core.slack_threads.ANSWERS says which event answers which question).
    *((event_type, on_answered) for event_type in ANSWERS),
]

# Every kind a notification can have (CONTRACT §4, plus archief-match, match-escalatie and the
# administrator's logboek-anker, core.audit_anchor).
NOTIFICATION_KINDS = (
    "ontvangstbevestiging",
    "foutmelding",
    "nieuwe-betrokkenheid",
    "signaal",
    "match",
    "gezinsmatch",
    "archief-match",
    "coordinatie-toegewezen",
    "coordinatie-herinnering",
    "coordinatie-escalatie",
    "coordinatie-geaccepteerd",
    "coordinatie-overgedragen",
    "afwezigheid",
    "overdracht",
    "contactpersoon-gewijzigd",
    "signaal-verloopt",
    "signaal-beeindigd",
    "match-opvolging",
    "match-escalatie",
    "gemeente-regie",
    "logboek-anker",
    "hulpverlener-vertrokken",
    "instelling-vertrokken",  # core.institution_departure
    "verhuizing",  # core.moves
    "coordinatie-overname",  # core.coordination_succession
    "rechtenverzoek-termijn",  # a rights request's deadline, to the region's admins
    "informeren-herinnering",
    "match-toestemming",
    "maandrapport",  # the monthly follow-up figures to each municipality (core.report_mail)
    "slack-koppelcode",  # core.slack_codes: a one-time code linking Slack, by mail only
)
