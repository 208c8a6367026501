"""Signals: placing, withdrawing and extending (DOMAIN: step 2, Lifetime, Informing)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from dateutil.relativedelta import relativedelta
from sqlmodel import Session, col, select

from core import audit
from core.actors import acting_professional, may_administer
from core.clock import local_date, utcnow
from core.config import CoreConfig
from core.errors import Conflict, InvalidInput, NotAllowed
from core.events import (
    ArchivedSignalRecalledEvent,
    SignalEndedEvent,
    SignalExtendedEvent,
    SignalPlacedEvent,
)
from core.free_text import check_free_text
from core.identity import YouthIdentity, check_reference_text, check_youth_age
from core.involvement import involved_institution_ids
from core.models import (
    ArchiveReason,
    Informed,
    Institution,
    Match,
    MatchMember,
    MatchStatus,
    Professional,
    Signal,
    SignalStatus,
    Team,
)
from core.moves import apply_moves, detect_move
from core.notifications import publish
from core.notifications.recipients import current_stand_in
from core.numbers import find_numbered
from core.reconcile import reconcile_youth
from core.signal_terms import MAX_SIGNAL_YEARS, UNJUSTIFIED, archived_on_end, latest_end_date
from core.youths import (
    active_municipality_names,
    age_of,
    get_or_create_youth,
    lock_youth,
    resolve_destination,
)

WITHDRAW_REASONS = {"onterecht": UNJUSTIFIED, "risico-weg": ArchiveReason.RISK_GONE.value}


@dataclass(frozen=True)
class PlaceSignal:
    identity: YouthIdentity
    municipality: str
    code: str
    informed: str
    reference: str | None = None
    ends_on: date | None = None
    term_months: int | None = None
    postpone_reason: str | None = None
    leaflet_given: bool = False
    parent_bsns: tuple[str, ...] = ()


@dataclass(frozen=True)
class SignalOutcome:
    number: str
    ends_on: date
    informed_party: str
    match_number: str | None
    coordination_number: str | None


def informed_party_for(age: int) -> str:
    """Who must be informed, by age (DOMAIN: Informing)."""
    if age < 12:
        return "ouders"
    if age < 16:
        return "jongere en ouders"
    return "jongere"


def signal_end_date(
    placed_on: date, *, ends_on: date | None, term_months: int | None, default_months: int
) -> date:
    if ends_on is not None and term_months is not None:
        raise InvalidInput("geef een einddatum óf een looptijd, niet allebei", field="Einddatum")
    if term_months is not None and not 1 <= term_months <= 12 * MAX_SIGNAL_YEARS:
        raise InvalidInput("moet tussen 1 en 24 maanden liggen", field="Looptijd")
    end = ends_on or placed_on + relativedelta(months=term_months or default_months)
    if end <= placed_on:
        raise InvalidInput("moet na vandaag liggen", field="Einddatum")
    latest = latest_end_date(placed_on)
    if end > latest:
        raise InvalidInput(
            f"mag hoogstens 2 jaar na plaatsing liggen (uiterlijk {latest:%d-%m-%Y})",
            field="Einddatum",
        )
    return end


def check_informing(informed: str, postpone_reason: str | None) -> tuple[str, str | None]:
    """DOMAIN, Informing (Jeugdwet 7.1.5, AVG art. 14): not informing — not yet (``nee``) or
    postponed (``uitgesteld``) — is recorded with its reason, kept in ``Reden uitstel``."""
    value = (informed or "").strip().lower()
    allowed = {item.value for item in Informed}
    if value not in allowed:
        raise InvalidInput("moet ja, nee of uitgesteld zijn", field="Geïnformeerd")
    reason = (postpone_reason or "").strip() or None
    check_free_text(reason, "Reden uitstel", multiline=True)
    if value == Informed.POSTPONED and reason is None:
        raise InvalidInput(
            "informeren mag alleen worden uitgesteld met een reden (bijvoorbeeld veiligheid)",
            field="Reden uitstel",
        )
    if value == Informed.NO and reason is None:
        raise InvalidInput(
            "ontbreekt: bij Geïnformeerd 'nee' noteert u waarom de jongere of ouders (nog) niet "
            "zijn geïnformeerd (bijvoorbeeld: nog geen contact gehad)",
            field="Reden uitstel",
        )
    return value, None if value == Informed.YES else reason


def check_signal(request: PlaceSignal, *, config: CoreConfig, today: date) -> None:
    """The checks of :func:`place_signal` that need no database, in its order: for a form that
    must show its errors before anything is stored (a Slack modal is answered within 3 seconds,
    and placing waits its turn for the database). Who may signal is decided when placing."""
    _covenant_code(config, request.code)
    check_reference_text(request.reference, request.identity, request.parent_bsns)
    check_informing(request.informed, request.postpone_reason)
    signal_end_date(
        today,
        ends_on=request.ends_on,
        term_months=request.term_months,
        default_months=config.covenant.region.default_signal_term_months,
    )
    check_youth_age(request.identity.birth_date, today)
    # The covenant's municipalities are the active ones (the sync mirrors the file).
    covenant_names = {m.name for m in config.covenant.municipalities}
    # A name outside the covenant passes: a youth in the index may have moved there (core.moves).
    resolve_destination(config, request.municipality, active_names=covenant_names)


def place_signal(
    request: PlaceSignal,
    *,
    session: Session,
    config: CoreConfig,
    actor: audit.Actor,
    now: datetime | None = None,
) -> SignalOutcome:
    now = now or utcnow()
    today = local_date(now, config.tz)
    professional = acting_professional(session, actor)
    team = _signalling_team(session, professional)
    code = _covenant_code(config, request.code)
    check_reference_text(request.reference, request.identity, request.parent_bsns)
    informed, postpone_reason = check_informing(request.informed, request.postpone_reason)
    ends_on = signal_end_date(
        today,
        ends_on=request.ends_on,
        term_months=request.term_months,
        default_months=config.covenant.region.default_signal_term_months,
    )
    destination = resolve_destination(
        config, request.municipality, active_names=active_municipality_names(session)
    )
    youth = get_or_create_youth(
        session,
        config,
        request.identity,
        municipality=request.municipality,
        now=now,
        parent_bsns=request.parent_bsns,
    )
    youth_id = youth.id or 0
    duplicate = session.exec(
        select(Signal).where(
            Signal.youth_id == youth_id,
            Signal.professional_id == professional.id,
            Signal.status == SignalStatus.ACTIVE,
        )
    ).first()
    if duplicate is not None:
        raise Conflict(
            f"u heeft al een actief signaal ({duplicate.number}) voor deze jongere; "
            "verleng dat signaal in plaats van een nieuw te plaatsen"
        )
    involved_before = involved_institution_ids(session, youth_id)
    signal = Signal(
        youth_id=youth_id,
        professional_id=professional.id or 0,
        institution_id=professional.institution_id,
        team_id=team.id or 0,
        code=code,
        reference=(request.reference or "").strip() or None,
        placed_at=now,
        ends_on=ends_on,
        informed=informed,
        informed_party=informed_party_for(age_of(config, youth, today)),
        postpone_reason=postpone_reason,
        leaflet_given=request.leaflet_given,
        informed_at=now if informed == Informed.YES else None,
        channel=actor.channel,
    )
    session.add(signal)
    session.flush()
    audit.record(
        session,
        actor,
        "signal-placed",
        f"youth:{youth_id}",
        details={"signal": signal.number, "code": signal.code, "ends_on": ends_on.isoformat()},
        at=now,
    )
    move = detect_move(
        youth_id, youth.municipality, youth.moved_out_to, destination, via=signal.number
    )
    apply_moves(session, config, [move] if move else [], actor=actor, now=now)
    others = tuple(i for i in involved_before if i != professional.institution_id)
    publish(session, config, SignalPlacedEvent(at=now, signal_id=signal.id or 0, involved=others))
    _recall_archived_signals(session, config, signal, now)
    match, coordination = reconcile_youth(session, config, youth_id, now)
    return SignalOutcome(
        number=signal.number,
        ends_on=ends_on,
        informed_party=signal.informed_party,
        match_number=match.number if match else None,
        coordination_number=coordination.number if coordination else None,
    )


def _signalling_team(session: Session, professional: Professional) -> Team:
    """DOMAIN, Who may signal: a professional of a covenant institution whose team may."""
    institution = session.get(Institution, professional.institution_id)
    if institution is None or not institution.active:
        raise NotAllowed("uw instelling is niet (meer) aangesloten bij het convenant")
    team = session.get(Team, professional.team_id)
    if team is None or not team.active or not team.may_signal:
        team_name = team.name if team else "onbekend"
        raise NotAllowed(f"leden van team '{team_name}' mogen geen signalen afgeven")
    return team


def _covenant_code(config: CoreConfig, code: str) -> str:
    """The code as the covenant spells it ('Laag ' -> 'laag'); unknown codes are refused."""
    config.response_working_days(code)  # raises InvalidInput naming the known codes
    signal_code = config.covenant.signal_code(code)
    assert signal_code is not None
    return signal_code.code


def _recall_archived_signals(
    session: Session, config: CoreConfig, signal: Signal, now: datetime
) -> None:
    archived = session.exec(
        select(Signal).where(
            Signal.youth_id == signal.youth_id,
            Signal.status == SignalStatus.ARCHIVED,
            col(Signal.archive_notice_sent_at).is_(None),
            Signal.professional_id != signal.professional_id,
        )
    ).all()
    if not archived:
        return
    for old in archived:
        old.archive_notice_sent_at = now  # one time only
        session.add(old)
    publish(
        session,
        config,
        ArchivedSignalRecalledEvent(
            at=now, signal_id=signal.id or 0, archived_signal_ids=tuple(o.id or 0 for o in archived)
        ),
    )


def find_signal(session: Session, number: str) -> Signal:
    return find_numbered(
        session, Signal, number, prefix="S-", missing=f"signaal {number} bestaat niet (meer)"
    )


def acts_for_signal(
    session: Session, config: CoreConfig, signal: Signal, professional: Professional, now: datetime
) -> bool:
    """Who may act on a signal: its reporter, their stand-in today, or the institution's
    coordinator or the region's administrator (Jeugdwet 7.1.3.3)."""
    if professional.id == signal.professional_id:
        return True
    stand_in = current_stand_in(session, signal.professional_id, local_date(now, config.tz))
    if stand_in is not None and stand_in.id == professional.id:
        return True
    return may_administer(professional, signal.institution_id)


