"""Accept durably (ARCHITECTURE, step 1): one function that SMTP and IMAP both call, which
commits the sealed message before the sender is told it arrived.

The SMTP listener stores through :class:`GroupIntake`: the messages of SMTP transactions whose
DATA ends while an earlier group is being stored are stored together, in one database
transaction (group commit, as databases do with their own log), and each is answered only once
that transaction has committed. A commit, not the message, is what costs (a lock and a sync to
disk), so under load many messages share one; an idle listener stores a lone message at once,
waiting for no one. When a group's transaction fails (say, one of its messages was stored by a
simultaneous retry), its messages are stored again one by one, so one message never costs
another its ``250``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from enum import StrEnum
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core.clock import utcnow
from core.models import InboundMessage, InboundStatus
from core.wake import Wake, announce
from mail_gateway.authentication import Verdict
from mail_gateway.mailboxes import Destination
from mail_gateway.vault import MessageVault

log = logging.getLogger(__name__)

MAX_MESSAGE_ID = 900
# Messages stored in one transaction at most (a group of SMTP transactions answered together).
GROUP_LIMIT = 50


class Intake(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"  # the same sender's Message-ID to the same mailbox: a retry, once


@dataclass(frozen=True)
class Envelope:
    transport: str  # smtp | imap
    mail_from: str
    rcpt_to: str
    destination: Destination
    institution_id: str | None = None
    authenticated_as: str | None = None


def message_id_of(raw: bytes) -> str:
    """The Message-ID header, or one derived from the bytes: a sender that sets none and
    retries after a 451 sends the same bytes, so the retry is still recognised."""
    try:
        headers = BytesHeaderParser(policy=compat32).parsebytes(raw[:65536], headersonly=True)
        value = str(headers.get("Message-ID", "") or "").strip()
    except Exception:  # any header the parser chokes on: fall back to the digest
        value = ""
    value = " ".join(value.split())[:MAX_MESSAGE_ID]
    if value:
        return value
    return f"<sha256-{hashlib.sha256(raw).hexdigest()}@zonder-message-id>"


def sender_identity(
    institution_id: str | None, authenticated_as: str | None, mail_from: str
) -> str:
    """Whose Message-IDs a message's is among: the institution the sender was found to speak
    for, else the SMTP AUTH login, else (postmaster, a null sender) the envelope address.

    A Message-ID is unique only as far as its sender makes it so (RFC 5322 §3.6.4), and anyone
    can write anyone's. Keyed on the Message-ID alone, one institution could send first with
    another's Message-ID (seen in a Cc, or guessed) and make the real mail vanish as its
    "duplicate". Keyed with the sender, only the sender's own retry is one.
    """
    if institution_id:
        return f"institution:{institution_id}"
    if authenticated_as:
        return f"login:{authenticated_as}"
    return f"sender:{mail_from.strip().lower()[:320]}"


def dedupe_key(message_id: str, destination: Destination, sender: str) -> str:
    """One message per sender, Message-ID and mailbox (``sender`` from :func:`sender_identity`).
    A retry — after a 451, or an IMAP message taken again — has the same three, on SMTP and IMAP
    alike: the institution is found from the same address either way."""
    mailbox = f"{destination.mailbox}+{destination.token or ''}"
    return hashlib.sha256(f"{sender}\n{message_id}\n{mailbox}".encode()).hexdigest()


def _key_before_senders(message_id: str, destination: Destination) -> str:
    """The key of rows stored before the sender was part of it (Message-ID and mailbox only).

    Those rows keep it: every input of the new key is stored on the row, but rewriting keys is
    a migration for nothing, since the two kinds never collide (a different number of lines is
    hashed, and a Message-ID is one line). A message stored under the old key is still
    recognised when it comes again — a retry that straddles the upgrade — but only when the
    stored row's own sender is this one, so an old row cannot be used to squat either."""
    mailbox = f"{destination.mailbox}+{destination.token or ''}"
    return hashlib.sha256(f"{message_id}\n{mailbox}".encode()).hexdigest()


