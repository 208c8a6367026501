"""``registratie@``: registrations and deregistrations in the body (blocks) or as CSV."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core import audit
from core.audit import Actor
from core.bulk_import import import_registrations
from core.config import CoreConfig
from core.errors import UserError
from core.registration import (
    DeregisterYouth,
    InvolvedInstitution,
    RegisterYouth,
    deregister_youth,
    register_youth,
)
from mail_gateway.parsing.blocks import parse_registration_blocks
from mail_gateway.parsing.csv_attachment import registration_rows
from mail_gateway.parsing.mime import ParsedMail
from mail_gateway.processing.receipts import Outcome

log = logging.getLogger(__name__)

# The example holds no real-looking BSN or birth date: a valid example BSN is someone's BSN.
FIELDS_HINT = (
    "Zet per jongere de velden op een eigen regel, bijvoorbeeld 'BSN: <9 cijfers>', "
    "'Geboortedatum: DD-MM-JJJJ', 'Gemeente: Groningen', 'Kenmerk: uw cliëntnummer'; "
    "scheid jongeren met een regel '---', of stuur een CSV-bijlage met een kopregel."
)


def import_csv_attachments(
    engine: Engine, config: CoreConfig, mail: ParsedMail, actor: Actor, outcome: Outcome
) -> bool:
    """Each CSV attachment through the bulk import (its own transactions, batch by batch;
    running it again after a crash changes nothing twice). Returns whether there were any."""
    attachments = [a for a in mail.attachments if a.is_csv]
    for attachment in attachments:
        summary: dict[str, str | int] = {"filename": attachment.filename or "bijlage.csv"}
        try:
            report = import_registrations(
                engine,
                config,
                actor.institution_id or "",
                registration_rows(attachment),
                actor=actor,
            )
        except UserError as error:  # a header the import cannot read: the whole file
            outcome.refuse(None, error)
            summary.update(accepted=0, deregistered=0, refused=0, new_involvements=0)
            outcome.summaries.append(summary)
            continue
        for refused in report.refused:
            outcome.refuse(refused.line, refused.reason, refused.field)
        summary.update(
            accepted=report.accepted,
            deregistered=report.deregistered,
            refused=len(report.refused),
            new_involvements=report.new_involvements,
        )
        outcome.summaries.append(summary)
    return bool(attachments)


def register_body_blocks(
    session: Session,
    config: CoreConfig,
    mail: ParsedMail,
    actor: Actor,
    outcome: Outcome,
    now: datetime,
) -> None:
    """Every block of the body, each in a savepoint: a refused block leaves the others."""
    for block in parse_registration_blocks(mail.text):
        if block.refusal is not None:
            outcome.refuse(block.line, block.refusal.reason, block.refusal.field)
            continue
        command = block.command
        try:
            with audit.savepoint(session):
                if isinstance(command, RegisterYouth):
                    result = register_youth(
                        command, session=session, config=config, actor=actor, now=now
                    )
                    outcome.accepted.append(
                        accepted_line(
                            block.line,
                            result.registration_number,
                            command.reference,
                            result.others_involved,
                        )
                    )
                elif isinstance(command, DeregisterYouth):
                    number = deregister_youth(
                        command, session=session, config=config, actor=actor, now=now
                    )
                    outcome.accepted.append(accepted_line(block.line, number))
        except UserError as error:
            outcome.refuse(block.line, error)
    explain_if_not_understood(outcome)


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
