"""Who the covenant says may send: its institutions' sender addresses and its professionals, read
once per process and kept until the covenant is synced again.

The SMTP listener asks this at every RCPT (``mail_gateway.senders``); loading every institution
through the ORM there cost more than the rest of the check. Only the covenant sync
(:func:`core.covenant.sync.sync_covenant`) changes these rows, so the sync is the one place
that forgets the directory (:func:`forget_sender_directories`); the next question loads it again.
A sync by another process (a console command run with a changed covenant file) reaches a
running ``serve`` at its restart, as the rest of its covenant does (SMTP AUTH, the coordination
rules). The check at RCPT is the cheap early one: the core checks the acting institution or
professional again when it carries out the command.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.actors import institution_for_sender, sender_allowed
from core.models import Institution, Professional, Team


@dataclass(frozen=True)
class SendingInstitution:
    """What the sender check needs of an institution (``core.actors.sender_allowed`` reads
    ``allowed_senders`` and ``notification_email``)."""

    id: str
    active: bool
    allowed_senders: tuple[str, ...]
    notification_email: str


@dataclass(frozen=True)
class SendingProfessional:
    id: int
    email: str
    institution_id: str
    active: bool
    may_signal: bool  # their team's


@dataclass(frozen=True)
class SenderDirectory:
    institutions: Mapping[str, SendingInstitution]
    professionals: Mapping[str, SendingProfessional]  # by lower-case e-mail
    professionals_by_id: Mapping[int, SendingProfessional]

    def institution(self, institution_id: str | None) -> SendingInstitution | None:
        return self.institutions.get(institution_id) if institution_id else None

    def professional(self, email: str) -> SendingProfessional | None:
        return self.professionals.get(email.strip().lower())

    def institution_for_sender(self, address: str) -> SendingInstitution | None:
        """The active institution that allows ``address`` (``core.actors``' rule)."""
        active = [i for i in self.institutions.values() if i.active]
        return institution_for_sender(active, address)

    def allows(self, institution: SendingInstitution, address: str) -> bool:
        return sender_allowed(institution, address)


def load_sender_directory(session: Session) -> SenderDirectory:
    institutions = {
        i.id: SendingInstitution(
            id=i.id,
            active=i.active,
            allowed_senders=tuple(i.allowed_senders),
            notification_email=i.notification_email,
        )
        for i in session.exec(select(Institution).order_by(col(Institution.id))).all()
    }
    professionals: dict[str, SendingProfessional] = {}
    rows = session.exec(
        select(Professional, Team).join(Team, col(Team.id) == Professional.team_id)
    ).all()
    for professional, team in rows:
        assert professional.id is not None
        professionals[professional.email.lower()] = SendingProfessional(
            id=professional.id,
            email=professional.email.lower(),
            institution_id=professional.institution_id,
            active=professional.active,
            may_signal=team.may_signal,
        )
    return SenderDirectory(
        institutions=MappingProxyType(institutions),
        professionals=MappingProxyType(professionals),
        professionals_by_id=MappingProxyType({p.id: p for p in professionals.values()}),
    )


# One directory per engine (per database) in this process; tests make many engines.
_directories: weakref.WeakKeyDictionary[Engine, SenderDirectory] = weakref.WeakKeyDictionary()
_lock = threading.Lock()
_generation = 0  # counts syncs: a directory loaded before one is not kept after it


def cached_sender_directory(engine: Engine) -> SenderDirectory | None:
    """The directory if it is loaded: no database needed."""
    return _directories.get(engine)


def sender_directory(engine: Engine) -> SenderDirectory:
    """The directory of ``engine``'s database, loaded on first use."""
    found = _directories.get(engine)
    if found is not None:
        return found
    generation = _generation
    with Session(engine) as session:
        loaded = load_sender_directory(session)
    with _lock:
        if generation != _generation:
            return loaded  # a sync came in between: good for this question only
        return _directories.setdefault(engine, loaded)


def forget_sender_directories() -> None:
    """The covenant was synced: load the senders afresh when next asked."""
    global _generation
    with _lock:
        _generation += 1
        _directories.clear()