@dataclass(frozen=True)
class Arrived:
    """A message made ready to store, before any transaction: its keys and its sealed bytes
    (parsing the Message-ID and sealing cost time that no writer lock should be held for)."""

    key: str
    key_before_senders: str
    sender: str
    message_id: str
    values: dict[str, Any]  # the row's columns, for one insert of the whole group


_INBOUND: Table = InboundMessage.__table__  # type: ignore[attr-defined]
_STORE = insert(_INBOUND).returning(_INBOUND.c.dedupe_key, _INBOUND.c.id)


def prepare_inbound(vault: MessageVault, raw: bytes, envelope: Envelope) -> Arrived:
    message_id = message_id_of(raw)
    sender = sender_identity(envelope.institution_id, envelope.authenticated_as, envelope.mail_from)
    key = dedupe_key(message_id, envelope.destination, sender)
    values = {
        "dedupe_key": key,
        "message_id": message_id,
        "transport": envelope.transport,
        "mail_from": envelope.mail_from[:320],
        "rcpt_to": envelope.rcpt_to[:320],
        "mailbox": envelope.destination.mailbox.value,
        "institution_id": envelope.institution_id,
        "authenticated_as": envelope.authenticated_as,
        "size": len(raw),
        "raw": vault.seal(raw),
        "received_at": utcnow(),
        "status": InboundStatus.RECEIVED.value,
        "attempts": 0,
    }
    before = _key_before_senders(message_id, envelope.destination)
    return Arrived(key, before, sender, message_id, values)


def store_inbound(session: Session, arrived: Sequence[Arrived]) -> list[tuple[Intake, int]]:
    """Add the messages in ``session``'s transaction (the caller commits), looked up together;
    a duplicate (stored before, or earlier in ``arrived``) is reported with the id of the row
    stored first. Core statements, not the ORM: this runs for every mail, on the listener's one
    thread, and a row is never read back here."""
    connection = session.connection()
    keys = {item.key for item in arrived} | {item.key_before_senders for item in arrived}
    found = {
        row.dedupe_key: row
        for row in connection.execute(
            sa_select(
                _INBOUND.c.dedupe_key,
                _INBOUND.c.id,
                _INBOUND.c.institution_id,
                _INBOUND.c.authenticated_as,
                _INBOUND.c.mail_from,
            ).where(_INBOUND.c.dedupe_key.in_(keys))
        )
    }
    stored: dict[str, int] = {}
    new: dict[str, Arrived] = {}
    for item in arrived:
        if item.key in found:
            stored[item.key] = found[item.key].id
        elif item.key not in new:
            before = found.get(item.key_before_senders)
            if before is not None and item.sender == sender_identity(
                before.institution_id, before.authenticated_as, before.mail_from
            ):
                stored[item.key] = before.id
            else:
                new[item.key] = item
    if new:
        stored.update(connection.execute(_STORE, [item.values for item in new.values()]).all())
        announce(session, Wake.INBOUND)  # processing workers in every process, once this commits
    outcomes: list[tuple[Intake, int]] = []
    for item in arrived:
        if new.pop(item.key, None) is item:
            outcomes.append((Intake.STORED, stored[item.key]))
        else:
            outcomes.append((Intake.DUPLICATE, stored[item.key]))
    return outcomes


def accept_message(engine: Engine, vault: MessageVault, raw: bytes, envelope: Envelope) -> Intake:
    """Store and commit; a race with a simultaneous retry of the same message counts as a
    duplicate. Raises on a database fault (the SMTP side answers 451)."""
    arrived = prepare_inbound(vault, raw, envelope)
    try:
        with Session(engine) as session:
            [(outcome, row_id)] = store_inbound(session, [arrived])
            session.commit()
    except IntegrityError:
        return Intake.DUPLICATE
    _log_intake(row_id, outcome, raw, envelope)
    return outcome


