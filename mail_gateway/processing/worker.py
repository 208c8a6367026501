"""The processing worker: takes stored messages, turns each into core commands and one answer.

Exactly once: the message's status moves from ``received`` to its outcome in the *same*
transaction as the core commands and the answer, with a guarded update that only one worker can
win; a worker that dies halfway leaves nothing and the message is taken up again after its
lease. (CSV attachments go through the bulk import, batch by batch in transactions of their
own; taking such a message up again re-imports rows that are already there, which changes
nothing.)
"""

from __future__ import annotations

import asyncio
import copy
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, update
from sqlmodel import Session, select

from core.actors import institution_actor, professional_actor, require_professional
from core.clock import utcnow
from core.db import run_in_transaction
from core.errors import UserError
from core.models import InboundMessage, InboundStatus, Institution, Professional
from mail_gateway.context import Gateway
from mail_gateway.mailboxes import Mailbox, route
from mail_gateway.parsing.automatic import automatic_reason, is_out_of_office
from mail_gateway.parsing.mime import ParsedMail, read_mail
from mail_gateway.processing.claims import MAX_ATTEMPTS, claim_next, renew_claim
from mail_gateway.processing.receipts import Addressee, Outcome, send_answer
from mail_gateway.processing.registrations import import_csv_attachments, register_body_blocks
from mail_gateway.processing.replies import answer_reply, token_from_thread
from mail_gateway.processing.signals import place_body_signals

log = logging.getLogger(__name__)

_inbound: Table = InboundMessage.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Stored:
    """An inbound row's envelope, read once; the message itself is opened from the vault."""

    id: int
    message_id: str
    transport: str
    mail_from: str
    rcpt_to: str
    mailbox: Mailbox
    institution_id: str | None
    attempts: int


class AlreadyDone(Exception):
    """Another worker finished this message first."""


