"""The system's mailboxes (CONTRACT §4) and how a recipient address maps onto one."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Mailbox(StrEnum):
    REGISTRATION = "registratie"
    SIGNAL = "signaal"
    REPLY = "antwoord"
    POSTMASTER = "postmaster"  # RFC 5321 §4.5.1: must exist; kept for an administrator


@dataclass(frozen=True)
class Destination:
    mailbox: Mailbox
    token: str | None = None  # antwoord+TOKEN@


_TOKEN = re.compile(r"[a-z2-7]{16,64}")


def route(address: str, mail_domain: str) -> Destination | None:
    """The mailbox ``address`` names, or None when it is not one of ours (550 5.1.1)."""
    local, at, domain = address.strip().strip("<>").rpartition("@")
    if not at or domain.lower() != mail_domain.lower():
        return None
    local = local.lower()
    if local == Mailbox.POSTMASTER:
        return Destination(Mailbox.POSTMASTER)
    if local in (Mailbox.REGISTRATION, Mailbox.SIGNAL):
        return Destination(Mailbox(local))
    base, plus, token = local.partition("+")
    if base == Mailbox.REPLY and plus and _TOKEN.fullmatch(token):
        return Destination(Mailbox.REPLY, token)
    return None


def reply_address(token: str, mail_domain: str) -> str:
    return f"{Mailbox.REPLY}+{token}@{mail_domain}"