def check_owner_or_stand_in(
    session: Session, config: CoreConfig, signal: Signal, professional: Professional, now: datetime
) -> None:
    if not acts_for_signal(session, config, signal, professional, now):
        raise NotAllowed(f"alleen de melder van {signal.number} (of diens vervanger) kan dit doen")


def withdraw_signal(
    number: str,
    reason: str,
    *,
    session: Session,
    config: CoreConfig,
    actor: audit.Actor,
    now: datetime | None = None,
) -> str:
    """``onterecht``: the signal is deleted; ``risico-weg``: it is archived. Returns the number."""
    now = now or utcnow()
    reason = (reason or "").strip().lower()
    if reason not in WITHDRAW_REASONS:
        raise InvalidInput("reden moet 'onterecht' of 'risico-weg' zijn", field="reden")
    professional = acting_professional(session, actor)
    signal = find_signal(session, number)
    lock_youth(session, signal.youth_id)
    session.refresh(signal)
    check_owner_or_stand_in(session, config, signal, professional, now)
    if signal.status != SignalStatus.ACTIVE:
        raise Conflict(f"{signal.number} is niet meer actief")
    signal_number = signal.number  # an unjustified signal is gone after end_signal
    end_signal(session, config, signal, WITHDRAW_REASONS[reason], actor, now)
    return signal_number


