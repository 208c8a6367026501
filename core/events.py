"""Domain events: what happened, named ``<Noun><Past>Event``.

Commands publish events in their transaction; the subscribers in ``core.notifications`` turn
them into outbox rows in that same transaction (ARCHITECTURE: step 3). Events carry ids only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Event:
    at: datetime


@dataclass(frozen=True)
class SignalPlacedEvent(Event):
    signal_id: int
    involved: tuple[str, ...]


@dataclass(frozen=True)
class ArchivedSignalRecalledEvent(Event):
    """A new signal on a youth with archived signals: a one-time notice (DOMAIN: Lifetime)."""

    signal_id: int
    archived_signal_ids: tuple[int, ...]


@dataclass(frozen=True)
class SignalEndedEvent(Event):
    signal_id: int
    signal_number: str
    reason: str  # expired | risk-gone | unjustified
    youth_id: int
    professional_id: int
    notify_institutions: tuple[str, ...]
    notify_professionals: tuple[int, ...]  # match partners


@dataclass(frozen=True)
class SignalExpiringEvent(Event):
    signal_id: int


@dataclass(frozen=True)
class SignalExtendedEvent(Event):
    """The reporter (or their stand-in) extended a signal: its expiry warning is answered."""

    signal_id: int
    professional_id: int  # who extended it


@dataclass(frozen=True)
class SignalInformedEvent(Event):
    """The youth or parents of a signal are now recorded as informed (core.informing)."""

    signal_id: int
    professional_id: int  # who recorded it


@dataclass(frozen=True)
class MatchMembersJoinedEvent(Event):
    """A match was formed (``formed``) or signals joined an existing one."""

    match_id: int
    joined_signal_ids: tuple[int, ...]
    formed: bool


@dataclass(frozen=True)
class InformingReminderDueEvent(Event):
    """The youth or parents were not yet informed of a signal: remind its reporter, once."""

    signal_id: int
    informed_party: str  # who must be informed at the youth's age today


@dataclass(frozen=True)
class MatchFollowUpDueEvent(Event):
    match_id: int


@dataclass(frozen=True)
class MatchContactConfirmedEvent(Event):
    """CONTACT GELEGD: a professional (or their stand-in) made contact for their signals in a
    match (core.follow_up)."""

    match_id: int
    professional_id: int  # who confirmed
    for_professional_ids: tuple[int, ...]  # whose signals' members are now confirmed


@dataclass(frozen=True)
class MatchConsentRecordedEvent(Event):
    """An institution in a match recorded consent asked, given or refused (the fact only)."""

    match_id: int
    institution_id: str
    status: str


@dataclass(frozen=True)
class MatchEscalatedEvent(Event):
    match_id: int


@dataclass(frozen=True)
class CoordinationAssignedEvent(Event):
    coordination_id: int
    handed_over_from: str | None = None
    round: int = 0  # increases with each decline / hand-over: a new notification each time


@dataclass(frozen=True)
class CoordinationReminderDueEvent(Event):
    coordination_id: int
    round: int


@dataclass(frozen=True)
class CoordinationEscalatedEvent(Event):
    coordination_id: int
    reason: str  # deadline | all-declined
    round: int


@dataclass(frozen=True)
class CoordinationAcceptedEvent(Event):
    coordination_id: int


@dataclass(frozen=True)
class CoordinationSuccessorDeclinedEvent(Event):
    """The institution proposed to take a coordination over after a move declined
    (core.coordination_succession)."""

    coordination_id: int
    succession_id: int


@dataclass(frozen=True)
class MunicipalityActedEvent(Event):
    """The municipality's contact took up, assigned or closed an escalation (core.regie)."""

    action_id: int  # MunicipalityAction


@dataclass(frozen=True)
class AbsenceDeclaredEvent(Event):
    absence_id: int


@dataclass(frozen=True)
class TransferRequestedEvent(Event):
    transfer_id: int


@dataclass(frozen=True)
class TransferExecutedEvent(Event):
    transfer_id: int
    signal_ids: tuple[int, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class TransferRejectedEvent(Event):
    """An institution-admin or admin turned a requested transfer down (core.transfer): the
    request is answered, nothing moves."""

    transfer_id: int
