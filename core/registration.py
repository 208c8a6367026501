"""Registering (ketenregistratie): an institution tells the index it is involved with a youth.

When an institution becomes involved that was not before, every institution already involved
is told (nieuwe-betrokkenheid), and the registrant learns who else is involved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session, select

from core import audit
from core.actors import acting_institution, find_professional
from core.clock import utcnow
from core.config import CoreConfig
from core.errors import InvalidInput, NotFound
from core.events import InvolvementAddedEvent
from core.identity import YouthIdentity, check_reference_text
from core.involvement import involved_institution_ids
from core.models import Institution, Registration, RegistrationStatus
from core.notifications import publish
from core.reconcile import reconcile_youth
from core.youths import find_youth, get_or_create_youth, lock_youth

MAX_REFERENCE_LENGTH = 100


@dataclass(frozen=True)
class RegisterYouth:
    identity: YouthIdentity
    municipality: str
    reference: str
    professional_email: str | None = None
    parent_bsns: tuple[str, ...] = ()
    ends_on: date | None = None


@dataclass(frozen=True)
class DeregisterYouth:
    identity: YouthIdentity


@dataclass(frozen=True)
class InvolvedInstitution:
    id: str
    name: str
    email: str


@dataclass(frozen=True)
class RegistrationOutcome:
    registration_number: str
    new_involvement: bool
    others_involved: tuple[InvolvedInstitution, ...]


def check_reference(reference: str, request: RegisterYouth) -> str:
    reference = (reference or "").strip()
    if not reference:
        raise InvalidInput(
            "ontbreekt: geef het kenmerk uit uw eigen cliëntsysteem", field="Kenmerk"
        )
    if len(reference) > MAX_REFERENCE_LENGTH:
        raise InvalidInput(f"is langer dan {MAX_REFERENCE_LENGTH} tekens", field="Kenmerk")
    check_reference_text(reference, request.identity, request.parent_bsns)
    return reference


def register_youth(
    request: RegisterYouth,
    *,
    session: Session,
    config: CoreConfig,
    actor: audit.Actor,
    now: datetime | None = None,
) -> RegistrationOutcome:
    now = now or utcnow()
    institution = acting_institution(session, actor)
    reference = check_reference(request.reference, request)
    professional_id = _responsible_professional(session, institution, request.professional_email)
    youth = get_or_create_youth(
        session,
        config,
        request.identity,
        municipality=request.municipality,
        now=now,
        parent_bsns=request.parent_bsns,
    )
    youth_id = youth.id or 0
    before = involved_institution_ids(session, youth_id)
    registration = session.exec(
        select(Registration).where(
            Registration.youth_id == youth_id, Registration.institution_id == institution.id
        )
    ).first()
    was_active = registration is not None and registration.status == RegistrationStatus.ACTIVE
    if registration is None:
        registration = Registration(
            youth_id=youth_id, institution_id=institution.id, reference=reference
        )
    registration.reference = reference
    registration.professional_id = professional_id
    registration.ends_on = request.ends_on
    if not was_active:
        registration.status = RegistrationStatus.ACTIVE
        registration.registered_at = now
        registration.ended_at = None
    session.add(registration)
    session.flush()
    audit.record(
        session,
        actor,
        "registration-updated" if was_active else "registration-created",
        f"youth:{youth_id}",
        details={"registration": registration.number},
        at=now,
    )
    new_involvement = institution.id not in before
    if new_involvement and before:
        publish(
            session,
            config,
            InvolvementAddedEvent(
                at=now,
                registration_id=registration.id or 0,
                youth_id=youth_id,
                institution_id=institution.id,
                already_involved=tuple(before),
            ),
        )
    reconcile_youth(session, config, youth_id, now)
    others = tuple(_summaries(session, [i for i in before if i != institution.id]))
    return RegistrationOutcome(registration.number, new_involvement, others)


def deregister_youth(
    request: DeregisterYouth,
    *,
    session: Session,
    config: CoreConfig,
    actor: audit.Actor,
    now: datetime | None = None,
) -> str:
    """End the institution's registration; returns its number."""
    now = now or utcnow()
    institution = acting_institution(session, actor)
    known = find_youth(session, config, request.identity)
    if known is None:  # named as the set-wise import names it: the field to look at
        raise NotFound("deze jongere staat niet in de verwijsindex", field="BSN")
    youth = lock_youth(session, known.id or 0)
    registration = session.exec(
        select(Registration).where(
            Registration.youth_id == youth.id,
            Registration.institution_id == institution.id,
            Registration.status == RegistrationStatus.ACTIVE,
        )
    ).first()
    if registration is None:
        raise NotFound(
            "uw instelling heeft geen actieve registratie voor deze jongere", field="Actie"
        )
    registration.status = RegistrationStatus.ENDED
    registration.ended_at = now
    session.add(registration)
    audit.record(
        session,
        actor,
        "registration-ended",
        f"youth:{youth.id}",
        details={"registration": registration.number},
        at=now,
    )
    reconcile_youth(session, config, youth.id or 0, now)
    return registration.number


def not_a_professional_of(email: str, institution: Institution) -> InvalidInput:
    """'Hulpverlener' must be an active professional of the registering institution."""
    return InvalidInput(
        f"{email} is geen (actieve) hulpverlener van {institution.name} in het convenant",
        field="Hulpverlener",
    )


def _responsible_professional(
    session: Session, institution: Institution, email: str | None
) -> int | None:
    if not email:
        return None
    professional = find_professional(session, email)
    if (
        professional is None
        or not professional.active
        or professional.institution_id != institution.id
    ):
        raise not_a_professional_of(email, institution)
    return professional.id


def _summaries(session: Session, institution_ids: list[str]) -> list[InvolvedInstitution]:
    result = []
    for institution_id in institution_ids:
        institution = session.get(Institution, institution_id)
        if institution is not None:
            result.append(
                InvolvedInstitution(
                    institution.id, institution.name, institution.notification_email
                )
            )
    return result
