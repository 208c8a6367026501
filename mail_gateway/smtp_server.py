"""The SMTP listener (aiosmtpd): cheap checks at RCPT, the message stored before ``250``.

Answers (CONTRACT §4), named like Mailman's LMTP runner:

* unknown mailbox → ``550 5.1.1`` at RCPT;
* sender not allowed for the mailbox → ``550 5.7.1`` (an SMTP answer, never a bounce mailed
  to a sender that may be forged);
* too large → ``552`` (aiosmtpd, from the SIZE we announce and the data it reads);
* anything that goes wrong on our side → ``451 4.3.0``: the sender keeps the message and
  retries, and the retry is recognised by its Message-ID. No exception text reaches the peer.

Processing happens after acceptance, in :mod:`mail_gateway.processing`, so a slow step never
holds an SMTP session. Only when more work waits (messages to process, receipts to send) than
takes about a second is the ``250`` for a stored message held back a little, a second at most
(:mod:`mail_gateway.flow`): a fast sender is slowed to the gateway's pace instead of queueing
up receipts that arrive minutes late.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from sqlmodel import Session as DbSession

from core.passwords import verify_password
from mail_gateway.context import Gateway
from mail_gateway.flow import Backlog
from mail_gateway.intake import Envelope as IntakeEnvelope
from mail_gateway.intake import Intake, accept_message
from mail_gateway.mailboxes import Destination, Mailbox, route
from mail_gateway.senders import SenderDecision, check_sender

log = logging.getLogger(__name__)

OK_250 = "250 OK"
OK_250_ACCEPTED = "250 2.0.0 Bericht ontvangen (message accepted)"
ERR_451_TEMPORARY = "451 4.3.0 Tijdelijke storing, probeer het later opnieuw (try again later)"
ERR_452_ONE_RECIPIENT = (
    "452 4.5.3 Een ontvanger per bericht; stuur het opnieuw voor de volgende "
    "(one recipient per message, send again for the next)"
)
ERR_550_UNKNOWN_MAILBOX = "550 5.1.1 Onbekende ontvanger (no such mailbox)"
ERR_550_NOT_ALLOWED = "550 5.7.1 Afzender niet toegestaan voor dit adres (sender not allowed)"
ERR_550_NOT_AUTHENTIC = (
    "550 5.7.1 Afzender niet te controleren: DKIM-handtekening ontbreekt of klopt niet "
    "(sender could not be authenticated)"
)

# What RCPT decided, for DATA to store with the message. aiosmtpd makes one Envelope per
# transaction; the holder lives as long as it does.
_DECISIONS = "verwijsindex_decision"


class IntakeHandler:
    """aiosmtpd handler: async ``handle_<VERB>`` hooks that return the SMTP answer."""

    def __init__(self, gateway: Gateway, backlog: Backlog | None = None):
        self.gateway = gateway
        self.backlog = backlog or Backlog(gateway.engine)

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        destination = _destination(address, self.gateway.mail_domain)
        if destination is None:
            return ERR_550_UNKNOWN_MAILBOX
        if envelope.rcpt_tos:
            # One mailbox per transaction keeps "stored once per mailbox" simple and exact; the
            # client sends the message again for the next recipient (RFC 5321 §4.5.3.1.10).
            return ERR_452_ONE_RECIPIENT
        mail_from = _null_to_empty(envelope.mail_from)
        authenticated_as = _authenticated_institution(session)
        try:
            decision = await asyncio.to_thread(
                self._decide, destination, mail_from, authenticated_as
            )
        except Exception:
            log.exception("sender check failed")
            return ERR_451_TEMPORARY
        if not decision.allowed:
            log.info("refused at RCPT for %s: %s", destination.mailbox.value, decision.reason)
            return ERR_550_NOT_ALLOWED
        setattr(envelope, _DECISIONS, (destination, decision, authenticated_as))
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return OK_250

    def _decide(
        self, destination: Destination, mail_from: str, authenticated_as: str | None
    ) -> SenderDecision:
        with DbSession(self.gateway.engine) as db:
            return check_sender(db, destination, mail_from, authenticated_as=authenticated_as)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        stored = getattr(envelope, _DECISIONS, None)
        if stored is None:  # aiosmtpd answers 503 before this; belt and braces
            return ERR_451_TEMPORARY
        destination, decision, authenticated_as = stored
        raw = envelope.original_content or b""
        if isinstance(raw, str):  # decode_data is off, but be strict about the type
            raw = raw.encode("utf-8", "surrogateescape")
        mail_from = _null_to_empty(envelope.mail_from)
        if authenticated_as is None and destination.mailbox in (
            Mailbox.REGISTRATION,
            Mailbox.SIGNAL,
        ):
            verdict = await asyncio.to_thread(self.gateway.authenticator.verify, raw, mail_from)
            if not verdict.authentic:
                log.info("refused at DATA for %s: %s", destination.mailbox.value, verdict.reason)
                return ERR_550_NOT_AUTHENTIC
        envelope_record = IntakeEnvelope(
            transport="smtp",
            mail_from=mail_from,
            rcpt_to=envelope.rcpt_tos[0],
            destination=destination,
            institution_id=decision.institution_id,
            authenticated_as=authenticated_as,
        )
        try:
            outcome = await asyncio.to_thread(
                accept_message, self.gateway.engine, self.gateway.vault, raw, envelope_record
            )
        except Exception:
            log.exception("storing an inbound message failed")
            return ERR_451_TEMPORARY
        if outcome is Intake.STORED:
            self.gateway.inbound_waiting.set()
            await self.backlog.wait_for_room()  # committed already: only the answer waits
        return OK_250_ACCEPTED

    async def handle_exception(self, error: Exception) -> str:
        # Never show the peer what went wrong inside (aiosmtpd's default echoes the exception).
        log.error("SMTP session fault: %s", type(error).__name__, exc_info=error)
        return ERR_451_TEMPORARY


def _destination(address: str, mail_domain: str) -> Destination | None:
    if address.strip().strip("<>").lower() == "postmaster":  # RFC 5321 §4.1.1.3
        return Destination(Mailbox.POSTMASTER)
    return route(address, mail_domain)


def _null_to_empty(mail_from: str | None) -> str:
    value = (mail_from or "").strip()
    return "" if value in ("<>", "") else value.strip("<>").lower()


def _authenticated_institution(session: Session) -> str | None:
    if not session.authenticated:
        return None
    data = session.auth_data
    return data if isinstance(data, str) else None


class InstitutionAuthenticator:
    """SMTP AUTH (PLAIN/LOGIN, only after STARTTLS) for automatic couplings: the login is the
    institution id, checked against the covenant's password hash."""

    def __init__(self, gateway: Gateway):
        self.gateway = gateway

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace").strip().lower()
        password = auth_data.password.decode("utf-8", "replace")
        institution = self.gateway.config.covenant.institution(login)
        if institution is None or institution.smtp_auth_hash is None:
            return AuthResult(success=False, handled=False)
        if not verify_password(password, institution.smtp_auth_hash):
            log.info("SMTP AUTH failed for institution %s", login)
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=institution.id)


