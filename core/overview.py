"""A professional's own work at a glance: ``/verwijsindex mijn`` and the Slack App Home.

What it shows is what the professional's notifications already told them — references (S-12,
M-3, C-7, their own kenmerk), signal codes, dates, deadlines and the contact details of match
partners — never a youth's identity (DOMAIN: Content-free). It is still a view of data about
youths, so :func:`my_work` records one ``work-viewed`` event in the logboek (DOMAIN: Logboek),
naming the signals, matches and coordinations shown.

A professional who stands in for an absent colleague sees that colleague's active signals and
matches too: they receive the colleague's notifications (DOMAIN: Transfer on absence).

``my_work(..., with_answers=True)`` (the App Home) also lists what awaits the professional's
answer — coordinations to accept, transfers to carry out, match contact and consent, informing,
extending — each with the reply token its buttons carry: a token of the professional (or their
institution's mailbox) for that subject, as a notification's ``antwoord+TOKEN@`` carries it, so
``core.replies.answer`` decides it as for a mail or a DM. Never the token of a Slack message's
buttons: spent from the Home, that message would count as answered by its own button and keep
them (core.slack_threads.carried_by_a_slack_message); answered with another token (its mail's,
or a new one), it is updated as after a mail answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_
from sqlmodel import Session, col, select

from core import audit
from core.actors import may_administer, sender_allowed
from core.clock import as_utc, local_date, utcnow
from core.config import CoreConfig
from core.consent import ConsentItem, consents_of
from core.informing import NOT_INFORMED
from core.involvement import institution_reference, takeover_candidates
from core.match_members import match_members
from core.models import (
    Absence,
    ConsentStatus,
    Coordination,
    CoordinationStatus,
    Institution,
    Match,
    MatchKind,
    MatchMember,
    MatchStatus,
    Professional,
    ReplyPurpose,
    ReplyToken,
    Signal,
    SignalStatus,
    TransferRequest,
    TransferStatus,
)
from core.notifications.recipients import current_absence, current_stand_in
from core.reply_tokens import issue_token
from core.slack_threads import carried_by_a_slack_message


@dataclass(frozen=True)
class Contact:
    """A professional as a correspondent sees them (CONTRACT §4: contact details)."""

    name: str
    email: str
    phone: str
    institution: str


@dataclass(frozen=True)
class SignalItem:
    number: str
    code: str
    code_label: str
    placed_on: date
    ends_on: date
    own_reference: str  # the reporter's own kenmerk, "" when none was given
    informed: str = "ja"  # ja | nee | uitgesteld (core.informing: still to inform)
    informed_party: str = ""  # who is to be informed (ouders | jongere en ouders | jongere)


@dataclass(frozen=True)
class MatchPartner:
    signal_number: str
    contact: Contact
    stand_in: Contact | None  # the partner is absent: reach their stand-in
    stand_in_until: date | None
    contact_confirmed: bool


@dataclass(frozen=True)
class MatchItem:
    number: str
    family: bool
    own_signal: str  # the signal by which the professional (or the absent colleague) is in it
    partners: list[MatchPartner]
    follow_up_due: datetime | None
    contact_confirmed: bool  # has this side confirmed contact (match follow-up)?
    # Consent after a match, per institution (core.consent): the fact only.
    consents: list[ConsentItem] = field(default_factory=list)


@dataclass(frozen=True)
class AssignmentItem:
    """A coordination of the professional's institution: waiting for an answer, or running."""

    number: str
    status: str  # pending | accepted
    due: datetime | None
    response_working_days: int
    own_reference: str  # the institution's kenmerk for the youth, "" if it has none
    rule_name: str
    assigned_at: datetime


@dataclass(frozen=True)
class AbsenceItem:
    starts_on: date
    ends_on: date
    current: bool  # today falls within it
    stand_in: Contact | None


@dataclass(frozen=True)
class StandInDuty:
    """The professional stands in for an absent colleague."""

    colleague: Contact
    starts_on: date
    ends_on: date
    current: bool
    signals: list[SignalItem]
    matches: list[MatchItem]