def accept_messages(
    engine: Engine, vault: MessageVault, arrivals: Sequence[tuple[bytes, Envelope]]
) -> list[Intake | Exception]:
    """Store and commit several messages in one transaction; if that fails, each on its own
    (:func:`accept_message`). Each message's outcome, or the exception that kept it out."""
    if len(arrivals) > 1:
        try:
            arrived = [prepare_inbound(vault, raw, envelope) for raw, envelope in arrivals]
            with Session(engine) as session:
                stored = store_inbound(session, arrived)
                session.commit()
        except Exception as exc:
            log.warning(
                "storing %d messages together failed (%s); storing them one by one",
                len(arrivals),
                type(exc).__name__,
            )
        else:
            for (outcome, row_id), (raw, envelope) in zip(stored, arrivals, strict=True):
                _log_intake(row_id, outcome, raw, envelope)
            return [outcome for outcome, _ in stored]
    outcomes: list[Intake | Exception] = []
    for raw, envelope in arrivals:
        try:
            outcomes.append(accept_message(engine, vault, raw, envelope))
        except Exception as exc:
            outcomes.append(exc)
    return outcomes


def _log_intake(row_id: int, outcome: Intake, raw: bytes, envelope: Envelope) -> None:
    log.info(
        "inbound message %s %s via %s to %s (%d bytes)",
        row_id,
        outcome.value,
        envelope.transport,
        envelope.destination.mailbox.value,
        len(raw),
    )


@dataclass
class _Arrival:
    raw: bytes
    envelope: Envelope
    authenticate: Callable[[], Verdict]
    outcome: asyncio.Future[Intake | Verdict]


class GroupIntake:
    """The SMTP listener's way in (module docstring): :meth:`accept` authenticates and stores
    one message, in one worker thread with the others arriving meanwhile."""

    def __init__(self, engine: Engine, vault: MessageVault, *, limit: int = GROUP_LIMIT):
        self.engine = engine
        self.vault = vault
        self.limit = limit
        self._waiting: list[_Arrival] = []
        self._storing: asyncio.Task[None] | None = None

    async def accept(
        self, raw: bytes, envelope: Envelope, *, authenticate: Callable[[], Verdict]
    ) -> Intake | Verdict:
        """The message's outcome once its transaction has committed, or the refusing
        :class:`Verdict` of ``authenticate`` (then nothing is stored). Raises what kept it out
        (the listener answers 451)."""
        loop = asyncio.get_running_loop()
        arrival = _Arrival(raw, envelope, authenticate, loop.create_future())
        self._waiting.append(arrival)
        if self._storing is None:
            self._storing = loop.create_task(self._store_while_waiting())
        return await arrival.outcome

    async def _store_while_waiting(self) -> None:
        group: list[_Arrival] = []
        try:
            while self._waiting:
                group, self._waiting = self._waiting[: self.limit], self._waiting[self.limit :]
                try:
                    # One thread hop for the whole group: authentication and storing.
                    outcomes = await asyncio.to_thread(self._authenticate_and_store, group)
                except Exception as exc:  # a bug: each message of the group gets its 451
                    outcomes = [exc] * len(group)
                for arrival, outcome in zip(group, outcomes, strict=True):
                    if arrival.outcome.done():  # the session went away meanwhile
                        continue
                    if isinstance(outcome, Exception):
                        arrival.outcome.set_exception(outcome)
                    else:
                        arrival.outcome.set_result(outcome)
        finally:
            self._storing = None
            for arrival in [*group, *self._waiting]:  # cancelled: the listener is stopping
                if not arrival.outcome.done():
                    arrival.outcome.cancel()
            self._waiting = []

    def _authenticate_and_store(
        self, group: Sequence[_Arrival]
    ) -> list[Intake | Verdict | Exception]:
        verdicts: list[Verdict | Exception] = []
        for arrival in group:
            try:
                verdicts.append(arrival.authenticate())
            except Exception as exc:
                verdicts.append(exc)
        admitted = [
            (arrival.raw, arrival.envelope)
            for arrival, verdict in zip(group, verdicts, strict=True)
            if isinstance(verdict, Verdict) and verdict.authentic
        ]
        stored = iter(accept_messages(self.engine, self.vault, admitted))
        return [
            next(stored) if isinstance(verdict, Verdict) and verdict.authentic else verdict
            for verdict in verdicts
        ]
