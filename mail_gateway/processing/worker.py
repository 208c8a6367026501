"""The processing worker: takes stored messages, turns each into core commands and one answer.

It claims the oldest messages waiting (up to ``BATCH_SIZE``), reads and classifies them
(``routing.classify``) and takes the run at their head that one handler can take at once
(``routing.HANDLERS``): a burst of registration mails together, a CSV mail alone. The rest go
back at once, for whichever worker is free.

Exactly once: the messages' status moves from ``received`` to their outcome in the *same*
transaction as the core commands and the answers, with a guarded update that only one worker
can win (``inbound.finish``); a worker that dies halfway leaves nothing and the messages are
taken up again after their lease. A run that fails is processed again one message at a time,
through the same handler, so a message that cannot be processed fails alone. (CSV attachments
go through the bulk import, batch by batch in transactions of their own; taking such a message
up again re-imports rows that are already there, which changes nothing.)
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlmodel import Session

from core import metrics
from core.clock import utcnow
from core.db import reading, run_in_transaction
from core.leases import LeaseKeeper
from core.models import InboundMessage, InboundStatus
from mail_gateway.context import Gateway
from mail_gateway.parsing.mime import read_mail
from mail_gateway.processing.claims import (
    BATCH_SIZE,
    MAX_ATTEMPTS,
    claim_next,
    release_claims,
    renew_claims,
)
from mail_gateway.processing.handler import Opened
from mail_gateway.processing.inbound import (
    AlreadyDone,
    Answered,
    Stored,
    answer_all,
    finish,
    load_waiting,
)
from mail_gateway.processing.receipts import Outcome
from mail_gateway.processing.routing import HANDLERS, classify

log = logging.getLogger(__name__)

# While mail keeps coming, the next claim waits this long for more to gather: a run's fixed
# statements (claim, lookups, audit event, outcome) are then shared by more than a few mails,
# and on SQLite each of them holds the one writer.
GATHER_SECONDS = 0.05


def process_run(gateway: Gateway, run: Sequence[Opened], now: datetime | None = None) -> list[str]:
    """Process a run of messages of one kind in one transaction; returns each one's new status.
    Raises :class:`~mail_gateway.processing.inbound.AlreadyDone` (nothing written) when another
    worker finished one of them first."""
    now = now or utcnow()
    handler = HANDLERS[run[0].kind]
    assert all(item.kind is run[0].kind for item in run), "a run is of one kind"
    prepared_outcomes = [Outcome() for _ in run]
    prepared = [
        handler.prepare(gateway, item, outcome)
        for item, outcome in zip(run, prepared_outcomes, strict=True)
    ]

    def work(session: Session) -> list[str]:
        # First statement: claims the outcome, so a second worker finds them done.
        for note, items in itertools.groupby(run, key=lambda item: item.note):
            finish(session, [item.stored for item in items], handler.status, now, note)
        outcomes = copy.deepcopy(prepared_outcomes)  # a retried transaction starts afresh
        handler.handle(session, gateway, run, prepared, outcomes, now)
        if not handler.answers:
            return [handler.status.value] * len(run)
        answered = [
            Answered(item.stored, item.mail, outcome)
            for item, outcome in zip(run, outcomes, strict=True)
        ]
        return answer_all(session, gateway, answered, now)

    return run_in_transaction(gateway.engine, work)


def process_inbound(gateway: Gateway, inbound_id: int, *, now: datetime | None = None) -> str:
    """Process one message (a run of one); returns its new status."""
    opened = open_run(gateway, [inbound_id])
    if not opened:
        with Session(gateway.engine) as session:
            row = session.get(InboundMessage, inbound_id)
            return row.status if row else "missing"
    try:
        [status] = process_run(gateway, opened, now)
    except AlreadyDone:
        return "done-elsewhere"
    return status


def open_run(gateway: Gateway, claimed: Sequence[int]) -> list[Opened]:
    """The messages at the head of ``claimed`` (those still waiting) that one handler takes
    together: read from the vault, parsed and classified. Reading stops at the first message of
    another kind, so mail handed back is not read for nothing."""
    # One read of the claimed rows, and no transaction open while mail is decrypted and
    # parsed: on SQLite every writing transaction holds the one writer lock (core.db), and
    # parsing a run of 50 inside one kept intake and delivery waiting for it.
    with Session(reading(gateway.engine)) as session:
        waiting = load_waiting(session, claimed)
    run: list[Opened] = []
    for stored, sealed in waiting:
        try:
            opened = _open(gateway, stored, sealed)
        except Exception:
            if not run:
                raise
            return run  # it goes back, and fails alone when it is first
        if run and opened.kind is not run[0].kind:
            return run
        run.append(opened)
        if len(run) >= HANDLERS[opened.kind].together:
            return run
    return run


def _open(gateway: Gateway, stored: Stored, sealed: bytes) -> Opened:
    mail = read_mail(gateway.vault.open(sealed))
    with Session(reading(gateway.engine)) as session:  # it reads only for a reply's thread
        return classify(session, gateway, stored, mail)


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
            if len(claimed) < BATCH_SIZE:  # busy, but not backed up: let the next run gather
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), GATHER_SECONDS)
            continue
        waiter = asyncio.ensure_future(gateway.inbound_waiting.wait())
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait(
            {waiter, stopper}, timeout=poll_interval, return_when=asyncio.FIRST_COMPLETED
        )
        waiter.cancel()
        stopper.cancel()


def _process_claimed(gateway: Gateway, claimed: list[int], lease: timedelta) -> None:
    """The run at the head of ``claimed``; the rest go back at once, for whichever worker is
    free (a large CSV in hand must not keep them waiting)."""
    try:
        run = open_run(gateway, claimed)
    except Exception:
        log.exception("could not read inbound message %s", claimed[0])
        release_claims(gateway.engine, claimed[1:])
        _give_up_if_exhausted(gateway, claimed[0])
        return
    begun = [item.stored.id for item in run]
    release_claims(gateway.engine, [i for i in claimed if i not in begun])
    if not run:
        return  # done by another worker meanwhile
    with _holding(gateway, begun, lease):
        if _process_safely(gateway, run) or len(run) == 1:
            return
        log.info("processing %d messages together failed; one by one", len(run))
        for item in run:
            _process_safely(gateway, [item])


def _process_safely(gateway: Gateway, run: Sequence[Opened]) -> bool:
    """Whether the run was processed (else nothing of it was written)."""
    try:
        statuses = process_run(gateway, run)
    except AlreadyDone:
        if len(run) == 1:
            log.info("inbound message %s: done-elsewhere", run[0].stored.id)
        return False  # another worker was first with one of them
    except Exception:
        metrics.processing_failed(len(run))
        log.exception(
            "processing inbound message%s %s failed",
            "s" if len(run) > 1 else "",
            ", ".join(str(item.stored.id) for item in run),
        )
        if len(run) == 1:
            _give_up_if_exhausted(gateway, run[0].stored.id)
        return False
    for item, status in zip(run, statuses, strict=True):
        # One line per message for operators: number, mailbox, outcome (never who it is about).
        log.info(
            "inbound message %s to %s processed: %s",
            item.stored.id,
            item.stored.mailbox.value,
            status,
        )
    return True


@contextmanager
def _holding(gateway: Gateway, claimed: list[int], lease: timedelta) -> Iterator[None]:
    """Renew the claims on ``claimed`` (every third of the lease: core.leases) while they are
    processed (only on those: mail handed back must stay free for other workers)."""

    def renew() -> None:
        renew_claims(gateway.engine, claimed, lease)

    with LeaseKeeper(renew, lease, name=f"inbound-lease-{claimed[0]}"):
        yield


def _give_up_if_exhausted(gateway: Gateway, inbound_id: int) -> None:
    with Session(gateway.engine) as session:
        row = session.get(InboundMessage, inbound_id)
        if row is None or row.status != InboundStatus.RECEIVED or row.attempts < MAX_ATTEMPTS:
            return
        row.status = InboundStatus.FAILED
        row.error = "processing failed repeatedly; see the service log"
        session.add(row)
        session.commit()