# -- what awaits the professional's answer (``with_answers``) --------------------------------
# ``token`` is a reply token (core.reply_tokens) the professional may answer with.


@dataclass(frozen=True)
class AwaitingCoordination:
    kind = "coordination"
    assignment: AssignmentItem
    token: str
    may_hand_over: bool  # another involved institution may take it over


@dataclass(frozen=True)
class AwaitingTransfer:
    """A transfer request the professional may carry out (institution-admin, admin)."""

    kind = "transfer"
    number: str
    from_professional: Contact
    to_professional: Contact
    requested_by: Contact
    instructed_by: Contact
    requested_at: datetime


@dataclass(frozen=True)
class AwaitingMatch:
    kind = "match"
    match: MatchItem
    token: str
    needs_contact: bool  # this side has not confirmed contact (match follow-up)
    needs_consent: bool  # the institution's consent is not recorded, or only asked
    on_behalf_of: str = ""  # the absent colleague's name, for a stand-in


@dataclass(frozen=True)
class AwaitingSignal:
    kind = "signal"
    signal: SignalItem
    informing_token: str  # "" unless the youth/parents are still to be informed
    extend_token: str  # "" unless it ends within the region's reminder lead days
    on_behalf_of: str = ""


Awaiting = AwaitingCoordination | AwaitingTransfer | AwaitingMatch | AwaitingSignal


@dataclass(frozen=True)
class MyWork:
    professional: Contact
    today: date
    signals: list[SignalItem]
    matches: list[MatchItem]
    assignments: list[AssignmentItem]
    absences: list[AbsenceItem]  # own absences, current and coming
    standing_in_for: list[StandInDuty] = field(default_factory=list)
    awaiting: list[Awaiting] = field(default_factory=list)  # only ``with_answers``

    @property
    def absent_now(self) -> AbsenceItem | None:
        return next((a for a in self.absences if a.current), None)

    def references(self) -> dict[str, list[str]]:
        """The numbers shown, for the logboek."""
        duties = self.standing_in_for
        shown = {
            "signals": [s.number for s in self.signals]
            + [s.number for d in duties for s in d.signals],
            "matches": [m.number for m in self.matches]
            + [m.number for d in duties for m in d.matches],
            "coordinations": [a.number for a in self.assignments],
        }
        transfers = [a.number for a in self.awaiting if isinstance(a, AwaitingTransfer)]
        if transfers:
            shown["transfers"] = transfers
        return shown


def my_work(
    session: Session,
    config: CoreConfig,
    professional: Professional,
    *,
    actor: audit.Actor,
    now: datetime | None = None,
    with_answers: bool = False,
) -> MyWork:
    """Everything ``professional`` has on their plate today, and a logboek entry for the view.
    ``with_answers``: also what awaits their answer, with reply tokens (issued when none of the
    professional's own is still usable).

    Runs in the caller's transaction (the audit event is written when it commits).
    """
    now = now or utcnow()
    today = local_date(now, config.tz)
    professional_id = professional.id or 0
    work = MyWork(
        professional=_contact(session, professional),
        today=today,
        signals=_signals(session, config, professional_id),
        matches=_matches(session, config, professional_id, today),
        assignments=_assignments(session, professional.institution_id),
        absences=_own_absences(session, professional_id, today),
        standing_in_for=_stand_in_duties(session, config, professional_id, today),
    )
    if with_answers:
        work.awaiting.extend(_awaiting(session, config, professional, work, now))
    audit.record(
        session,
        actor,
        "work-viewed",
        f"professional:{professional_id}",
        details=work.references(),
        at=now,
    )
    return work


# -- pieces -----------------------------------------------------------------------------------


def _institution_name(session: Session, institution_id: str) -> str:
    institution = session.get(Institution, institution_id)
    return institution.name if institution else institution_id


def _contact(session: Session, professional: Professional) -> Contact:
    return Contact(
        name=professional.name,
        email=professional.email,
        phone=professional.phone or "",
        institution=_institution_name(session, professional.institution_id),
    )


