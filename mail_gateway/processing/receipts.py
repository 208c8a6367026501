"""The answer every inbound message gets (issue: receipts): ``ontvangstbevestiging`` listing
what was accepted and what was refused with line, field and a Dutch reason, or ``foutmelding``
when the message could not be understood at all. Written to the outbox in the transaction
that processed the message, threaded onto it with In-Reply-To."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core import outbox
from core.config import CoreConfig
from core.errors import DomainError
from core.free_text import OMITTED, quote
from core.models import Channel
from core.notifications.dispatch import common_context
from core.notifications.recipients import Recipient

RECEIPT = "ontvangstbevestiging"
ERROR_REPORT = "foutmelding"
MAX_LISTED = 500  # a 100,000-row CSV gets its totals and the first refusals, not a novel


@dataclass
class Outcome:
    """What processing one message came to, for its answer."""

    accepted: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # why the message as a whole failed
    summaries: list[dict[str, Any]] = field(default_factory=list)  # one per CSV attachment
    confirmation: str = ""  # a reply's result, in Dutch
    hint: str = ""
    read_part: str = ""  # which part of the mail was read, when not its own text (a forward)

    def refuse(
        self,
        line: int | None,
        error: DomainError | str,
        field_name: str = "",
        own_reference: str = "",
    ) -> None:
        """A refused block, row or file; ``own_reference`` is the sender's Kenmerk for it, so
        the receipt names the client record and not only a line number."""
        if isinstance(error, DomainError):
            field_name, reason = error.field or field_name, error.message
        else:
            reason = error
        self.refused.append(
            {
                "line": line,
                "field": field_name,
                "reason": reason,
                "own_reference": shown_reference(own_reference),
            }
        )

    @property
    def accepted_total(self) -> int:
        """Everything processed: the listed body blocks and the rows of CSV attachments (which
        are counted in their summaries, not listed one by one)."""
        imported = sum(
            int(s.get("accepted", 0)) + int(s.get("deregistered", 0)) for s in self.summaries
        )
        return len(self.accepted) + imported

    @property
    def understood(self) -> bool:
        return bool(self.accepted or self.refused or self.summaries or self.confirmation)


def shown_reference(reference: str) -> str:
    """The sender's Kenmerk as a receipt may repeat it: not when it could be a BSN or a date
    of birth, or holds characters that garble the answer (a kenmerk may be refused for that
    very reason), and at most 60 characters."""
    if not reference.strip():
        return ""
    shown = quote(reference, limit=60)
    return "" if shown == OMITTED else shown.strip("'")


@dataclass(frozen=True)
class Addressee:
    address: str
    name: str
    institution_id: str | None = None
    professional_id: int | None = None


def answer_notification(
    config: CoreConfig,
    *,
    inbound_id: int,
    message_id: str,
    addressee: Addressee,
    outcome: Outcome,
    subject: str,
) -> outbox.NewNotification:
    """The receipt (or error report) for one inbound message, for the outbox; its ``kind``
    says which."""
    kind = RECEIPT if outcome.understood and not outcome.problems else ERROR_REPORT
    reference = f"B-{inbound_id}"
    recipient = Recipient(
        addressee.address,
        "sender",
        addressee.name,
        addressee.professional_id,
        addressee.institution_id,
    )
    context = {
        **common_context(config, kind, reference, recipient, asks_reply=False),
        "original_message_id": message_id,
        "original_subject": " ".join(subject.split())[:200],
        "accepted": outcome.accepted[:MAX_LISTED],
        "accepted_total": outcome.accepted_total,
        "refused": outcome.refused[:MAX_LISTED],
        "refused_total": len(outcome.refused),
        "summaries": outcome.summaries,
        "confirmation": outcome.confirmation,
        "problems": outcome.problems,
        "hint": outcome.hint,
        "read_part": outcome.read_part,
    }
    return outbox.NewNotification(
        kind=kind,
        channel=Channel.EMAIL.value,
        recipient=addressee.address,
        recipient_role="sender",
        reference=reference,
        context=context,
        idempotency_key=f"{kind}:inbound-{inbound_id}",
        professional_id=addressee.professional_id,
        institution_id=addressee.institution_id,
        in_reply_to=message_id if message_id.startswith("<") else None,
    )
