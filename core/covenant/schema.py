"""The covenant file's schema: what the region, its institutions and its rules may say.

Every model is frozen and forbids unknown keys, so a typo in the TOML file (``may_sginal``) is an
error instead of a silently ignored setting. Scalars are strict: TOML is typed, and ``"12"`` where
a number of months is expected is a mistake worth reporting, not coercing.

Two layers of checks:

* per value (types, ranges, formats), done by pydantic; the loader turns its errors into
  :class:`CovenantProblem` objects with key paths;
* across the file (uniqueness, references to municipalities, institutions and teams, the
  reachability of coordination rules), done by :mod:`core.covenant.references`, over the values
  that are valid, so the loader reports both layers in one pass. Constructing a
  :class:`Covenant` directly raises :class:`CovenantError` for those.

The messages are Dutch: an operator reads them (``verwijsindex covenant check``).

References inside the file are exact (``"Groningen"``, not ``"groningen"``); the look-up methods
on :class:`Covenant` are case-insensitive because they serve user input.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import date
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from core.covenant.problems import CovenantError
from core.covenant.references import Part, located, nested_model, reference_problems

# --- value types --------------------------------------------------------------------------------

InstitutionKind = Literal[
    "ggd",
    "wij-team",
    "sociaal-team",
    "jeugdhulp",
    "onderwijs",
    "politie",
    "veilig-thuis",
    "huisarts",
    "other",
]
INSTITUTION_KINDS: tuple[str, ...] = get_args(InstitutionKind)

Role = Literal["professional", "senior", "secretariat", "institution-admin", "admin"]
ROLES: tuple[str, ...] = get_args(Role)

# Jeugdwet 7.1.1.1: a youth is a person under 23, so ages in rules run 0..22.
MAX_YOUTH_AGE = 22
# Jeugdwet 7.1.4.5: a signal lives at most 2 years.
MAX_SIGNAL_TERM_MONTHS = 24
# Jeugdwet: an ended signal stays in the archive for 5 years, no more, no less.
ARCHIVE_YEARS = 5

_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
# RFC 5322 dot-atom local part; domain of LDH labels with at least one dot.
_LOCAL_PART = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_PHONE = re.compile(r"\+?[0-9][0-9 ()-]{5,19}")
_SLACK_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{2,}")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")


def _check_slug(value: str) -> str:
    if not _SLUG.fullmatch(value):
        raise ValueError(
            f"'{value}' is geen geldige id: gebruik kleine letters, cijfers en losse "
            "streepjes, bijvoorbeeld 'ggd-groningen'"
        )
    return value


def _is_domain(value: str) -> bool:
    labels = value.split(".")
    return (
        len(value) <= 253
        and len(labels) >= 2
        and all(_DOMAIN_LABEL.fullmatch(label) for label in labels)
        and not labels[-1].isdigit()
    )


def _check_email(value: str) -> str:
    address = value.strip().lower()
    local, at, domain = address.rpartition("@")
    # RFC 5321 4.5.3.1: 64 octets for the local part, 254 for a usable path.
    if not at or len(address) > 254 or len(local) > 64 or not _LOCAL_PART.fullmatch(local):
        raise ValueError(f"'{value}' is geen geldig e-mailadres (verwacht: naam@domein.nl)")
    if not _is_domain(domain):
        raise ValueError(f"'{value}' is geen geldig e-mailadres: ongeldig domein '{domain}'")
    return address


def _check_sender(value: str) -> str:
    """An allowed sender: a full address, or ``@domain`` for every address at that domain."""
    text = value.strip().lower()
    if text.startswith("@"):
        if not _is_domain(text[1:]):
            raise ValueError(f"'{value}' is geen geldig '@domein' (bijvoorbeeld '@ggd.example')")
        return text
    try:
        return _check_email(text)
    except ValueError:
        raise ValueError(
            f"'{value}' is geen e-mailadres en geen '@domein' "
            "(bijvoorbeeld 'koppeling@ggd.example' of '@ggd.example')"
        ) from None


def _check_not_blank(value: str) -> str:
    text = value.strip()
    if not text:
        raise ValueError("mag niet leeg zijn")
    return text


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"'{value}' is geen bekende tijdzone (verwacht een IANA-naam zoals 'Europe/Amsterdam')"
        ) from None
    return value


def _check_phone(value: str) -> str:
    text = value.strip()
    if not _PHONE.fullmatch(text):
        raise ValueError(f"'{value}' is geen telefoonnummer (bijvoorbeeld '050 123 4567')")
    return text


def _check_slack_channel(value: str) -> str:
    if not _SLACK_CHANNEL_ID.fullmatch(value):
        raise ValueError(
            f"'{value}' is geen Slack-kanaal-ID (bijvoorbeeld 'C0123ABCDEF'; "
            "neem de ID uit de kanaaldetails, niet de #naam)"
        )
    return value


def _check_password_hash(value: str) -> str:
    """Format only: ``pbkdf2_sha256$<iterations>$<salt_b64>$<hash_b64>``."""
    expected = "verwacht 'pbkdf2_sha256$<iteraties>$<salt_b64>$<hash_b64>'"
    parts = value.split("$")
    if len(parts) != 4 or parts[0] != "pbkdf2_sha256":
        raise ValueError(f"geen ondersteunde wachtwoord-hash; {expected}")
    _, iterations, salt, digest = parts
    if not iterations.isdigit() or int(iterations) < 1:
        raise ValueError(f"iteraties '{iterations}' is geen positief getal; {expected}")
    for name, part in (("salt", salt), ("hash", digest)):
        try:
            if not _BASE64.fullmatch(part):
                raise binascii.Error
            padded = part.rstrip("=") + "=" * (-len(part.rstrip("=")) % 4)
            base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        except binascii.Error:
            raise ValueError(f"de {name} is geen geldige base64; {expected}") from None
    return value


Name = Annotated[StrictStr, AfterValidator(_check_not_blank)]
Slug = Annotated[StrictStr, AfterValidator(_check_slug)]
Email = Annotated[StrictStr, AfterValidator(_check_email)]
Sender = Annotated[StrictStr, AfterValidator(_check_sender)]
Age = Annotated[StrictInt, Field(ge=0, le=MAX_YOUTH_AGE)]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- sections -----------------------------------------------------------------------------------


class Region(_Section):
    name: Name
    default_signal_term_months: Annotated[StrictInt, Field(ge=1, le=MAX_SIGNAL_TERM_MONTHS)] = 12
    archive_years: StrictInt = ARCHIVE_YEARS
    reminder_lead_days: Annotated[StrictInt, Field(ge=1, le=60)] = 7
    # Mail that was not understood (or was automatic) is kept, sealed, this long for an
    # administrator to look at; then its content is erased (it may carry BSNs).
    kept_mail_days: Annotated[StrictInt, Field(ge=1, le=365)] = 30
    timezone: Annotated[StrictStr, AfterValidator(_check_timezone)] = "Europe/Amsterdam"
    # The region's administrator: gets the logboek's daily anchor (core.audit) by mail, to keep
    # outside the database. Unset: no mail; the operator runs ``audit anchor`` instead.
    admin_email: Email | None = None
    # Days the region's institutions are closed besides the statutory holidays (a collective
    # closing day): deadlines in working days skip them (core.working_days).
    closing_days: tuple[date, ...] = ()

    @field_validator("archive_years")
    @classmethod
    def _archive_years_is_the_law(cls, value: int) -> int:
        if value != ARCHIVE_YEARS:
            raise ValueError(
                f"moet {ARCHIVE_YEARS} zijn: de Jeugdwet bewaart beëindigde signalen precies "
                f"{ARCHIVE_YEARS} jaar in het archief (gevonden: {value})"
            )
        return value


class SignalCode(_Section):
    code: Slug
    label: Name
    response_working_days: Annotated[StrictInt, Field(ge=1, le=30)]


class CovenantMunicipality(_Section):
    name: Name
    contact_name: Name | None = None
    contact_email: Email  # escalations (Jeugdwet 7.1.3.2) go here


class CovenantTeam(_Section):
    name: Name
    may_signal: StrictBool = False


class CovenantInstitution(_Section):
    id: Slug
    name: Name
    kind: InstitutionKind
    notification_email: Email
    allowed_senders: Annotated[tuple[Sender, ...], Field(min_length=1)]
    municipalities: Annotated[tuple[Name, ...], Field(min_length=1)]
    may_coordinate: StrictBool = False
    slack_channel: Annotated[StrictStr, AfterValidator(_check_slack_channel)] | None = None
    smtp_auth_hash: Annotated[StrictStr, AfterValidator(_check_password_hash)] | None = None
    teams: Annotated[tuple[CovenantTeam, ...], Field(min_length=1)]

    def team(self, name: str) -> CovenantTeam | None:
        wanted = name.strip().casefold()
        return next((t for t in self.teams if t.name.casefold() == wanted), None)

    def serves(self, municipality: str) -> bool:
        wanted = municipality.strip().casefold()
        return any(m.casefold() == wanted for m in self.municipalities)


class CovenantProfessional(_Section):
    email: Email
    name: Name
    phone: Annotated[StrictStr, AfterValidator(_check_phone)] | None = None
    institution: Slug
    team: Name
    roles: Annotated[tuple[Role, ...], Field(min_length=1)] = ("professional",)

    def has_role(self, *roles: str) -> bool:
        return any(role in self.roles for role in roles)


class CoordinationRule(_Section):
    """One *beslisregel*: if every condition holds, ``assign_kind`` coordinates."""

    name: Slug
    description: StrictStr | None = None
    municipalities: Annotated[tuple[Name, ...], Field(min_length=1)] | None = None
    min_age: Age | None = None
    max_age: Age | None = None
    requires_kinds: Annotated[tuple[InstitutionKind, ...], Field(min_length=1)] | None = None
    assign_kind: InstitutionKind
    # One family, one coordinator: a youth this rule picks joins a sibling's coordination.
    # ``false`` makes coordination per child for those youths (a region's own choice).
    per_family: StrictBool = True

    @field_validator("max_age")
    @classmethod
    def _age_range_in_order(cls, value: int | None, info: ValidationInfo) -> int | None:
        min_age = info.data.get("min_age")
        if value is not None and min_age is not None and value < min_age:
            raise ValueError(f"max_age {value} is lager dan min_age {min_age}")
        return value

    @property
    def unconditional(self) -> bool:
        """True for the fallback rule: it matches every youth."""
        return (
            self.municipalities is None
            and self.min_age is None
            and self.max_age is None
            and self.requires_kinds is None
        )


# --- the covenant -------------------------------------------------------------------------------


class Covenant(_Section):
    region: Region
    signal_codes: Annotated[tuple[SignalCode, ...], Field(min_length=1)]
    municipalities: Annotated[tuple[CovenantMunicipality, ...], Field(min_length=1)]
    institutions: Annotated[tuple[CovenantInstitution, ...], Field(min_length=1)]
    professionals: tuple[CovenantProfessional, ...] = ()
    coordination_rules: Annotated[tuple[CoordinationRule, ...], Field(min_length=1)]

    _by_institution: dict[str, CovenantInstitution] = PrivateAttr(default_factory=dict)
    _by_code: dict[str, SignalCode] = PrivateAttr(default_factory=dict)
    _by_municipality: dict[str, CovenantMunicipality] = PrivateAttr(default_factory=dict)
    _by_email: dict[str, CovenantProfessional] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Covenant:
        file = Part.of_model(self)
        problems = reference_problems(file)
        if problems:
            raise CovenantError(located(problems, file))
        return self

    def model_post_init(self, context: Any, /) -> None:
        self._by_institution.update((i.id, i) for i in self.institutions)
        self._by_code.update((c.code, c) for c in self.signal_codes)
        self._by_municipality.update((m.name.casefold(), m) for m in self.municipalities)
        self._by_email.update((p.email, p) for p in self.professionals)

    @property
    def default_term_months(self) -> int:
        return self.region.default_signal_term_months

    def institution(self, institution_id: str) -> CovenantInstitution | None:
        return self._by_institution.get(institution_id.strip().lower())

    def signal_code(self, code: str) -> SignalCode | None:
        return self._by_code.get(code.strip().lower())

    def municipality(self, name: str) -> CovenantMunicipality | None:
        return self._by_municipality.get(name.strip().casefold())

    def professional(self, email: str) -> CovenantProfessional | None:
        return self._by_email.get(email.strip().lower())

    def institutions_of_kind(self, kind: str) -> tuple[CovenantInstitution, ...]:
        return tuple(i for i in self.institutions if i.kind == kind)

    def professionals_of(self, institution_id: str) -> tuple[CovenantProfessional, ...]:
        return tuple(p for p in self.professionals if p.institution == institution_id)


def model_for_section(keys: tuple[str, ...]) -> type[BaseModel] | None:
    """The model behind a key path without indexes, e.g. ("institutions", "teams") → team."""
    model: type[BaseModel] = Covenant
    for key in keys:
        field = model.model_fields.get(key)
        if field is None:
            return None
        nested = nested_model(field.annotation)
        if nested is None:
            return None
        model = nested
    return model