def _signal_item(config: CoreConfig, signal: Signal) -> SignalItem:
    return SignalItem(
        number=signal.number,
        code=signal.code,
        code_label=config.code_label(signal.code),
        placed_on=local_date(signal.placed_at, config.tz),
        ends_on=signal.ends_on,
        own_reference=signal.reference or "",
        informed=signal.informed,
        informed_party=signal.informed_party,
    )


def _active_signals_of(session: Session, professional_id: int) -> list[Signal]:
    return list(
        session.exec(
            select(Signal)
            .where(Signal.professional_id == professional_id, Signal.status == SignalStatus.ACTIVE)
            .order_by(col(Signal.ends_on), col(Signal.id))
        ).all()
    )


def _signals(session: Session, config: CoreConfig, professional_id: int) -> list[SignalItem]:
    return [_signal_item(config, s) for s in _active_signals_of(session, professional_id)]


def _matches(
    session: Session, config: CoreConfig, professional_id: int, today: date
) -> list[MatchItem]:
    """Active matches in which one of the professional's active signals takes part."""
    rows = session.exec(
        select(Match, MatchMember, Signal)
        .join(MatchMember, col(MatchMember.match_id) == Match.id)
        .join(Signal, col(Signal.id) == MatchMember.signal_id)
        .where(
            Match.status == MatchStatus.ACTIVE,
            col(MatchMember.left_at).is_(None),
            Signal.professional_id == professional_id,
            Signal.status == SignalStatus.ACTIVE,
        )
        .order_by(col(Match.id), col(MatchMember.id))
    ).all()
    items: list[MatchItem] = []
    seen: set[int] = set()
    consents = consents_of(session, (match.id or 0 for match, _, _ in rows))
    for match, member, own in rows:
        if match.id in seen:  # two siblings signalled by one professional: one family match
            continue
        seen.add(match.id or 0)
        partners = [
            _partner(session, partner_member, partner_signal, today)
            for partner_member, partner_signal in match_members(session, match.id or 0)
            if partner_signal.professional_id != professional_id
        ]
        items.append(
            MatchItem(
                number=match.number,
                family=match.kind == MatchKind.FAMILY,
                own_signal=own.number,
                partners=partners,
                follow_up_due=as_utc(match.follow_up_due_at) if match.follow_up_due_at else None,
                contact_confirmed=member.contact_confirmed_at is not None,
                consents=consents.get(match.id or 0, []),
            )
        )
    return items


def _partner(session: Session, member: MatchMember, signal: Signal, today: date) -> MatchPartner:
    reporter = session.get(Professional, signal.professional_id)
    assert reporter is not None, signal.professional_id
    stand_in = current_stand_in(session, signal.professional_id, today)
    absence = current_absence(session, signal.professional_id, today) if stand_in else None
    return MatchPartner(
        signal_number=signal.number,
        contact=_contact(session, reporter),
        stand_in=_contact(session, stand_in) if stand_in is not None else None,
        stand_in_until=absence.ends_on if absence is not None else None,
        contact_confirmed=member.contact_confirmed_at is not None,
    )


def _open_coordinations(session: Session, institution_id: str) -> list[Coordination]:
    return list(
        session.exec(
            select(Coordination)
            .where(
                Coordination.institution_id == institution_id,
                col(Coordination.status).in_(
                    [CoordinationStatus.PENDING.value, CoordinationStatus.ACCEPTED.value]
                ),
            )
            .order_by(
                col(Coordination.status).desc(), col(Coordination.due_at), col(Coordination.id)
            )
        ).all()
    )


def _assignments(session: Session, institution_id: str) -> list[AssignmentItem]:
    coordinations = _open_coordinations(session, institution_id)
    return [
        AssignmentItem(
            number=c.number,
            status=c.status,
            due=as_utc(c.due_at) if c.due_at else None,
            response_working_days=c.response_working_days,
            own_reference=institution_reference(session, c.youth_id, institution_id) or "",
            rule_name=c.rule_name,
            assigned_at=as_utc(c.assigned_at),
        )
        for c in coordinations
    ]


