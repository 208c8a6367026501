"""The SMTP listener (aiosmtpd): cheap checks at RCPT, the message stored before ``250``.

Answers (CONTRACT §4), named like Mailman's LMTP runner:

* unknown mailbox → ``550 5.1.1`` at RCPT;
* sender not allowed for the mailbox → ``550 5.7.1`` (an SMTP answer, never a bounce mailed
  to a sender that may be forged);
* message that does not prove its sender as its mailbox requires (login, DKIM, or a trusted
  relay's Authentication-Results: :mod:`mail_gateway.authentication`) → ``550 5.7.1`` at DATA;
* too large → ``552`` (aiosmtpd, from the SIZE we announce and the data it reads);
* anything that goes wrong on our side → ``451 4.3.0``: the sender keeps the message and
  retries, and the retry is recognised by its Message-ID. No exception text reaches the peer;
* too many sessions (in total or from one peer), or too many failed logins → ``421 4.7.0``
  and the connection is closed (:mod:`mail_gateway.smtp_limits`).

RCPT is answered from the covenant's senders in memory (:mod:`core.sender_directory`; only a
reply's token needs the database, and a thread); at DATA the message is authenticated and
stored in one worker thread, in one transaction with the messages of other sessions whose DATA
ended meanwhile (group commit, :class:`mail_gateway.intake.GroupIntake`), and each ``250``
follows its commit.

Processing happens after acceptance, in :mod:`mail_gateway.processing`, so a slow step never
holds an SMTP session. Only when more work waits (messages to process, receipts to send) than
takes about a second is the ``250`` for a stored message held back a little, a second at most
(:mod:`mail_gateway.flow`): a fast sender is slowed to the gateway's pace instead of queueing
up receipts that arrive minutes late.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import logging
import re
import ssl
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session, syntax
from sqlmodel import Session as DbSession

from core import metrics
from core.audit import Actor, record
from core.db import transaction
from core.passwords import stand_in_hash, verify_password
from mail_gateway.address_syntax import ADDR_SPEC
from mail_gateway.authentication import Verdict
from mail_gateway.context import Gateway
from mail_gateway.flow import Backlog
from mail_gateway.intake import Envelope as IntakeEnvelope
from mail_gateway.intake import GroupIntake, Intake
from mail_gateway.mailboxes import Destination, Mailbox, route
from mail_gateway.senders import SenderDecision, check_sender, decide_without_database
from mail_gateway.smtp_limits import LoginFailure, LoginThrottle, SessionSlots

log = logging.getLogger(__name__)

OK_250 = "250 OK"
OK_250_ACCEPTED = "250 2.0.0 Bericht ontvangen (message accepted)"
ERR_451_TEMPORARY = "451 4.3.0 Tijdelijke storing, probeer het later opnieuw (try again later)"
# RFC 5321 §3.8: 421 when the server must close the channel; a client retries later.
ERR_421_TOO_MANY_SESSIONS = (
    "421 4.7.0 Te veel verbindingen, probeer het later opnieuw (too many connections, try later)"
)
ERR_421_TOO_MANY_FAILURES = (
    "421 4.7.0 Te veel mislukte aanmeldingen, probeer het later opnieuw "
    "(too many failed logins, try later)"
)
ERR_501_NOT_BASE64 = "501 5.5.2 Geen geldige base64 (cannot decode base64)"
ERR_501_NOT_PLAIN = "501 5.5.2 Geen geldige PLAIN-aanmelding (cannot split PLAIN credentials)"
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
        self.backlog = backlog or Backlog(
            gateway.engine, max_delay=gateway.settings.smtp_flow_max_delay
        )
        self.intake = GroupIntake(gateway.engine, gateway.vault)

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
            metrics.smtp_refused("unknown-mailbox")
            return ERR_550_UNKNOWN_MAILBOX
        if envelope.rcpt_tos:
            # One mailbox per transaction keeps "stored once per mailbox" simple and exact; the
            # client sends the message again for the next recipient (RFC 5321 §4.5.3.1.10).
            metrics.smtp_refused("one-recipient-per-message")
            return ERR_452_ONE_RECIPIENT
        mail_from = _null_to_empty(envelope.mail_from)
        authenticated_as = _authenticated_institution(session)
        try:
            # The covenant's senders are in memory: a thread only when the database is needed.
            decision = decide_without_database(
                self.gateway.engine, destination, mail_from, authenticated_as=authenticated_as
            )
            if decision is None:
                decision = await asyncio.to_thread(
                    self._decide, destination, mail_from, authenticated_as
                )
        except Exception:
            log.exception("sender check failed")
            metrics.smtp_refused("temporary-failure")
            return ERR_451_TEMPORARY
        if not decision.allowed:
            log.info("refused at RCPT for %s: %s", destination.mailbox.value, decision.reason)
            metrics.smtp_refused("sender-not-allowed")
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
        authenticate = functools.partial(
            self.gateway.authenticator.authenticate,
            destination.mailbox,
            raw,
            mail_from,
            sender_institution=decision.institution_id,
            authenticated_as=authenticated_as,
            peer=_peer_address(session),
        )
        envelope_record = IntakeEnvelope(
            transport="smtp",
            mail_from=mail_from,
            rcpt_to=envelope.rcpt_tos[0],
            destination=destination,
            institution_id=decision.institution_id,
            authenticated_as=authenticated_as,
        )
        try:
            # Authenticated and stored in one thread, with the messages of other sessions
            # whose DATA ends meanwhile (group commit: mail_gateway.intake).
            outcome = await self.intake.accept(raw, envelope_record, authenticate=authenticate)
        except Exception:
            log.exception("taking in an inbound message failed")
            metrics.smtp_refused("temporary-failure")
            return ERR_451_TEMPORARY
        if isinstance(outcome, Verdict):
            log.info("refused at DATA for %s: %s", destination.mailbox.value, outcome.reason)
            metrics.smtp_refused("not-authentic")
            return ERR_550_NOT_AUTHENTIC
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


def _peer_address(session: Session) -> str | None:
    """The connected client's IP address: aiosmtpd's ``session.peer`` is the socket's
    ``getpeername()``, a tuple for TCP (host first) and a string for a Unix socket."""
    peer: Any = session.peer
    return str(peer[0]) if isinstance(peer, tuple) and peer else None


def _null_to_empty(mail_from: str | None) -> str:
    value = (mail_from or "").strip()
    return "" if value in ("<>", "") else value.strip("<>").lower()


def _authenticated_institution(session: Session) -> str | None:
    if not session.authenticated:
        return None
    data = session.auth_data
    return data if isinstance(data, str) else None


PASSWORD_CHECKS_AT_ONCE = 2
AUDIT_SUBJECT_LENGTH = 60  # AuditEvent.subject


@dataclass(frozen=True)
class LoginVerdict:
    """The outcome of one SMTP AUTH: the institution logged in as, or none; ``refused`` when
    the listener answers ``421`` and closes instead of ``535``."""

    institution_id: str | None
    refused: bool = False


class InstitutionAuthenticator:
    """SMTP AUTH (PLAIN/LOGIN, only after STARTTLS) for automatic couplings: the login is the
    institution id, checked against the covenant's password hash.

    The check is a deliberately slow PBKDF2 (:mod:`core.passwords`), so it runs in a worker
    thread, at most ``PASSWORD_CHECKS_AT_ONCE`` at a time: a flood of AUTH neither stalls the
    event loop (every other session, and Slack in the same ``serve`` process) nor takes the
    threads that RCPT and DATA need. Failures count per peer address and per login
    (:class:`LoginThrottle`) and go to the audit log, naming the peer and the login tried,
    never the password. An unknown login is checked against a stand-in hash as costly as the
    real ones and answered exactly like a wrong password, after the same delay: neither the
    answer nor its timing tells which logins exist.
    """

    def __init__(self, gateway: Gateway, throttle: LoginThrottle):
        self.gateway = gateway
        self.throttle = throttle
        covenant = gateway.config.covenant
        self._stand_in = stand_in_hash(
            i.smtp_auth_hash for i in covenant.institutions if i.smtp_auth_hash is not None
        )
        self._checks = asyncio.Semaphore(PASSWORD_CHECKS_AT_ONCE)

    async def authenticate(self, peer: str, credentials: LoginPassword) -> LoginVerdict:
        login = credentials.login.decode("utf-8", "replace").strip().lower()
        password = credentials.password.decode("utf-8", "replace")
        if self.throttle.refuses(peer, login):
            log.warning("SMTP AUTH from %s refused: too many failed logins", peer)
            return LoginVerdict(None, refused=True)
        # Shielded: a client that hangs up before the answer still has its attempt counted and
        # audited, and its check keeps its place among the PASSWORD_CHECKS_AT_ONCE until the
        # thread is done (else connect, AUTH, hang up would run any number of checks at once).
        verdict, delay = await asyncio.shield(self._check(peer, login, password))
        await asyncio.sleep(delay)
        return verdict

    async def _check(self, peer: str, login: str, password: str) -> tuple[LoginVerdict, float]:
        """The verdict, and how long to wait before giving it."""
        institution = self.gateway.config.covenant.institution(login)
        stored = institution.smtp_auth_hash if institution is not None else None
        async with self._checks:
            right = await asyncio.to_thread(verify_password, password, stored or self._stand_in)
        if right and institution is not None and stored is not None:
            return LoginVerdict(institution.id), 0.0
        failure = self.throttle.failed(peer, login)
        metrics.smtp_auth_failed()
        log.info("SMTP AUTH failed from %s (%d failures in the window)", peer, failure.failures)
        async with self._checks:
            await asyncio.to_thread(self._audit_failure, peer, login, failure)
        return LoginVerdict(None, refused=failure.blocked), failure.delay

    def _audit_failure(self, peer: str, login: str, failure: LoginFailure) -> None:
        actor = Actor(kind="peer", identifier=peer, channel="smtp")
        with transaction(self.gateway.engine) as session:
            record(
                session,
                actor,
                "smtp-auth-failed",
                f"login:{login}"[:AUDIT_SUBJECT_LENGTH],
                details={"failures": failure.failures, "blocked": failure.blocked},
            )


# "<local@domain>", then nothing or white space and the ESMTP parameters (RFC 5321 §4.1.2).
_PLAIN_PATH = re.compile(rf"[ \t]*<(?P<address>{ADDR_SPEC})>(?:[ \t]+(?P<rest>.*))?\Z", re.DOTALL)


class GatewaySMTP(SMTP):
    """aiosmtpd's SMTP session with the listener's limits (:mod:`mail_gateway.smtp_limits`): a
    session slot per connection, an idle timeout that a message's bytes keep alive, and AUTH
    checked without blocking the event loop."""

    def __init__(
        self,
        handler: IntakeHandler,
        *,
        slots: SessionSlots,
        logins: InstitutionAuthenticator | None,
        **options: Any,
    ) -> None:
        # Set before aiosmtpd's __init__, which takes every attribute named auth_* for an AUTH
        # mechanism: none of these may be so named.
        self.slots = slots
        self.logins = logins
        self._slot: str | None = None
        self._receiving_data = False
        super().__init__(handler, **options)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        opening = self.transport is None  # not the TLS layer STARTTLS puts in (RFC 3207)
        super().connection_made(transport)
        if not opening:
            return
        metrics.smtp_session_opened()
        assert self.session is not None
        peer = _peer_address(self.session) or "local"
        if self.slots.take(peer):
            self._slot = peer
            return
        # aiosmtpd's session task starts on the loop's next turn: cancelled now, the peer gets
        # the 421 in place of the greeting (RFC 5321 §3.1 and §3.8) and nothing else.
        log.warning(
            "SMTP session from %s refused: %d open in total, %d from this peer",
            peer,
            self.slots.open_sessions(),
            self.slots.open_sessions(peer),
        )
        metrics.smtp_refused("too-many-sessions")
        assert self._handler_coroutine is not None
        self._handler_coroutine.cancel()
        if isinstance(transport, asyncio.WriteTransport):
            transport.write(ERR_421_TOO_MANY_SESSIONS.encode("ascii") + b"\r\n")
        transport.close()

    def connection_lost(self, error: Exception | None) -> None:
        try:
            super().connection_lost(error)
        finally:
            if self._slot is not None:
                self.slots.give_back(self._slot)
                self._slot = None

    def data_received(self, data: bytes) -> None:
        if self._receiving_data:
            # During DATA, idle means no bytes for the timeout, not a message that takes longer
            # than it to arrive (RFC 5321 §4.5.3.2.6 times each data block, not the whole).
            self._reset_timeout()
        super().data_received(data)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        # aiosmtpd parses every MAIL FROM and RCPT TO path with the e-mail package's full
        # RFC 5322 header parser (a tenth of the listener's CPU per mail). The path nearly every
        # client sends, <dot-atom@domain> and its parameters, reads the same by a pattern (a
        # test holds the two to each other); anything else still goes to the full parser.
        plain = _PLAIN_PATH.match(arg)
        if plain is None:
            return super()._getaddr(arg)
        address, rest = plain.group("address"), plain.group("rest") or ""
        if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, rest

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        self._receiving_data = True
        try:
            await super().smtp_DATA(arg)
        finally:
            self._receiving_data = False

    async def auth_PLAIN(self, _: SMTP, args: list[str]) -> AuthResult:
        # RFC 4616: base64 of "authzid NUL authcid NUL passwd", as the AUTH argument or in
        # answer to an empty challenge (RFC 4954 §4).
        blob = await self._sasl_response(args[1] if len(args) > 1 else None, "")
        if blob is None:
            return AuthResult(success=False, handled=True)
        parts = blob.split(b"\x00")
        if len(parts) != 3:
            await self.push(ERR_501_NOT_PLAIN)
            return AuthResult(success=False, handled=True)
        return await self._log_in(LoginPassword(parts[1], parts[2]))

    async def auth_LOGIN(self, _: SMTP, args: list[str]) -> AuthResult:
        # LOGIN (draft-murchison-sasl-login): the user name (or the AUTH argument), then the
        # password, each base64 in answer to a challenge.
        initial = args[1] if len(args) > 1 else None
        login = await self._sasl_response(initial, self.AuthLoginUsernameChallenge)
        if login is None:
            return AuthResult(success=False, handled=True)
        password = await self._sasl_response(None, self.AuthLoginPasswordChallenge)
        if password is None:
            return AuthResult(success=False, handled=True)
        return await self._log_in(LoginPassword(login, password))

    async def _sasl_response(self, initial: str | None, challenge: str) -> bytes | None:
        """The client's decoded answer; None when it aborted or sent no base64 (answered)."""
        if initial is None:
            answer = await self.challenge_auth(challenge)  # answers 501 itself on bad input
            return answer if isinstance(answer, bytes) else None
        try:
            return base64.b64decode(initial, validate=True)
        except binascii.Error:
            await self.push(ERR_501_NOT_BASE64)
            return None

    async def _log_in(self, credentials: LoginPassword) -> AuthResult:
        assert self.logins is not None  # without it, AUTH is not offered at all
        assert self.session is not None
        verdict = await self.logins.authenticate(
            _peer_address(self.session) or "local", credentials
        )
        if verdict.refused:
            await self.push(ERR_421_TOO_MANY_FAILURES)
            assert self.transport is not None
            self.transport.close()
            return AuthResult(success=False, handled=True)
        if verdict.institution_id is None:
            return AuthResult(success=False, handled=False)  # aiosmtpd's 535 5.7.8
        return AuthResult(success=True, auth_data=verdict.institution_id)


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
    # One count of sessions and failed logins for every session of this listener.
    slots = SessionSlots(
        total=settings.smtp_max_sessions, per_peer=settings.smtp_max_sessions_per_peer
    )
    throttle = LoginThrottle(
        max_failures=settings.smtp_auth_max_failures,
        window=settings.smtp_auth_failure_window,
        base_delay=settings.smtp_auth_failure_delay,
    )
    logins = InstitutionAuthenticator(gateway, throttle) if context else None

    def make() -> SMTP:
        return GatewaySMTP(
            handler,
            slots=slots,
            logins=logins,
            data_size_limit=settings.max_message_size,
            hostname=settings.mail_domain,
            ident="verwijsindex",
            tls_context=context,
            # RFC 4954 §4: credentials only inside TLS; without TLS configured, no AUTH at all.
            auth_require_tls=True,
            auth_exclude_mechanism=None if context else ["LOGIN", "PLAIN"],
            # Far under the 5 minutes RFC 5321 §4.5.3.2.7 suggests: the clients are client
            # systems on fixed links, and an idle session holds a slot another one needs.
            timeout=settings.smtp_idle_timeout,
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
