"""``signaal@``: signals by e-mail from professionals whose team may signal."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from core import audit
from core.audit import Actor
from core.config import CoreConfig
from core.errors import UserError
from core.signals import place_signal
from mail_gateway.parsing.blocks import parse_signal_blocks
from mail_gateway.parsing.mime import ParsedMail
from mail_gateway.processing.receipts import Outcome

FIELDS_HINT = (
    "Zet de velden elk op een eigen regel: BSN (of Achternaam en Geslacht), Geboortedatum, "
    "Gemeente, Code, Geïnformeerd (ja/nee/uitgesteld) en zo nodig Reden uitstel, Einddatum of "
    "Looptijd, Kenmerk en Folder."
)


def place_body_signals(
    session: Session,
    config: CoreConfig,
    mail: ParsedMail,
    actor: Actor,
    outcome: Outcome,
    now: datetime,
) -> None:
    for block in parse_signal_blocks(mail.text):
        if block.refusal is not None:
            outcome.refuse(block.line, block.refusal.reason, block.refusal.field)
            continue
        command = block.command
        try:
            with audit.savepoint(session):
                result = place_signal(command, session=session, config=config, actor=actor, now=now)
        except UserError as error:
            outcome.refuse(block.line, error)
            continue
        outcome.accepted.append(
            {
                "line": block.line,
                "action": "signaal",
                "reference": result.number,
                "own_reference": command.reference or "",
                "ends_on": result.ends_on.isoformat(),
                "informed_party": result.informed_party,
                "match": result.match_number or "",
                "coordination": result.coordination_number or "",
                "others_involved": [],
            }
        )
    if not outcome.understood:
        outcome.problems.append("het bericht bevat geen signaal dat wij kunnen lezen")
        outcome.hint = FIELDS_HINT