def _open_absences(
    session: Session, today: date, *conditions: ColumnElement[bool]
) -> list[Absence]:
    return list(
        session.exec(
            select(Absence)
            .where(
                *conditions,
                col(Absence.ends_on) >= today,
                col(Absence.ended_at).is_(None),
            )
            .order_by(col(Absence.starts_on), col(Absence.id))
        ).all()
    )


def _own_absences(session: Session, professional_id: int, today: date) -> list[AbsenceItem]:
    items = []
    for absence in _open_absences(session, today, col(Absence.professional_id) == professional_id):
        stand_in = session.get(Professional, absence.stand_in_id) if absence.stand_in_id else None
        items.append(
            AbsenceItem(
                starts_on=absence.starts_on,
                ends_on=absence.ends_on,
                current=absence.starts_on <= today,
                stand_in=_contact(session, stand_in) if stand_in is not None else None,
            )
        )
    return items


def _stand_in_duties(
    session: Session, config: CoreConfig, professional_id: int, today: date
) -> list[StandInDuty]:
    duties = []
    for absence in _open_absences(session, today, col(Absence.stand_in_id) == professional_id):
        colleague = session.get(Professional, absence.professional_id)
        if colleague is None:
            continue
        current = absence.starts_on <= today
        duties.append(
            StandInDuty(
                colleague=_contact(session, colleague),
                starts_on=absence.starts_on,
                ends_on=absence.ends_on,
                current=current,
                # Their work is the stand-in's only while the absence runs.
                signals=_signals(session, config, absence.professional_id) if current else [],
                matches=_matches(session, config, absence.professional_id, today)
                if current
                else [],
            )
        )
    return duties


# -- what awaits an answer -----------------------------------------------------------------


def _awaiting(
    session: Session, config: CoreConfig, me: Professional, work: MyWork, now: datetime
) -> list[Awaiting]:
    """Coordinations first (their deadline runs in working days), then transfers, matches and
    signals: the professional's own, then those of a colleague they stand in for today."""
    items: list[Awaiting] = []
    items.extend(_awaiting_coordinations(session, me, work.assignments, now))
    items.extend(_awaiting_transfers(session, me))
    lead_days = config.covenant.region.reminder_lead_days
    for matches, signals, owner in [
        (work.matches, work.signals, ""),
        *((d.matches, d.signals, d.colleague.name) for d in work.standing_in_for if d.current),
    ]:
        items.extend(_awaiting_matches(session, me, matches, owner, now))
        items.extend(_awaiting_signals(session, me, signals, owner, work.today, lead_days, now))
    return items


def _awaiting_coordinations(
    session: Session, me: Professional, assignments: list[AssignmentItem], now: datetime
) -> list[AwaitingCoordination]:
    institution = session.get(Institution, me.institution_id)
    # core.replies takes an institution's token only from an allowed sender of it.
    if institution is None or not sender_allowed(institution, me.email):
        return []
    shown = {a.number: a for a in assignments if a.status == CoordinationStatus.PENDING}
    items = []
    for coordination in _open_coordinations(session, institution.id):
        assignment = shown.get(coordination.number)
        if assignment is None:
            continue
        token = _token(session, ReplyPurpose.COORDINATION, coordination.id or 0, me, now)
        others = takeover_candidates(session, coordination.youth_id, institution.id)
        items.append(AwaitingCoordination(assignment, token, may_hand_over=bool(others)))
    return items


