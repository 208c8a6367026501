"""Answers to notifications (CONTRACT §4 Replies), whatever the transport: a reply mail's
keyword or a Slack button arrives here with the reply token and the sender's identity."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from core import audit
from core.actors import find_professional, institution_actor, professional_actor, sender_allowed
from core.clock import utcnow
from core.config import CoreConfig
from core.consent import IN_DUTCH, ConsentOutcome, record_consent
from core.coordination import (
    accept_coordination,
    decline_coordination,
    find_coordination,
    hand_over_coordination,
)
from core.errors import InvalidInput, NotAllowed
from core.follow_up import confirm_match_contact
from core.informing import InformingOutcome, record_informed
from core.involvement import takeover_candidates
from core.models import ConsentStatus, Institution, Professional, ReplyPurpose
from core.regie import assign, assign_options, close, municipality_actor, take_up
from core.regie_subjects import REGIE_PURPOSES, subject_reference
from core.reply_tokens import mark_used, resolve_token
from core.signals import extend_signal


@dataclass(frozen=True)
class ReplyAction:
    keyword: str  # accept | decline | hand-over | contacted | extend | informed | consent
    argument: str = ""


_REGIE_NL = "REGIE, AANWIJZEN <instelling-id> of AFGEROND <toelichting>"
ALLOWED = {
    ReplyPurpose.COORDINATION.value: {"accept", "decline", "hand-over"},
    ReplyPurpose.MATCH.value: {"contacted", "consent"},
    ReplyPurpose.SIGNAL_EXPIRY.value: {"extend"},
    ReplyPurpose.INFORMING.value: {"informed"},
    ReplyPurpose.REGIE_COORDINATION.value: {"take-up", "assign", "close"},
    ReplyPurpose.REGIE_MATCH.value: {"take-up", "assign", "close"},
}
KEYWORDS_NL = {
    ReplyPurpose.COORDINATION.value: "AKKOORD, WEIGER <reden> of OVERDRAGEN <instelling-id>",
    ReplyPurpose.MATCH.value: (
        "CONTACT GELEGD, of TOESTEMMING GEVRAAGD, TOESTEMMING GEGEVEN of TOESTEMMING GEWEIGERD"
    ),
    ReplyPurpose.SIGNAL_EXPIRY.value: "VERLENG [maanden]",
    ReplyPurpose.INFORMING.value: "GEINFORMEERD",
    ReplyPurpose.REGIE_COORDINATION.value: _REGIE_NL,
    ReplyPurpose.REGIE_MATCH.value: _REGIE_NL,
}
# Answers that record a status which may change again (consent: asked, then given): they leave
# the token usable, and may follow another answer on it (CONTACT GELEGD first).
STANDING = {"consent"}


def answer(
    token: str,
    action: ReplyAction,
    *,
    sender: str,
    channel: str,
    session: Session,
    config: CoreConfig,
    now: datetime | None = None,
) -> str:
    """Carry out the answer; returns a short Dutch confirmation. ``sender`` is the
    authenticated e-mail address (mail) or the linked professional's e-mail (Slack)."""
    now = now or utcnow()
    standing = action.keyword in STANDING
    row = resolve_token(session, token, now=now, reusable=standing)
    # The sender first: someone holding a forwarded or guessed token learns nothing about it.
    actor = (
        municipality_actor(session, subject_reference(row.purpose, row.subject_id), sender, channel)
        if row.purpose in REGIE_PURPOSES
        else _actor_for(session, row.institution_id, row.professional_id, sender, channel)
    )
    if action.keyword not in ALLOWED[row.purpose]:
        raise InvalidInput(
            f"op dit bericht kunt u antwoorden met {KEYWORDS_NL[row.purpose]}", field="antwoord"
        )
    result = _dispatch(
        row.purpose, row.subject_id, action, session=session, config=config, actor=actor, now=now
    )
    if not standing:
        mark_used(row, action.keyword, now=now)
        session.add(row)
    return result


def hand_over_options(
    token: str, *, sender: str, session: Session, now: datetime | None = None
) -> list[tuple[str, str]]:
    """The institutions (id, name) the coordination a token is about may be handed over to,
    asked before answering with OVERDRAGEN (the Slack form's choices). The token is resolved and
    its sender checked exactly as for the answer itself (:func:`answer`): unknown, used or
    expired tokens and anyone but the addressee learn nothing about the youth's involvements."""
    row = resolve_token(session, token, now=now or utcnow())
    _actor_for(session, row.institution_id, row.professional_id, sender, "slack")
    if row.purpose != ReplyPurpose.COORDINATION.value:
        raise InvalidInput(
            f"op dit bericht kunt u antwoorden met {KEYWORDS_NL[row.purpose]}", field="antwoord"
        )
    coordination = find_coordination(session, row.subject_id)
    return [
        (institution.id, institution.name)
        for institution in takeover_candidates(
            session, coordination.youth_id, coordination.institution_id
        )
    ]


def regie_assign_options(
    token: str, *, sender: str, session: Session, now: datetime | None = None
) -> list[tuple[str, str]]:
    """The institutions (id, name) the municipality may name with AANWIJZEN on the escalation a
    token is about (the Slack form's choices); token and sender checked as for the answer."""
    row = resolve_token(session, token, now=now or utcnow())
    if row.purpose not in REGIE_PURPOSES:
        _actor_for(session, row.institution_id, row.professional_id, sender, "slack")
        raise InvalidInput(
            f"op dit bericht kunt u antwoorden met {KEYWORDS_NL[row.purpose]}", field="antwoord"
        )
    reference = subject_reference(row.purpose, row.subject_id)
    municipality_actor(session, reference, sender, "slack")
    return [(i.id, i.name) for i in assign_options(session, reference)]