def end_signal(
    session: Session,
    config: CoreConfig,
    signal: Signal,
    reason: str,
    actor: audit.Actor,
    now: datetime,
) -> None:
    """Archive (expired, risk gone) or delete (unjustified, or removed on a rights request:
    ``core.signal_terms.archived_on_end``) a signal, tell those concerned, and recompute the
    youth's matches and coordination."""
    youth_id = signal.youth_id
    number = signal.number
    partners = match_partner_ids(session, signal)
    involved = tuple(
        i for i in involved_institution_ids(session, youth_id) if i != signal.institution_id
    )
    event = SignalEndedEvent(
        at=now,
        signal_id=signal.id or 0,
        signal_number=number,
        reason=reason,
        youth_id=youth_id,
        professional_id=signal.professional_id,
        notify_institutions=involved,
        notify_professionals=partners,
    )
    if not archived_on_end(reason):
        session.delete(signal)  # DOMAIN, Jeugdwet 7.1.4.6: deleted, not archived
        action = "signal-deleted"
    else:
        signal.status = SignalStatus.ARCHIVED
        signal.archived_at = now
        signal.archive_reason = reason
        session.add(signal)
        action = "signal-archived"
    session.flush()
    audit.record(
        session,
        actor,
        action,
        f"youth:{youth_id}",
        details={"signal": number, "reason": reason},
        at=now,
    )
    publish(session, config, event)
    reconcile_youth(session, config, youth_id, now)


