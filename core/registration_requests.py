"""What a registration request is (aanmelden, afmelden), what it answers, and the refusals of
its fields that need no database: the inputs and outputs of the one registration rule
(:mod:`core.registration_plan`), below it so that the planner and the edges share them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from core.errors import InvalidInput
from core.identity import YouthIdentity, check_reference_text
from core.models import Institution

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


def not_a_professional_of(email: str, institution: Institution) -> InvalidInput:
    """'Hulpverlener' must be an active professional of the registering institution."""
    return InvalidInput(
        f"{email} is geen (actieve) hulpverlener van {institution.name} in het convenant",
        field="Hulpverlener",
    )
