"""Registering (ketenregistratie): an institution tells the index it is involved with a youth.

When an institution becomes involved that was not before, every institution already involved
is told (nieuwe-betrokkenheid), and the registrant learns who else is involved. One command is
a plan of one: the rule is :mod:`core.registration_plan`, applied by
:mod:`core.registration_apply`, as for a CSV batch of thousands (:mod:`core.bulk_import`).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from core import audit
from core.actors import acting_institution
from core.clock import as_utc, local_date, utcnow
from core.config import CoreConfig
from core.registration_apply import Applied, apply_checked, load_context
from core.registration_plan import check_request
from core.registration_requests import (
    MAX_REFERENCE_LENGTH,
    DeregisterYouth,
    InvolvedInstitution,
    RegisterYouth,
    RegistrationOutcome,
    check_reference,
    not_a_professional_of,
)

__all__ = [
    "MAX_REFERENCE_LENGTH",
    "DeregisterYouth",
    "InvolvedInstitution",
    "RegisterYouth",
    "RegistrationOutcome",
    "check_reference",
    "deregister_youth",
    "not_a_professional_of",
    "register_youth",
]


def register_youth(
    request: RegisterYouth,
    *,
    session: Session,
    config: CoreConfig,
    actor: audit.Actor,
    now: datetime | None = None,
) -> RegistrationOutcome:
    applied = _apply_one(request, session, config, actor, now)
    [outcome] = applied.plan.outcomes
    return RegistrationOutcome(
        applied.registration_number(outcome.key),
        outcome.new_involvement,
        applied.others_involved(outcome),
    )


def deregister_youth(
    request: DeregisterYouth,
    *,
    session: Session,
    config: CoreConfig,
    actor: audit.Actor,
    now: datetime | None = None,
) -> str:
    """End the institution's registration; returns its number."""
    applied = _apply_one(request, session, config, actor, now)
    [outcome] = applied.plan.outcomes
    return applied.registration_number(outcome.key)


def _apply_one(
    request: RegisterYouth | DeregisterYouth,
    session: Session,
    config: CoreConfig,
    actor: audit.Actor,
    now: datetime | None,
) -> Applied:
    """A plan of one; a refusal is raised as the :class:`DomainError` it is."""
    moment = as_utc(now) if now is not None else utcnow()
    institution = acting_institution(session, actor)
    email = request.professional_email if isinstance(request, RegisterYouth) else None
    context = load_context(session, config, institution, professional_emails=[email])
    checked = check_request(0, request, context, local_date(moment, config.tz))
    return apply_checked(session, context, [checked], actor=actor, now=moment, strict=True)