def match_partner_ids(session: Session, signal: Signal) -> tuple[int, ...]:
    """Professionals of the other active signals in the matches this signal belongs to."""
    rows = session.exec(
        select(Signal.professional_id)
        .join(MatchMember, col(MatchMember.signal_id) == Signal.id)
        .join(Match, col(Match.id) == MatchMember.match_id)
        .where(
            Match.status == MatchStatus.ACTIVE,
            col(MatchMember.left_at).is_(None),
            col(MatchMember.match_id).in_(
                select(MatchMember.match_id).where(MatchMember.signal_id == signal.id)
            ),
            Signal.id != signal.id,
            Signal.professional_id != signal.professional_id,
        )
    ).all()
    return tuple(sorted(set(rows)))


def extend_signal(
    number: str,
    months: int | None = None,
    *,
    session: Session,
    config: CoreConfig,
    actor: audit.Actor,
    now: datetime | None = None,
) -> date:
    """Extend by ``months`` (region default when omitted); never past 2 years from placing.
    Returns the new end date."""
    now = now or utcnow()
    professional = acting_professional(session, actor)
    signal = find_signal(session, number)
    lock_youth(session, signal.youth_id)
    session.refresh(signal)
    check_owner_or_stand_in(session, config, signal, professional, now)
    if signal.status != SignalStatus.ACTIVE:
        raise Conflict(f"{signal.number} is niet meer actief en kan niet worden verlengd")
    if months is not None and not 1 <= months <= 12 * MAX_SIGNAL_YEARS:
        raise InvalidInput("moet tussen 1 en 24 maanden liggen", field="maanden")
    latest = latest_end_date(local_date(signal.placed_at, config.tz))
    if signal.ends_on >= latest:
        raise Conflict(
            f"{signal.number} loopt al tot de uiterste datum ({latest:%d-%m-%Y}): een signaal "
            "leeft hoogstens 2 jaar; plaats zo nodig een nieuw signaal"
        )
    wanted = signal.ends_on + relativedelta(
        months=months or config.covenant.region.default_signal_term_months
    )
    if wanted > latest and months is not None:
        raise InvalidInput(
            f"verlengen tot {wanted:%d-%m-%Y} kan niet: een signaal loopt hoogstens 2 jaar na "
            f"plaatsing (uiterlijk {latest:%d-%m-%Y})",
            field="maanden",
        )
    new_end = min(wanted, latest)
    old_end = signal.ends_on
    signal.ends_on = new_end
    signal.expiry_warned_at = None
    session.add(signal)
    audit.record(
        session,
        actor,
        "signal-extended",
        f"youth:{signal.youth_id}",
        details={"signal": signal.number, "from": old_end.isoformat(), "to": new_end.isoformat()},
        at=now,
    )
    publish(
        session,
        config,
        SignalExtendedEvent(at=now, signal_id=signal.id or 0, professional_id=professional.id or 0),
    )
    return new_end


def institution_name(session: Session, institution_id: str) -> str:
    institution = session.get(Institution, institution_id)
    return institution.name if institution else institution_id
