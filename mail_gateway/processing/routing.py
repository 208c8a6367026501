"""Which handler processes a stored message: one decision (:func:`classify`) and one table
(:data:`HANDLERS`), for a run of fifty as for a run of one."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from core.models import InboundStatus
from mail_gateway.context import Gateway
from mail_gateway.mailboxes import Mailbox, route
from mail_gateway.parsing.automatic import automatic_reason, is_out_of_office
from mail_gateway.parsing.forwarded import read_forwarded
from mail_gateway.parsing.mime import ParsedMail
from mail_gateway.processing.handler import Handler, Kind, Opened
from mail_gateway.processing.inbound import Stored
from mail_gateway.processing.registrations import RegistrationBlocks, RegistrationFile
from mail_gateway.processing.replies import Replies, token_from_thread
from mail_gateway.processing.signals import SignalBlocks


class Ignored(Handler[None]):
    """Kept for an administrator (sealed), never answered: RFC 3834 §2 forbids answering
    automatic mail, and postmaster@ is read by people."""

    status = InboundStatus.IGNORED
    answers = False


HANDLERS: dict[Kind, Handler[Any]] = {
    Kind.IGNORED: Ignored(),
    Kind.REPLY: Replies(),
    Kind.REGISTRATIONS: RegistrationBlocks(),
    Kind.REGISTRATION_FILE: RegistrationFile(),
    Kind.SIGNALS: SignalBlocks(),
}


def classify(session: Session, gateway: Gateway, stored: Stored, mail: ParsedMail) -> Opened:
    """What kind of message this is; ``session`` only reads (the thread of a reply that reached
    registratie@ or signaal@)."""
    note = automatic_reason(mail, envelope_sender=stored.mail_from)
    if note is None and is_out_of_office(mail):
        note = "out-of-office"
    if note is not None or stored.mailbox is Mailbox.POSTMASTER:
        return Opened(stored, mail, Kind.IGNORED, note=note or "postmaster")
    if stored.mailbox is Mailbox.REPLY:
        destination = route(stored.rcpt_to, gateway.mail_domain)
        return Opened(stored, mail, Kind.REPLY, token=(destination and destination.token) or "")
    read = read_forwarded(mail)  # a forward is read from the forwarded part
    if stored.mailbox is Mailbox.REGISTRATION and read.registration_files:
        return Opened(stored, read, Kind.REGISTRATION_FILE)
    token = _reply_in_thread(session, mail)
    if token is not None:
        return Opened(stored, mail, Kind.REPLY, token=token)
    if stored.mailbox is Mailbox.REGISTRATION:
        return Opened(stored, read, Kind.REGISTRATIONS)
    return Opened(stored, read, Kind.SIGNALS)


def _reply_in_thread(session: Session, mail: ParsedMail) -> str | None:
    """A reply sent to registratie@ or signaal@ (a client that ignored Reply-To) is still a
    reply when it refers to one of our notifications."""
    if not (mail.in_reply_to or mail.references):
        return None
    return token_from_thread(session, mail)
