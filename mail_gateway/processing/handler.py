"""What a kind of message is, and what a handler for one kind does.

Every stored message is read once and given a :class:`Kind` (``routing.classify``); the table in
``routing.HANDLERS`` names the one :class:`Handler` for each kind. A handler takes a run of
messages of its kind — a run of one as well as a burst of fifty — and the worker
(``worker.process_run``) wraps it in the same transaction every time: the messages' outcome is
claimed first, the handler writes the core commands, each message gets its answer. When a run
fails the worker processes its messages one by one through the *same* handler.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar

from sqlmodel import Session

from core.models import InboundStatus
from mail_gateway.context import Gateway
from mail_gateway.parsing.mime import ParsedMail
from mail_gateway.processing.inbound import Stored
from mail_gateway.processing.receipts import Outcome

P = TypeVar("P")


class Kind(StrEnum):
    IGNORED = "ignored"  # automatic mail, out-of-office, postmaster: kept, never answered
    REPLY = "reply"  # a keyword answer to one of our notifications
    REGISTRATIONS = "registrations"  # registration blocks in the body
    REGISTRATION_FILE = "registration-file"  # CSV attachments, imported batch by batch
    SIGNALS = "signals"  # signal blocks in the body


@dataclass(frozen=True)
class Opened:
    """A claimed message, read from the vault, parsed and classified."""

    stored: Stored
    mail: ParsedMail
    kind: Kind
    token: str = ""  # REPLY: the reply token it answers
    note: str | None = None  # IGNORED: why it gets no answer


class Handler(Generic[P]):
    """Turns a run of messages of one kind into core commands and outcomes. The defaults do
    nothing: a handler overrides what its kind needs."""

    # How many messages one transaction takes at once.
    together: int = 50
    # The status the messages get; ``answers``: whether each gets a receipt or error report.
    status: InboundStatus = InboundStatus.PROCESSED
    answers: bool = True

    def prepare(self, gateway: Gateway, item: Opened, outcome: Outcome) -> P | None:
        """Work done before the transaction (reading, parsing; the CSV import, which commits
        batch by batch itself), so SQLite's writer lock is held for the writing only.
        ``outcome`` may be filled here; each attempt of the transaction starts from a copy."""
        return None

    def handle(
        self,
        session: Session,
        gateway: Gateway,
        items: Sequence[Opened],
        prepared: Sequence[P],
        outcomes: Sequence[Outcome],
        now: datetime,
    ) -> None:
        """The core commands for ``items``, in the worker's transaction; what each came to goes
        into its outcome. A refusal is an outcome; an exception fails the whole run."""
        return None
