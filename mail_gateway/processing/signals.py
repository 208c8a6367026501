"""``signaal@``: signals by e-mail from professionals whose team may signal."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session

from core import audit
from core.actors import professional_actor, require_professional
from core.audit import Actor
from core.config import CoreConfig
from core.errors import UserError
from core.signals import place_signal
from mail_gateway.context import Gateway
from mail_gateway.parsing.blocks import BlockResult, parse_signal_blocks
from mail_gateway.processing.handler import Handler, Opened
from mail_gateway.processing.receipts import Outcome

FIELDS_HINT = (
    "Zet de velden elk op een eigen regel: BSN (of Achternaam en Geslacht), Geboortedatum, "
    "Gemeente, Code, Geïnformeerd (ja/nee/uitgesteld) en zo nodig Reden uitstel, Einddatum of "
    "Looptijd, Kenmerk en Folder."
)


class SignalBlocks(Handler[list[BlockResult]]):
    """Signal blocks in the body, each in a savepoint: a refused block leaves the others. The
    sender must be a professional of the covenant (whose team may signal: the core checks)."""

    def prepare(self, gateway: Gateway, item: Opened, outcome: Outcome) -> list[BlockResult]:
        outcome.read_part = item.mail.read_part  # a forward: which part was read
        return parse_signal_blocks(item.mail.text)

    def handle(
        self,
        session: Session,
        gateway: Gateway,
        items: Sequence[Opened],
        prepared: Sequence[list[BlockResult]],
        outcomes: Sequence[Outcome],
        now: datetime,
    ) -> None:
        for item, blocks, outcome in zip(items, prepared, outcomes, strict=True):
            try:
                professional = require_professional(
                    session, item.stored.mail_from, field="afzender"
                )
            except UserError as error:
                outcome.problems.append(error.message)
                continue
            actor = professional_actor(professional, item.stored.transport)
            _place_blocks(session, gateway.config, blocks, actor, outcome, now)


def _place_blocks(
    session: Session,
    config: CoreConfig,
    blocks: Sequence[BlockResult],
    actor: Actor,
    outcome: Outcome,
    now: datetime,
) -> None:
    for block in blocks:
        if block.refusal is not None:
            refusal = block.refusal
            outcome.refuse(block.line, refusal.reason, refusal.field, block.own_reference)
            continue
        command = block.command
        try:
            with audit.savepoint(session):
                result = place_signal(command, session=session, config=config, actor=actor, now=now)
        except UserError as error:
            outcome.refuse(block.line, error, own_reference=block.own_reference)
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