def _actor_for(
    session: Session,
    institution_id: str | None,
    professional_id: int | None,
    sender: str,
    channel: str,
) -> audit.Actor:
    if professional_id is not None:
        professional = session.get(Professional, professional_id)
        if professional is None or professional.email != sender.strip().lower():
            raise NotAllowed(
                "dit antwoord moet komen van de persoon aan wie het bericht is gestuurd"
            )
        return professional_actor(professional, channel)
    institution = session.get(Institution, institution_id) if institution_id else None
    if institution is None or not sender_allowed(institution, sender):
        raise NotAllowed(
            "dit antwoord moet komen van een afzender van de instelling die het bericht ontving"
        )
    person = find_professional(session, sender)
    if person is not None and person.institution_id == institution.id:
        return professional_actor(person, channel)  # so "accepted by" names the person
    return institution_actor(institution.id, channel)


def _dispatch(
    purpose: str,
    subject_id: int,
    action: ReplyAction,
    *,
    session: Session,
    config: CoreConfig,
    actor: audit.Actor,
    now: datetime,
) -> str:
    if purpose in REGIE_PURPOSES:
        return _regie(subject_reference(purpose, subject_id), action, session, config, actor, now)
    if purpose == ReplyPurpose.COORDINATION.value:
        if action.keyword == "accept":
            c = accept_coordination(
                subject_id, session=session, config=config, actor=actor, now=now
            )
            return f"U heeft de procescoördinatie {c.number} geaccepteerd."
        if action.keyword == "decline":
            c = decline_coordination(
                subject_id, action.argument, session=session, config=config, actor=actor, now=now
            )
            return f"U heeft {c.number} geweigerd; de coördinatie is doorgezet."
        c = hand_over_coordination(
            subject_id, action.argument, session=session, config=config, actor=actor, now=now
        )
        return f"{c.number} is overgedragen; de andere instelling moet nog accepteren."
    if purpose == ReplyPurpose.MATCH.value and action.keyword == "consent":
        consent = record_consent(
            f"M-{subject_id}", action.argument, session=session, config=config, actor=actor, now=now
        )
        return consent_confirmation(consent)
    if purpose == ReplyPurpose.MATCH.value:
        m = confirm_match_contact(subject_id, session=session, config=config, actor=actor, now=now)
        return f"Genoteerd: u heeft contact gelegd voor {m.number}."
    if purpose == ReplyPurpose.INFORMING.value:
        informed = record_informed(
            f"S-{subject_id}", session=session, config=config, actor=actor, now=now
        )
        return informing_confirmation(informed)
    months = None
    if action.argument.strip():
        if not action.argument.strip().isdigit():
            raise InvalidInput(
                "geef het aantal maanden als getal, bijvoorbeeld VERLENG 6", field="maanden"
            )
        months = int(action.argument.strip())
    new_end = extend_signal(
        f"S-{subject_id}", months, session=session, config=config, actor=actor, now=now
    )
    return f"Signaal S-{subject_id} is verlengd tot {new_end:%d-%m-%Y}."


def _regie(
    reference: str,
    action: ReplyAction,
    session: Session,
    config: CoreConfig,
    actor: audit.Actor,
    now: datetime,
) -> str:
    """The municipality's answer to an escalation (core.regie)."""
    if action.keyword == "take-up":
        take_up(reference, session=session, config=config, actor=actor, now=now)
        return (
            f"Vastgelegd: de gemeente voert regie over {reference}. De betrokkenen zijn "
            "ingelicht; u ontvangt een bericht waarmee u een instelling aanwijst of afrondt."
        )
    if action.keyword == "assign":
        done = assign(
            reference, action.argument, session=session, config=config, actor=actor, now=now
        )
        named = session.get(Institution, done.institution_id or "")
        return (
            f"Vastgelegd: {named.name if named else done.institution_id} is aangewezen voor "
            f"{reference}; die instelling moet de procescoördinatie nog accepteren."
        )
    close(reference, action.argument, session=session, config=config, actor=actor, now=now)
    return f"Vastgelegd: de gemeente heeft {reference} afgerond."


def informing_confirmation(outcome: InformingOutcome) -> str:
    """The answer to GEINFORMEERD, whichever way it came (mail, button, command)."""
    if outcome.already:
        return f"{outcome.number} stond al als geïnformeerd vastgelegd; er is niets veranderd."
    return f"Vastgelegd: bij {outcome.number} zijn de jongere en/of de ouders geïnformeerd."


def consent_confirmation(outcome: ConsentOutcome) -> str:
    """The answer to TOESTEMMING ..., whichever way it came."""
    word = IN_DUTCH[ConsentStatus(outcome.status)]
    if not outcome.changed:
        return (
            f"Bij {outcome.match_number} stond voor {outcome.institution} al 'toestemming "
            f"{word}'; er is niets veranderd."
        )
    return (
        f"Vastgelegd: toestemming {word} voor {outcome.institution} bij {outcome.match_number}. "
        "De andere melders horen alleen dát het zo is."
    )