def tls_context(settings: Any) -> ssl.SSLContext | None:
    if settings.smtp_tls_cert is None or settings.smtp_tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(settings.smtp_tls_cert), str(settings.smtp_tls_key))
    return context


def smtp_factory(gateway: Gateway, handler: IntakeHandler | None = None) -> Any:
    settings = gateway.settings
    handler = handler or IntakeHandler(gateway)
    context = tls_context(settings)

    def make() -> SMTP:
        return SMTP(
            handler,
            data_size_limit=settings.max_message_size,
            hostname=settings.mail_domain,
            ident="verwijsindex",
            tls_context=context,
            # RFC 4954 §4: credentials only inside TLS; without TLS configured, no AUTH at all.
            auth_require_tls=True,
            authenticator=InstitutionAuthenticator(gateway) if context else None,
            auth_exclude_mechanism=None if context else ["LOGIN", "PLAIN"],
            timeout=300,
        )

    return make


async def start_smtp(
    gateway: Gateway, *, host: str | None = None, port: int | None = None
) -> asyncio.AbstractServer:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        smtp_factory(gateway),
        host=host or gateway.settings.smtp_host,
        port=gateway.settings.smtp_port if port is None else port,
    )
    log.info("SMTP listener on %s", ", ".join(str(s.getsockname()) for s in server.sockets))
    return server