def _finish(
    session: Session, stored: Stored, status: InboundStatus, now: datetime, note: str | None = None
) -> None:
    """Claim the outcome for this transaction: the first statement, so the row is locked and
    a second worker's transaction finds it no longer ``received``."""
    values: dict[str, object] = {
        "status": status.value,
        "processed_at": now,
        "claimed_until": None,
        "error": note,
    }
    result = session.execute(
        update(_inbound)
        .where(_inbound.c.id == stored.id, _inbound.c.status == InboundStatus.RECEIVED.value)
        .values(**values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise AlreadyDone


def process_inbound(gateway: Gateway, inbound_id: int, *, now: datetime | None = None) -> str:
    """Process one claimed message; returns its new status."""
    now = now or utcnow()
    with Session(gateway.engine) as session:
        row = session.get(InboundMessage, inbound_id)
        if row is None or row.status != InboundStatus.RECEIVED:
            return row.status if row else "missing"
        stored = Stored(
            row.id or 0,
            row.message_id,
            row.transport,
            row.mail_from,
            row.rcpt_to,
            Mailbox(row.mailbox),
            row.institution_id,
            row.attempts,
        )
        sealed = row.raw
    mail = read_mail(gateway.vault.open(sealed))
    try:
        return _process(gateway, stored, mail, now)
    except AlreadyDone:
        return "done-elsewhere"


def _process(gateway: Gateway, stored: Stored, mail: ParsedMail, now: datetime) -> str:
    # RFC 3834 §2: never answer automatic mail; keep it for an administrator instead.
    reason = automatic_reason(mail, envelope_sender=stored.mail_from)
    if reason is None and is_out_of_office(mail):
        reason = "out-of-office"
    if reason is not None or stored.mailbox is Mailbox.POSTMASTER:
        note = reason or "postmaster"
        run_in_transaction(
            gateway.engine, lambda s: _finish(s, stored, InboundStatus.IGNORED, now, note)
        )
        log.info("inbound message %s kept without answer: %s", stored.id, note)
        return InboundStatus.IGNORED.value

    outcome = Outcome()
    if stored.mailbox is Mailbox.REGISTRATION:
        actor = institution_actor(stored.institution_id or "", stored.transport)
        has_csv = import_csv_attachments(gateway.engine, gateway.config, mail, actor, outcome)

        def work(session: Session) -> str:
            attempt = copy.deepcopy(outcome)  # a retried transaction starts from the CSV part
            _finish(session, stored, InboundStatus.PROCESSED, now)
            reply_token = None if has_csv else _reply_fallback(session, mail)
            if reply_token is not None:
                answer_reply(
                    session,
                    gateway.config,
                    mail,
                    reply_token,
                    stored.mail_from,
                    "email",
                    attempt,
                    now,
                )
            elif not has_csv:
                register_body_blocks(session, gateway.config, mail, actor, attempt, now)
            return _answer(session, gateway, stored, mail, attempt, now)

        return run_in_transaction(gateway.engine, work)

    def work_single(session: Session) -> str:
        attempt = Outcome()
        _finish(session, stored, InboundStatus.PROCESSED, now)
        if stored.mailbox is Mailbox.SIGNAL:
            reply_token = _reply_fallback(session, mail)
            if reply_token is not None:
                answer_reply(
                    session,
                    gateway.config,
                    mail,
                    reply_token,
                    stored.mail_from,
                    "email",
                    attempt,
                    now,
                )
            else:
                _place_signals(session, gateway, stored, mail, attempt, now)
        else:
            destination = route(stored.rcpt_to, gateway.mail_domain)
            token = destination.token if destination else None
            answer_reply(
                session, gateway.config, mail, token or "", stored.mail_from, "email", attempt, now
            )
        return _answer(session, gateway, stored, mail, attempt, now)

    return run_in_transaction(gateway.engine, work_single)


def _reply_fallback(session: Session, mail: ParsedMail) -> str | None:
    """A reply sent to registratie@ or signaal@ (a client that ignored Reply-To) is still a
    reply when it refers to one of our notifications and carries no fields."""
    if not (mail.in_reply_to or mail.references):
        return None
    return token_from_thread(session, mail)


def _place_signals(
    session: Session,
    gateway: Gateway,
    stored: Stored,
    mail: ParsedMail,
    outcome: Outcome,
    now: datetime,
) -> None:
    try:
        professional = require_professional(session, stored.mail_from, field="afzender")
    except UserError as error:
        outcome.problems.append(error.message)
        return
    actor = professional_actor(professional, stored.transport)
    place_body_signals(session, gateway.config, mail, actor, outcome, now)


def _answer(
    session: Session,
    gateway: Gateway,
    stored: Stored,
    mail: ParsedMail,
    outcome: Outcome,
    now: datetime,
) -> str:
    addressee = _addressee(session, stored)
    if addressee is None:
        return InboundStatus.PROCESSED.value
    kind = send_answer(
        session,
        gateway.config,
        inbound_id=stored.id,
        message_id=stored.message_id,
        addressee=addressee,
        outcome=outcome,
        subject=mail.subject or "",
        now=now,
    )
    if kind == "foutmelding":
        # Not understood: keep the message (sealed) for an administrator.
        session.execute(
            update(_inbound)
            .where(_inbound.c.id == stored.id)
            .values(status=InboundStatus.FAILED.value, error="not understood")
        )
        return InboundStatus.FAILED.value
    # Its content lives on as core state: no BSN is kept in the mail store.
    session.execute(update(_inbound).where(_inbound.c.id == stored.id).values(raw=b""))
    return InboundStatus.PROCESSED.value


def _addressee(session: Session, stored: Stored) -> Addressee | None:
    if not stored.mail_from:
        return None
    professional = session.exec(
        select(Professional).where(Professional.email == stored.mail_from)
    ).first()
    if professional is not None:
        return Addressee(
            stored.mail_from, professional.name, professional.institution_id, professional.id
        )
    institution = session.get(Institution, stored.institution_id) if stored.institution_id else None
    return Addressee(
        stored.mail_from,
        institution.name if institution else stored.mail_from,
        stored.institution_id,
    )


async def run_processing(
    gateway: Gateway, *, stop: asyncio.Event, poll_interval: float = 2.0
) -> None:
    """Process waiting messages until ``stop``; a stored message wakes the loop at once. The
    message in hand is finished first: a clean stop leaves nothing half done."""
    lease = timedelta(seconds=gateway.settings.processing_lease_seconds)
    while not stop.is_set():
        gateway.inbound_waiting.clear()
        claimed = await asyncio.to_thread(claim_next, gateway.engine, lease=lease)
        for inbound_id in claimed:
            await asyncio.to_thread(_process_safely, gateway, inbound_id, lease)
            gateway.outbox_waiting.set()
        if claimed:
            continue
        waiter = asyncio.ensure_future(gateway.inbound_waiting.wait())
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait(
            {waiter, stopper}, timeout=poll_interval, return_when=asyncio.FIRST_COMPLETED
        )
        waiter.cancel()
        stopper.cancel()


@contextmanager
def _holding(gateway: Gateway, inbound_id: int, lease: timedelta) -> Iterator[None]:
    """Renew the claim every third of the lease while the message is being processed."""
    done = threading.Event()

    def renew() -> None:
        while not done.wait(lease.total_seconds() / 3):
            try:
                renew_claim(gateway.engine, inbound_id, lease)
            except Exception:
                log.warning("could not renew the claim on inbound message %s", inbound_id)

    renewer = threading.Thread(target=renew, name=f"lease-{inbound_id}", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        done.set()
        renewer.join()


def _process_safely(gateway: Gateway, inbound_id: int, lease: timedelta) -> None:
    try:
        with _holding(gateway, inbound_id, lease):
            status = process_inbound(gateway, inbound_id)
        log.info("inbound message %s: %s", inbound_id, status)
    except Exception:
        log.exception("processing inbound message %s failed", inbound_id)
        _give_up_if_exhausted(gateway, inbound_id)


def _give_up_if_exhausted(gateway: Gateway, inbound_id: int) -> None:
    with Session(gateway.engine) as session:
        row = session.get(InboundMessage, inbound_id)
        if row is None or row.status != InboundStatus.RECEIVED or row.attempts < MAX_ATTEMPTS:
            return
        row.status = InboundStatus.FAILED
        row.error = "processing failed repeatedly; see the service log"
        session.add(row)
        session.commit()
