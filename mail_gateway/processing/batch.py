"""Registration mails in batches: the mails waiting together, in one transaction.

A client system that sends one registration per mail sends them in bursts (its nightly run, a
backlog after an outage). One by one, every mail pays for a transaction of its own and for
``register_youth``'s look-ups per youth; the gateway then processes a few dozen mails a second
and the senders wait. Here the plain registration mails that are waiting are taken together:
their blocks go, in arrival order, through the set-wise path of the CSV import
(:func:`core.bulk_import.apply_requests`, the same rules as ``register_youth``), and each mail
still gets its own receipt listing its own blocks. A quiet gateway makes batches of one.

Exactly once, as one by one: the batch's messages change from ``received`` to their outcome
in the same transaction as the registrations and receipts; a worker that dies halfway leaves
nothing. When anything in the batch goes wrong the transaction is rolled back and the caller
processes the messages one by one, so one bad message never holds up the others.

"Plain": to ``registratie@``, from an institution, no CSV attachment (those go through the
import batch by batch), not automatic mail and not a reply to one of our notifications.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from core import audit
from core.actors import institution_actor
from core.bulk_import import RowResult, apply_requests
from core.db import run_in_transaction
from core.errors import UserError
from core.models import InboundStatus
from core.registration import RegisterYouth
from mail_gateway.context import Gateway
from mail_gateway.mailboxes import Mailbox
from mail_gateway.parsing.automatic import automatic_reason, is_out_of_office
from mail_gateway.parsing.blocks import BlockResult, parse_registration_blocks
from mail_gateway.parsing.mime import ParsedMail
from mail_gateway.processing.inbound import Addressees, Stored, answer, finish
from mail_gateway.processing.receipts import Outcome
from mail_gateway.processing.registrations import accepted_line, explain_if_not_understood


@dataclass(frozen=True)
class Opened:
    """A claimed message, read from the vault and parsed."""

    stored: Stored
    mail: ParsedMail


def is_plain_registration(opened: Opened) -> bool:
    stored, mail = opened.stored, opened.mail
    return (
        stored.mailbox is Mailbox.REGISTRATION
        and bool(stored.institution_id)
        and not mail.csv_attachments
        and not (mail.in_reply_to or mail.references)
        and automatic_reason(mail, envelope_sender=stored.mail_from) is None
        and not is_out_of_office(mail)
    )


@dataclass(frozen=True)
class _Request:
    mail: int  # index in the batch
    block: BlockResult


def process_registrations(gateway: Gateway, batch: Sequence[Opened], now: datetime) -> list[str]:
    """Process plain registration mails together; returns each one's new status. Raises
    :class:`~mail_gateway.processing.inbound.AlreadyDone` (nothing written) when another
    worker finished one of them first."""

    # Read before the transaction: SQLite's writer lock is held for the writing only.
    parsed = [parse_registration_blocks(opened.mail.text) for opened in batch]

    def work(session: Session) -> list[str]:
        finish(session, [opened.stored for opened in batch], InboundStatus.PROCESSED, now)
        outcomes = [Outcome() for _ in batch]
        requests = []
        for index, blocks in enumerate(parsed):
            for block in blocks:
                if block.refusal is not None:
                    outcomes[index].refuse(block.line, block.refusal.reason, block.refusal.field)
                else:
                    requests.append(_Request(index, block))
        # Runs of consecutive mails of one institution (and transport, the audit's channel):
        # one set-wise call each, in arrival order.
        for (institution_id, transport), run in itertools.groupby(
            requests,
            key=lambda r: (
                batch[r.mail].stored.institution_id or "",
                batch[r.mail].stored.transport,
            ),
        ):
            _register_run(
                session,
                gateway,
                list(run),
                institution_actor(institution_id, transport),
                outcomes,
                now,
            )
        addressees = Addressees(session)
        statuses = []
        for opened, outcome in zip(batch, outcomes, strict=True):
            outcome.refused.sort(key=lambda refused: refused["line"] or 0)
            explain_if_not_understood(outcome)
            statuses.append(
                answer(session, gateway, opened.stored, opened.mail, outcome, now, addressees)
            )
        return statuses

    return run_in_transaction(gateway.engine, work)


def _register_run(
    session: Session,
    gateway: Gateway,
    run: list[_Request],
    actor: audit.Actor,
    outcomes: list[Outcome],
    now: datetime,
) -> None:
    """One institution's blocks; their numbers within the run are their lines for the core."""
    try:
        with audit.savepoint(session):
            report = apply_requests(
                session,
                gateway.config,
                [(number, request.block.command) for number, request in enumerate(run)],
                actor=actor,
                now=now,
            )
    except UserError as error:  # the institution itself may not register (no longer active)
        for request in run:
            outcomes[request.mail].refuse(request.block.line, error)
        return
    for refused in report.refused:
        request = run[refused.line]
        outcomes[request.mail].refuse(request.block.line, refused.reason, refused.field)
    for result in report.results:
        request = run[result.line]
        outcomes[request.mail].accepted.append(_accepted(request.block, result))


def _accepted(block: BlockResult, result: RowResult) -> dict[str, Any]:
    if result.action == "deregister":
        return accepted_line(block.line, result.registration_number)
    assert isinstance(block.command, RegisterYouth)
    return accepted_line(
        block.line, result.registration_number, block.command.reference, result.others_involved
    )
