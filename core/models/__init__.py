"""All tables, importable from one place (Alembic's metadata sees every one)."""

from sqlmodel import SQLModel

import core.models._metadata  # noqa: F401  (names constraints; must run before any table)

# isort: split

from core.models.absence import Absence, TransferRequest, TransferStatus
from core.models.audit import AuditEvent, AuditHead
from core.models.care import (
    ArchiveReason,
    Informed,
    Registration,
    RegistrationStatus,
    Signal,
    SignalStatus,
)
from core.models.consent import ConsentStatus, MatchConsent
from core.models.coordination import (
    OPEN_STATUSES,
    Coordination,
    CoordinationMember,
    CoordinationStatus,
)
from core.models.installation import Installation
from core.models.matching import Match, MatchKind, MatchMember, MatchStatus
from core.models.messaging import (
    Channel,
    ImapCursor,
    InboundMessage,
    InboundStatus,
    OutboxMessage,
    OutboxStatus,
    ReplyPurpose,
    ReplyToken,
)
from core.models.organisation import Institution, Municipality, Professional, Role, Team
from core.models.regie import MunicipalityAction, MunicipalityActionKind
from core.models.rights import (
    RequesterRole,
    RightsRequest,
    RightsRequestKind,
    RightsRequestStatus,
)
from core.models.slack import SlackInstallation, SlackLinkCode, SlackOAuthState, SlackThread
from core.models.succession import CoordinationSuccession, SuccessionStatus
from core.models.youth import Youth, YouthParent

metadata = SQLModel.metadata

__all__ = [
    "OPEN_STATUSES",
    "Absence",
    "ArchiveReason",
    "AuditEvent",
    "AuditHead",
    "Channel",
    "ConsentStatus",
    "Coordination",
    "CoordinationMember",
    "CoordinationStatus",
    "CoordinationSuccession",
    "ImapCursor",
    "InboundMessage",
    "InboundStatus",
    "Informed",
    "Installation",
    "Institution",
    "Match",
    "MatchConsent",
    "MatchKind",
    "MatchMember",
    "MatchStatus",
    "Municipality",
    "MunicipalityAction",
    "MunicipalityActionKind",
    "OutboxMessage",
    "OutboxStatus",
    "Professional",
    "Registration",
    "RegistrationStatus",
    "ReplyPurpose",
    "ReplyToken",
    "RequesterRole",
    "RightsRequest",
    "RightsRequestKind",
    "RightsRequestStatus",
    "Role",
    "Signal",
    "SignalStatus",
    "SlackInstallation",
    "SlackLinkCode",
    "SlackOAuthState",
    "SlackThread",
    "SuccessionStatus",
    "Team",
    "TransferRequest",
    "TransferStatus",
    "Youth",
    "YouthParent",
    "metadata",
]
