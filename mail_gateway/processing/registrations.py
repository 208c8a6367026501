"""``registratie@``: registrations and deregistrations in the body (blocks) or as CSV."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core import audit
from core.actors import institution_actor
from core.audit import Actor
from core.bulk_import import RowResult, apply_requests, import_registrations
from core.config import CoreConfig
from core.errors import UserError
from core.registration import InvolvedInstitution, RegisterYouth
from mail_gateway.context import Gateway
from mail_gateway.parsing.blocks import BlockResult, parse_registration_blocks
from mail_gateway.parsing.mime import ParsedMail
from mail_gateway.parsing.xlsx_attachment import (
    file_name,
    registration_file_rows,
    unreadable_file_reason,
)
from mail_gateway.processing.handler import Handler, Opened
from mail_gateway.processing.receipts import Outcome

log = logging.getLogger(__name__)

# The example holds no real-looking BSN or birth date: a valid example BSN is someone's BSN.
FIELDS_HINT = (
    "Zet per jongere de velden op een eigen regel, bijvoorbeeld 'BSN: <9 cijfers>', "
    "'Geboortedatum: DD-MM-JJJJ', 'Gemeente: Groningen', 'Kenmerk: uw cliëntnummer'; "
    "scheid jongeren met een regel '---', of stuur een CSV-bijlage met een kopregel."
)


def import_registration_files(
    engine: Engine, config: CoreConfig, mail: ParsedMail, actor: Actor, outcome: Outcome
) -> bool:
    """Each CSV or .xlsx attachment through the bulk import (its own transactions, batch by
    batch; running it again after a crash changes nothing twice); any other file is named as
    not read. Returns whether there were any to import."""
    attachments = mail.registration_files
    for attachment in mail.unreadable_files:
        outcome.refuse(None, unreadable_file_reason(attachment), "bijlage")
    for attachment in attachments:
        default_name = "bijlage.xlsx" if attachment.is_xlsx else "bijlage.csv"
        summary: dict[str, str | int] = {"filename": attachment.filename or default_name}
        references: dict[int, str] = {}
        try:
            report = import_registrations(
                engine,
                config,
                actor.institution_id or "",
                registration_file_rows(attachment, references),
                actor=actor,
            )
        except UserError as error:  # a header or workbook the import cannot read: the file
            reason = f"bijlage {file_name(attachment)}: {error.message}"
            outcome.refuse(None, reason, error.field or "bestand")
            summary.update(accepted=0, deregistered=0, refused=0, new_involvements=0)
            outcome.summaries.append(summary)
            continue
        for refused in report.refused:
            own_reference = references.get(refused.line, "")
            outcome.refuse(refused.line, refused.reason, refused.field, own_reference)
        summary.update(
            accepted=report.accepted,
            deregistered=report.deregistered,
            refused=len(report.refused),
            new_involvements=report.new_involvements,
        )
        outcome.summaries.append(summary)
    return bool(attachments)


class RegistrationBlocks(Handler[list[BlockResult]]):
    """Registration blocks in the body. A run of mails goes through the set-wise path of the
    core (:func:`core.bulk_import.apply_requests`: the one registration rule) in arrival
    order, one call per run of consecutive mails of one institution; each mail still gets its
    own receipt listing its own blocks. A client system's nightly burst is a few calls."""

    def prepare(self, gateway: Gateway, item: Opened, outcome: Outcome) -> list[BlockResult]:
        outcome.read_part = item.mail.read_part
        blocks = parse_registration_blocks(item.mail.text)
        for attachment in item.mail.unreadable_files:  # an .xls, a PDF: say what to send
            reason = unreadable_file_reason(attachment)
            if blocks:
                outcome.refuse(None, reason, "bijlage")
            else:
                outcome.problems.append(reason)
        return blocks

    def handle(
        self,
        session: Session,
        gateway: Gateway,
        items: Sequence[Opened],
        prepared: Sequence[list[BlockResult]],
        outcomes: Sequence[Outcome],
        now: datetime,
    ) -> None:
        requests: list[_Request] = []
        for index, blocks in enumerate(prepared):
            for block in blocks:
                if block.refusal is not None:
                    refusal = block.refusal
                    outcomes[index].refuse(
                        block.line, refusal.reason, refusal.field, block.own_reference
                    )
                else:
                    requests.append(_Request(index, block))
        # The audit's actor is the institution and the transport (its channel).
        for (institution_id, transport), run in itertools.groupby(
            requests,
            key=lambda r: (
                items[r.mail].stored.institution_id or "",
                items[r.mail].stored.transport,
            ),
        ):
            _register_run(
                session,
                gateway.config,
                list(run),
                institution_actor(institution_id, transport),
                outcomes,
                now,
            )
        for outcome in outcomes:
            outcome.refused.sort(key=lambda refused: refused["line"] or 0)
            explain_if_not_understood(outcome)


@dataclass(frozen=True)
class _Request:
    mail: int  # index in the run
    block: BlockResult


def _register_run(
    session: Session,
    config: CoreConfig,
    run: list[_Request],
    actor: Actor,
    outcomes: Sequence[Outcome],
    now: datetime,
) -> None:
    """One institution's blocks; their numbers within the run are their lines for the core."""
    try:
        with audit.savepoint(session):
            report = apply_requests(
                session,
                config,
                [(number, request.block.command) for number, request in enumerate(run)],
                actor=actor,
                now=now,
            )
    except UserError as error:  # the institution itself may not register (no longer active)
        for request in run:
            block = request.block
            outcomes[request.mail].refuse(block.line, error, own_reference=block.own_reference)
        return
    for refused in report.refused:
        block = run[refused.line].block
        outcomes[run[refused.line].mail].refuse(
            block.line, refused.reason, refused.field, block.own_reference
        )
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


class RegistrationFile(Handler[None]):
    """CSV and .xlsx attachments: each through the bulk import, batch by batch in transactions
    of its own (a file of 100,000 rows cannot wait for one); taken up again after a crash it
    changes nothing twice. One mail at a time: the import holds the worker for minutes."""

    together = 1

    def prepare(self, gateway: Gateway, item: Opened, outcome: Outcome) -> None:
        outcome.read_part = item.mail.read_part
        actor = institution_actor(item.stored.institution_id or "", item.stored.transport)
        import_registration_files(gateway.engine, gateway.config, item.mail, actor, outcome)


def accepted_line(
    line: int,
    registration_number: str,
    own_reference: str | None = None,
    others_involved: Iterable[InvolvedInstitution] = (),
) -> dict[str, Any]:
    """A block in the receipt's list of what was accepted: an aanmelding (with the sender's own
    reference and who else is involved), or without ``own_reference`` an afmelding."""
    return {
        "line": line,
        "action": "afmelden" if own_reference is None else "aanmelden",
        "reference": registration_number,
        "own_reference": own_reference or "",
        "others_involved": [{"name": o.name, "email": o.email} for o in others_involved],
    }


def explain_if_not_understood(outcome: Outcome) -> None:
    if not outcome.understood:
        outcome.problems.append("het bericht bevat geen registratie die wij kunnen lezen")
        outcome.hint = FIELDS_HINT
