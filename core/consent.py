"""Consent after a match (seed 003; DOMAIN: Informing): before content is shared, each matched
institution asks the youth or parents for permission to exchange information.

Recorded per match and institution — asked, given or refused, with the moment and who recorded
it — by the party itself: a professional whose signal is in the match (or their stand-in, or
the institution's coordinator, :func:`core.signals.acts_for_signal`). It arrives as a reply to
the match mail (``TOESTEMMING GEGEVEN``), a Slack button, ``/verwijsindex toestemming M-3
gegeven`` or ``verwijsindex match consent``, all through :func:`record_consent`. The matched
partners are told the fact (``match-toestemming``), never any content: the system carries none.
``MatchConsent`` holds the current status; the logboek holds every change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from core import audit
from core.actors import acting_professional
from core.clock import as_utc, utcnow
from core.config import CoreConfig
from core.errors import Conflict, InvalidInput, NotAllowed
from core.events import MatchConsentRecordedEvent
from core.match_members import match_members
from core.models import ConsentStatus, Institution, Match, MatchConsent, MatchStatus, Professional
from core.notifications import publish
from core.numbers import find_numbered
from core.signals import acts_for_signal

# The words people use, Dutch and English (CONTRACT §4 Replies, §5 Slack, §6 CLI).
CONSENT_WORDS = {
    "gevraagd": ConsentStatus.ASKED,
    "gegeven": ConsentStatus.GIVEN,
    "geweigerd": ConsentStatus.REFUSED,
    "asked": ConsentStatus.ASKED,
    "given": ConsentStatus.GIVEN,
    "refused": ConsentStatus.REFUSED,
}
IN_DUTCH = {
    ConsentStatus.ASKED: "gevraagd",
    ConsentStatus.GIVEN: "gegeven",
    ConsentStatus.REFUSED: "geweigerd",
}


@dataclass(frozen=True)
class ConsentOutcome:
    match_number: str
    institution: str  # the institution's name
    status: str  # asked | given | refused
    recorded_at: datetime
    changed: bool  # False: this status was already recorded


@dataclass(frozen=True)
class ConsentItem:
    """One institution's consent in a match, as the match views show it."""

    institution_id: str
    institution: str
    status: str  # asked | given | refused
    status_nl: str  # gevraagd | gegeven | geweigerd
    recorded_at: datetime


def parse_consent_status(word: str) -> ConsentStatus:
    """``gegeven``, ``Given.`` -> :attr:`ConsentStatus.GIVEN`; anything else is refused."""
    text = " ".join((word or "").split()).strip(" .!*").casefold()
    status = CONSENT_WORDS.get(text)
    if status is None:
        raise InvalidInput(
            "geef aan of toestemming is gevraagd, gegeven of geweigerd "
            "(bijvoorbeeld 'TOESTEMMING GEGEVEN')",
            field="toestemming",
        )
    return status


def find_match(session: Session, number: str) -> Match:
    return find_numbered(
        session, Match, number, prefix="M-", missing=f"match {number} bestaat niet (meer)"
    )


def record_consent(
    number: str,
    status: str,
    *,
    session: Session,
    config: CoreConfig,
    actor: audit.Actor,
    now: datetime | None = None,
) -> ConsentOutcome:
    """Record that the acting professional's institution asked for, got or was refused consent
    for match ``number``. The same status again changes nothing and tells nobody."""
    now = now or utcnow()
    wanted = parse_consent_status(status)
    me = acting_professional(session, actor)
    match = find_match(session, number)
    # One writer per match at a time: the (match, institution) row is created only once.
    session.exec(select(Match).where(Match.id == match.id).with_for_update()).one()
    session.refresh(match)
    if match.status != MatchStatus.ACTIVE:
        raise Conflict(f"{match.number} is beëindigd; toestemming vastleggen kan niet meer")
    institution_id = _party_of(session, config, match, me, now)
    institution = session.get(Institution, institution_id)
    name = institution.name if institution else institution_id
    current = session.exec(
        select(MatchConsent).where(
            MatchConsent.match_id == match.id, MatchConsent.institution_id == institution_id
        )
    ).first()
    if current is not None and current.status == wanted:
        return ConsentOutcome(match.number, name, wanted.value, as_utc(current.recorded_at), False)
    before = current.status if current is not None else None
    if current is None:
        current = MatchConsent(match_id=match.id or 0, institution_id=institution_id, status="")
    current.status = wanted.value
    current.recorded_at = now
    current.recorded_by_professional_id = me.id
    session.add(current)
    session.flush()
    audit.record(
        session,
        actor,
        "match-consent-recorded",
        f"youth:{match.youth_id}" if match.youth_id else f"match:{match.id}",
        details={
            "match": match.number,
            "institution": institution_id,
            "status": wanted.value,
            "before": before,
        },
        at=now,
    )
    publish(
        session,
        config,
        MatchConsentRecordedEvent(
            at=now, match_id=match.id or 0, institution_id=institution_id, status=wanted.value
        ),
    )
    return ConsentOutcome(match.number, name, wanted.value, now, True)


def _party_of(
    session: Session, config: CoreConfig, match: Match, me: Professional, now: datetime
) -> str:
    """The institution ``me`` records consent for: that of a signal in the match that ``me``
    may act on (their own, a colleague's they stand in for, or one of their institution)."""
    parties = {
        signal.institution_id
        for _, signal in match_members(session, match.id or 0)
        if acts_for_signal(session, config, signal, me, now)
    }
    if not parties:
        raise NotAllowed(f"u bent geen deelnemer aan {match.number}")
    if me.institution_id in parties:
        return me.institution_id
    if len(parties) == 1:
        return parties.pop()
    raise NotAllowed(
        f"u handelt in {match.number} voor meer dan één instelling; laat een hulpverlener van "
        "de instelling zelf de toestemming vastleggen"
    )


def consents_of(session: Session, match_ids: Iterable[int]) -> dict[int, list[ConsentItem]]:
    """Each match's consents, by institution name (for ``/verwijsindex mijn`` and App Home)."""
    wanted = sorted(set(match_ids))
    if not wanted:
        return {}
    rows = session.exec(
        select(MatchConsent, Institution)
        .join(Institution, col(Institution.id) == MatchConsent.institution_id)
        .where(col(MatchConsent.match_id).in_(wanted))
        .order_by(col(MatchConsent.match_id), col(Institution.name))
    ).all()
    found: dict[int, list[ConsentItem]] = {}
    for consent, institution in rows:
        status = ConsentStatus(consent.status)
        found.setdefault(consent.match_id, []).append(
            ConsentItem(
                institution_id=institution.id,
                institution=institution.name,
                status=status.value,
                status_nl=IN_DUTCH[status],
                recorded_at=as_utc(consent.recorded_at),
            )
        )
    return found