def _awaiting_transfers(session: Session, me: Professional) -> list[AwaitingTransfer]:
    requested = session.exec(
        select(TransferRequest)
        .where(TransferRequest.status == TransferStatus.REQUESTED)
        .order_by(col(TransferRequest.requested_at), col(TransferRequest.id))
    ).all()
    items = []
    for transfer in requested:
        # core.transfer.execute_transfer: the institution-admin, or the region's admin.
        if not may_administer(me, transfer.institution_id):
            continue
        people = {
            role: session.get(Professional, person_id)
            for role, person_id in (
                ("from", transfer.from_professional_id),
                ("to", transfer.to_professional_id),
                ("by", transfer.requested_by_id),
                ("senior", transfer.instructed_by_id),
            )
        }
        contacts = {role: _contact(session, p) for role, p in people.items() if p is not None}
        if len(contacts) < len(people):
            continue
        items.append(
            AwaitingTransfer(
                number=transfer.number,
                from_professional=contacts["from"],
                to_professional=contacts["to"],
                requested_by=contacts["by"],
                instructed_by=contacts["senior"],
                requested_at=as_utc(transfer.requested_at),
            )
        )
    return items


def _awaiting_matches(
    session: Session, me: Professional, matches: list[MatchItem], owner: str, now: datetime
) -> list[AwaitingMatch]:
    items = []
    for match in matches:
        settled = {
            c.institution_id
            for c in match.consents
            if c.status in (ConsentStatus.GIVEN.value, ConsentStatus.REFUSED.value)
        }
        # The institution consent is recorded for: that of the signal (core.consent._party_of).
        needs_consent = me.institution_id not in settled
        if match.contact_confirmed and not needs_consent:
            continue
        match_id = int(match.number.removeprefix("M-"))
        token = _token(session, ReplyPurpose.MATCH, match_id, me, now, personal=True)
        items.append(AwaitingMatch(match, token, not match.contact_confirmed, needs_consent, owner))
    return items


def _awaiting_signals(
    session: Session,
    me: Professional,
    signals: list[SignalItem],
    owner: str,
    today: date,
    lead_days: int,
    now: datetime,
) -> list[AwaitingSignal]:
    items = []
    for signal in signals:
        to_inform = signal.informed in NOT_INFORMED
        ending = (signal.ends_on - today).days <= lead_days
        if not (to_inform or ending):
            continue
        signal_id = int(signal.number.removeprefix("S-"))
        informing = (
            _token(session, ReplyPurpose.INFORMING, signal_id, me, now, personal=True)
            if to_inform
            else ""
        )
        extend = (
            _token(session, ReplyPurpose.SIGNAL_EXPIRY, signal_id, me, now, personal=True)
            if ending
            else ""
        )
        items.append(AwaitingSignal(signal, informing, extend, owner))
    return items


TOKEN_MARGIN = timedelta(days=1)  # a token about to expire is not handed out again


def _token(
    session: Session,
    purpose: ReplyPurpose,
    subject_id: int,
    me: Professional,
    now: datetime,
    *,
    personal: bool = False,
) -> str:
    """A usable reply token for ``me`` on the subject that no Slack message's buttons carry
    (see the module docstring): ``me``'s own or, unless ``personal``, their institution's
    mailbox's — a notification's mail carried it, or this issued it before — else a new one
    issued as dispatch would (core.notifications.dispatch): personal, or, for a coordination,
    the institution's — core.replies then checks the sender against it."""
    scope: ColumnElement[bool] = col(ReplyToken.professional_id) == me.id
    if not personal:
        scope = or_(
            scope,
            and_(
                col(ReplyToken.institution_id) == me.institution_id,
                col(ReplyToken.professional_id).is_(None),
            ),
        )
    found = session.exec(
        select(ReplyToken.token)
        .where(
            ReplyToken.purpose == purpose.value,
            ReplyToken.subject_id == subject_id,
            col(ReplyToken.used_at).is_(None),
            col(ReplyToken.expires_at) > now + TOKEN_MARGIN,
            scope,
            ~carried_by_a_slack_message(col(ReplyToken.token)),
        )
        .order_by(col(ReplyToken.issued_at).desc(), col(ReplyToken.id).desc())
    ).first()
    if found is not None:
        return found
    if personal:
        return issue_token(
            session, purpose=purpose.value, subject_id=subject_id, professional_id=me.id, now=now
        )
    return issue_token(
        session,
        purpose=purpose.value,
        subject_id=subject_id,
        institution_id=me.institution_id,
        now=now,
    )
