"""The processing worker: takes stored messages, turns each into core commands and one answer.

It takes the oldest messages waiting (up to ``BATCH_SIZE``): a run of plain registration mails
is processed together (``batch``), any other message alone (here).

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
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlmodel import Session

from core.actors import institution_actor, professional_actor, require_professional
from core.clock import utcnow
from core.db import run_in_transaction
from core.errors import UserError
from core.leases import LeaseKeeper
from core.models import InboundMessage, InboundStatus
from mail_gateway.context import Gateway
from mail_gateway.mailboxes import Mailbox, route
from mail_gateway.parsing.automatic import automatic_reason, is_out_of_office
from mail_gateway.parsing.mime import ParsedMail, read_mail
from mail_gateway.processing.batch import Opened, is_plain_registration, process_registrations
from mail_gateway.processing.claims import (
    MAX_ATTEMPTS,
    claim_next,
    release_claims,
    renew_claims,
)
from mail_gateway.processing.inbound import AlreadyDone, Stored, answer, finish, load_waiting
from mail_gateway.processing.receipts import Outcome
from mail_gateway.processing.registrations import import_csv_attachments, register_body_blocks
from mail_gateway.processing.replies import answer_reply, token_from_thread
from mail_gateway.processing.signals import place_body_signals

log = logging.getLogger(__name__)

# Messages a worker takes at once. Plain registration mails among them are processed together
# (``batch``); a larger batch saves little more and holds SQLite's writer longer.
BATCH_SIZE = 50


def process_inbound(gateway: Gateway, inbound_id: int, *, now: datetime | None = None) -> str:
    """Process one claimed message; returns its new status."""
    now = now or utcnow()
    with Session(gateway.engine) as session:
        waiting = load_waiting(session, [inbound_id])
        if not waiting:
            row = session.get(InboundMessage, inbound_id)
            return row.status if row else "missing"
    stored, sealed = waiting[0]
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
            gateway.engine, lambda s: finish(s, [stored], InboundStatus.IGNORED, now, note)
        )
        log.info("inbound message %s kept without answer: %s", stored.id, note)
        return InboundStatus.IGNORED.value

    outcome = Outcome()
    if stored.mailbox is Mailbox.REGISTRATION:
        actor = institution_actor(stored.institution_id or "", stored.transport)
        has_csv = import_csv_attachments(gateway.engine, gateway.config, mail, actor, outcome)

        def work(session: Session) -> str:
            attempt = copy.deepcopy(outcome)  # a retried transaction starts from the CSV part
            finish(session, [stored], InboundStatus.PROCESSED, now)
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
            return answer(session, gateway, stored, mail, attempt, now)

        return run_in_transaction(gateway.engine, work)

    def work_single(session: Session) -> str:
        attempt = Outcome()
        finish(session, [stored], InboundStatus.PROCESSED, now)
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
        return answer(session, gateway, stored, mail, attempt, now)

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


async def run_processing(
    gateway: Gateway, *, stop: asyncio.Event, poll_interval: float = 2.0
) -> None:
    """Process waiting messages until ``stop``; a stored message wakes the loop at once. The
    batch in hand is finished first: a clean stop leaves nothing half done."""
    lease = timedelta(seconds=gateway.settings.processing_lease_seconds)
    while not stop.is_set():
        gateway.inbound_waiting.clear()
        claimed = await asyncio.to_thread(claim_next, gateway.engine, lease=lease, limit=BATCH_SIZE)
        if claimed:
            await asyncio.to_thread(_process_claimed, gateway, claimed, lease)
            gateway.outbox_waiting.set()
            continue
        waiter = asyncio.ensure_future(gateway.inbound_waiting.wait())
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait(
            {waiter, stopper}, timeout=poll_interval, return_when=asyncio.FIRST_COMPLETED
        )
        waiter.cancel()
        stopper.cancel()


def _process_claimed(gateway: Gateway, claimed: list[int], lease: timedelta) -> None:
    """The oldest claimed messages: a run of plain registration mails together, or else the
    oldest message alone; the rest go back at once, for whichever worker is free (a large CSV
    in hand must not keep them waiting). A run that fails as a whole is done again one by one,
    so a message that cannot be processed fails alone."""
    run = _plain_run(gateway, claimed)
    begun = [item.stored.id for item in run] or claimed[:1]
    release_claims(gateway.engine, [i for i in claimed if i not in begun])
    with _holding(gateway, begun, lease):
        if run and _process_together(gateway, run):
            return
        for inbound_id in begun:
            _process_safely(gateway, inbound_id)


def _plain_run(gateway: Gateway, claimed: list[int]) -> list[Opened]:
    """The plain registration mails at the head of ``claimed`` (those still waiting), read
    from the vault and parsed; reading stops at the first other message, so mail handed back
    is not read for nothing."""
    run: list[Opened] = []
    try:
        with Session(gateway.engine) as session:
            for inbound_id in claimed:
                for stored, sealed in load_waiting(session, [inbound_id]):
                    opened = Opened(stored, read_mail(gateway.vault.open(sealed)))
                    if not is_plain_registration(opened):
                        return run
                    run.append(opened)
    except Exception:
        log.exception("could not read claimed inbound message; processing one by one")
        return []
    return run


def _process_together(gateway: Gateway, run: list[Opened]) -> bool:
    """Whether the run was processed (else nothing of it was written)."""
    try:
        statuses = process_registrations(gateway, run, utcnow())
    except AlreadyDone:
        return False  # another worker was first with one of them
    except Exception:
        log.exception("processing %d registration mails together failed; one by one", len(run))
        return False
    for item, status in zip(run, statuses, strict=True):
        log.info("inbound message %s: %s", item.stored.id, status)
    return True


@contextmanager
def _holding(gateway: Gateway, claimed: list[int], lease: timedelta) -> Iterator[None]:
    """Renew the claims on ``claimed`` (every third of the lease: core.leases) while they are
    processed (only on those: mail handed back must stay free for other workers)."""

    def renew() -> None:
        renew_claims(gateway.engine, claimed, lease)

    with LeaseKeeper(renew, lease, name=f"inbound-lease-{claimed[0]}"):
        yield


def _process_safely(gateway: Gateway, inbound_id: int) -> None:
    try:
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
