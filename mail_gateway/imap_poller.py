"""IMAP intake (``imapclient``) for regions whose mail already lands in a mailbox.

The same path as SMTP: a message in the folder of ``VERWIJSINDEX_IMAP_URL`` is checked as the
listener checks an SMTP transaction, stored with :func:`mail_gateway.intake.accept_message`,
and the processing worker is woken. Then the message leaves the folder:

* stored (or already stored: a duplicate Message-ID) → folder ``Verwerkt``;
* refused → folder ``Fout``, and nothing is stored or answered (its sender may be forged, as
  with ``550 5.7.1`` at RCPT). Refused is: none of our addresses in ``Delivered-To``,
  ``X-Original-To``, ``To`` or ``Cc`` (checked in that order; the first that routes wins) and no
  ``?mailbox=`` default in the URL; not exactly one ``From`` address; a sender the covenant does
  not allow for the mailbox; a failed verdict of :mod:`mail_gateway.authentication` (the same
  table of mailboxes as SMTP; the IMAP server's address stands for the SMTP peer when
  ``VERWIJSINDEX_TRUSTED_RELAYS`` is checked); larger than ``max_message_size``. The reason is
  logged, with the sender's domain only.

Both folders are created when missing (in the personal namespace). The move reflects *intake*,
like SMTP's 250 or 550: what the processing worker later makes of a stored message (a receipt,
or a ``foutmelding`` with the message kept for an administrator) is its own business.

Nothing is taken twice or skipped (RFC 3501 §2.3.1.1): the folder's UIDVALIDITY and the last UID
handled are kept in ``ImapCursor``; a message counts as handled once it is stored or refused
*and* moved. A crash in between leaves it in the folder and it is taken again, which the
Message-ID dedupe turns into a duplicate. A new UIDVALIDITY means the UIDs were renumbered: the
folder is read again from the start, and again the dedupe prevents double processing. A server
that will not let us move the message (a read-only folder, a refused MOVE) leaves it where it
is, and the cursor keeps it from being taken again. Messages flagged ``\\Deleted`` are not
taken: someone meant them to go.

Bodies are fetched with ``BODY.PEEK[]``, so ``\\Seen`` is never set by us; MOVE (RFC 6851), or
COPY + ``\\Deleted`` + UID EXPUNGE (RFC 4315) where the server lacks it, keeps the flags.

:func:`run_imap_poller` keeps one connection open and uses IDLE (RFC 2177) as a wake-up: it
polls, then idles until the server reports new mail or ``poll_interval`` passes (IDLE is
re-issued at least every 29 minutes, as the RFC asks), then polls again; a server without IDLE is
simply polled every ``poll_interval``. Two gaps are closed on the way: a poll searches again
until nothing is new (mail announced in the answers to our own commands is not announced again
in IDLE), and the first IDLE is renewed after a second (a server may report mail that arrived
between our last command and IDLE only when IDLE ends; Dovecot 2.3 does). A stop lets the call
in hand finish — the message being stored and moved — but cuts off a server that no longer
answers after ``STOP_GRACE_SECONDS``. Whatever goes wrong with the server — a refused
connection, a dropped socket, ``BYE``, a ``NO`` where we needed ``OK`` — or with the database
ends the connection; it is opened again after a back-off (1 s doubling to 60 s) and the cursor
says where to go on. The poller never stops the service for that; only a malformed URL does.

imapclient's own logger is kept at WARNING (unless configured otherwise): it logs the login name
at INFO and every protocol line, message content included, at DEBUG.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from typing import Any, TypeVar

from imapclient import DELETED, IMAPClient, SocketTimeout
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select, update

from core import health
from core.clock import utcnow
from core.models import ImapCursor
from mail_gateway.context import Gateway
from mail_gateway.imap_url import ImapAccount, parse_imap_url
from mail_gateway.intake import Envelope, Intake, accept_message
from mail_gateway.mailboxes import Destination, Mailbox, route
from mail_gateway.senders import check_sender

log = logging.getLogger(__name__)

PROCESSED_FOLDER = "Verwerkt"
FAILED_FOLDER = "Fout"

# RFC 2177 §3: a client "SHOULD terminate the IDLE and re-issue it at least every 29 minutes"
# (servers may log out an idle client after 30); a minute's margin.
IDLE_RENEW_SECONDS = 28 * 60.0
IDLE_SLICE_SECONDS = 1.0  # how long one blocking IDLE check may hold a thread: the stop latency
POLL_INTERVAL_SECONDS = 60.0
BACKOFF_INITIAL_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0
# On stop the call in hand may finish (the message being stored and moved); a server that does
# not answer is cut off after this long rather than holding the shutdown for the read timeout.
STOP_GRACE_SECONDS = 10.0
FETCH_CHUNK = 50  # sizes are fetched per chunk, bodies one at a time (up to max_message_size)
CONNECT_TIMEOUT_SECONDS = 15.0
READ_TIMEOUT_SECONDS = 120.0
HEADER_BYTES = 256 * 1024  # enough for any real header; the body is not needed to route

# Checked in this order: the upstream MDA's record of the address it delivered to comes first,
# then what the sender wrote.
RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "To", "Cc")

ClientFactory = Callable[[ImapAccount], IMAPClient]
T = TypeVar("T")


class ImapConnectionLost(Exception):
    """The server said ``BYE`` (RFC 3501 §7.1.5): it is closing the connection."""


@dataclass
class PollReport:
    """What one poll did; ``outcomes`` maps each UID taken to stored / duplicate / refused."""

    uidvalidity: int = 0
    last_uid: int = 0
    stored: int = 0
    duplicates: int = 0
    refused: int = 0
    left_in_folder: int = 0  # handled, but the server would not let us move it
    outcomes: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IntakeDecision:
    envelope: Envelope | None  # None: refused
    reason: str = ""  # English, for the log; never content or a full address
    sender_domain: str = ""


def connect(account: ImapAccount, *, client_class: type[IMAPClient] = IMAPClient) -> IMAPClient:
    """Open and log in (``imaps``: TLS at once; ``imap`` + ``starttls``: upgraded first)."""
    client = client_class(
        account.host,
        account.port,
        ssl=account.tls,
        ssl_context=ssl.create_default_context() if account.tls else None,
        timeout=SocketTimeout(connect=CONNECT_TIMEOUT_SECONDS, read=READ_TIMEOUT_SECONDS),
    )
    try:
        if account.starttls:
            client.starttls(ssl.create_default_context())
        client.login(account.username, account.password)
    except BaseException:
        with contextlib.suppress(Exception):
            client.shutdown()
        raise
    return client


def decide(
    gateway: Gateway, raw: bytes, account: ImapAccount, *, peer: str | None
) -> IntakeDecision:
    """The checks the SMTP listener makes at RCPT and DATA, on what the message itself says.

    ``peer`` is the IMAP server's address: it plays the part of the SMTP client's address for
    ``VERWIJSINDEX_TRUSTED_RELAYS``. The server that delivered into the mailbox wrote the
    Authentication-Results; we cannot see that server, only the mailbox server it fills, so the
    region trusts the results only when that mailbox server is one of its own (listed there).
    """
    try:
        headers = BytesHeaderParser(policy=compat32).parsebytes(
            raw[:HEADER_BYTES], headersonly=True
        )
        found = find_destination(headers, gateway.mail_domain, account.default_mailbox)
        senders = _addresses(headers, "From")
    except Exception:  # a header the parser chokes on: unreadable, not our fault
        return IntakeDecision(None, "headers unreadable")
    if found is None:
        return IntakeDecision(None, "no address of ours among the recipients")
    destination, rcpt_to = found
    if len(senders) != 1:
        return IntakeDecision(None, "not exactly one From address")
    sender = senders[0].lower()
    domain = sender.rpartition("@")[2]
    with Session(gateway.engine) as session:
        decision = check_sender(session, destination, sender)
    if not decision.allowed:
        return IntakeDecision(None, decision.reason, domain)
    verdict = gateway.authenticator.authenticate(
        destination.mailbox,
        raw,
        sender,
        sender_institution=decision.institution_id,
        authenticated_as=None,  # IMAP carries no login of the sender
        peer=peer,
    )
    if not verdict.authentic:
        return IntakeDecision(None, f"not authentic: {verdict.reason}", domain)
    envelope = Envelope(
        transport="imap",
        mail_from=sender,
        rcpt_to=rcpt_to,
        destination=destination,
        institution_id=decision.institution_id,
    )
    return IntakeDecision(envelope, sender_domain=domain)


def find_destination(
    headers: Any, mail_domain: str, default: Mailbox | None = None
) -> tuple[Destination, str] | None:
    """The first recipient address that is one of our mailboxes, with that address."""
    for name in RECIPIENT_HEADERS:
        for address in _addresses(headers, name):
            destination = route(address, mail_domain)
            if destination is not None:
                return destination, address
    if default is not None:
        return Destination(default), f"{default.value}@{mail_domain}"
    return None


def _addresses(headers: Any, name: str) -> list[str]:
    values = [str(value) for value in headers.get_all(name) or []]
    return [address.strip() for _, address in getaddresses(values) if "@" in address]


class ImapIntake:
    """One connection to the account's folder; blocking calls, run in a thread by the poller."""

    def __init__(
        self,
        gateway: Gateway,
        account: ImapAccount,
        *,
        client_factory: ClientFactory | None = None,
        on_stored: Callable[[], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ):
        self.gateway = gateway
        self.account = account
        self.client_factory: ClientFactory = client_factory or connect
        self.on_stored = on_stored or (lambda: None)
        self.should_stop = should_stop or (lambda: False)
        self.folders = {PROCESSED_FOLDER: PROCESSED_FOLDER, FAILED_FOLDER: FAILED_FOLDER}
        self._client: IMAPClient | None = None
        self._writable = True
        self._idling = False
        self.peer: str | None = None  # the IMAP server's address, once connected

    @property
    def client(self) -> IMAPClient:
        if self._client is None:
            raise RuntimeError("the IMAP intake is not connected")
        return self._client

    @property
    def can_idle(self) -> bool:
        return bool(self.client.has_capability("IDLE"))

    def open(self) -> None:
        self._client = self.client_factory(self.account)
        self.peer = _server_address(self._client)
        self._ensure_folders()

    def close(self) -> None:
        """Log out politely; a connection that is already gone is just dropped."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if self._idling:
                client.idle_done()
            client.logout()
        except Exception:
            with contextlib.suppress(Exception):
                client.shutdown()
        self._idling = False

    def abandon(self) -> None:
        """After a failure: close the socket without another word to the server."""
        client, self._client = self._client, None
        self._idling = False
        if client is not None:
            with contextlib.suppress(Exception):
                client.shutdown()

    def interrupt(self) -> None:
        """From another thread: wake a call blocked on a server that does not answer (it then
        fails, and the connection is dropped)."""
        client = self._client
        if client is not None:
            with contextlib.suppress(Exception):
                client.socket().shutdown(socket.SHUT_RDWR)

    # -- folders -------------------------------------------------------------------------------

    def _ensure_folders(self) -> None:
        client = self.client
        prefix = ""
        if client.has_capability("NAMESPACE"):
            personal = client.namespace().personal or ()
            if personal:
                prefix = _text(personal[0][0])
        for name in (PROCESSED_FOLDER, FAILED_FOLDER):
            full = prefix + name
            if not client.folder_exists(full):
                try:
                    client.create_folder(full)
                except IMAPClientAbortError:
                    raise
                except IMAPClientError:
                    if not client.folder_exists(full):  # not just another poller's creation
                        raise
                with _server_may_refuse():
                    client.subscribe_folder(full)  # so mail clients show it to an administrator
                log.info("IMAP %s: created folder %s", self.account.where, full)
            self.folders[name] = full

    # -- polling -------------------------------------------------------------------------------

    def poll(self) -> PollReport:
        """Take every message after the cursor, oldest first; each is stored or refused, moved,
        and only then counted in the cursor."""
        client = self.client
        selected = client.select_folder(self.account.folder)
        uidvalidity = int(selected[b"UIDVALIDITY"])
        self._writable = bool(selected.get(b"READ-WRITE", True))
        key = self.account.cursor_key
        last_uid = _cursor_start(self.gateway.engine, key, uidvalidity, self.account.where)
        report = PollReport(uidvalidity=uidvalidity, last_uid=last_uid)
        # Search again until nothing is new: mail that arrives meanwhile is announced in the
        # answers to our own commands (``* n EXISTS``), and IDLE would not repeat that.
        while uids := self._new_uids(report.last_uid):
            for chunk in _chunks(uids, FETCH_CHUNK):
                sizes = client.fetch(chunk, ["RFC822.SIZE"])
                for uid in chunk:
                    if self.should_stop():
                        return report
                    size = sizes.get(uid, {}).get(b"RFC822.SIZE")
                    self._take(uid, size, report)
                    _advance_cursor(self.gateway.engine, key, uidvalidity, uid)
                    report.last_uid = uid
        return report

    def _new_uids(self, last_uid: int) -> list[int]:
        # "n:*" always includes the highest UID, even when it is below n (RFC 3501 §6.4.8).
        found = self.client.search(["UID", f"{last_uid + 1}:*", "NOT", "DELETED"])
        return sorted(uid for uid in found if uid > last_uid)

    def _take(self, uid: int, size: int | None, report: PollReport) -> None:
        if size is None:
            return  # expunged by someone else since the search
        raw: bytes | None = None
        if size > self.gateway.settings.max_message_size:
            decision = IntakeDecision(None, "larger than the size limit")
        else:
            raw = self._fetch(uid)
            if raw is None:
                return
            decision = decide(self.gateway, raw, self.account, peer=self.peer)
        if decision.envelope is None or raw is None:
            report.refused += 1
            report.outcomes[uid] = "refused"
            log.info(
                "IMAP %s uid %s refused: %s (sender domain %s)",
                self.account.where,
                uid,
                decision.reason,
                decision.sender_domain or "-",
            )
            self._move(uid, FAILED_FOLDER, report)
            return
        outcome = accept_message(self.gateway.engine, self.gateway.vault, raw, decision.envelope)
        if outcome is Intake.STORED:
            report.stored += 1
            self.on_stored()
        else:
            report.duplicates += 1
        report.outcomes[uid] = outcome.value
        self._move(uid, PROCESSED_FOLDER, report)

    def _fetch(self, uid: int) -> bytes | None:
        # BODY.PEEK: reading must not mark the message \Seen (RFC 3501 §6.4.5).
        response = self.client.fetch([uid], ["BODY.PEEK[]"]).get(uid, {})
        raw = response.get(b"BODY[]")
        return bytes(raw) if raw is not None else None

    def _move(self, uid: int, folder: str, report: PollReport) -> None:
        if not self._writable:
            report.left_in_folder += 1
            return
        client, target = self.client, self.folders[folder]
        try:
            if client.has_capability("MOVE"):
                client.move([uid], target)  # RFC 6851: atomic, keeps the flags
            else:
                client.copy([uid], target)
                client.add_flags([uid], [DELETED], silent=True)
                if client.has_capability("UIDPLUS"):
                    client.uid_expunge([uid])  # RFC 4315: only this message
                else:
                    # RFC 3501 EXPUNGE removes every \Deleted message of the folder; the
                    # folder is the gateway's, and \Deleted ones are not taken anyway.
                    client.expunge()
        except IMAPClientAbortError:
            raise
        except IMAPClientError as exc:
            # Handled all the same: the cursor moves past it, so it is not taken twice.
            log.warning(
                "IMAP %s uid %s: the server would not move it to %s (%s); left in the folder",
                self.account.where,
                uid,
                target,
                type(exc).__name__,
            )
            report.left_in_folder += 1

    # -- IDLE ----------------------------------------------------------------------------------

    def start_idle(self) -> None:
        self.client.idle()
        self._idling = True

    def idle_news(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; true when it is time to look: the server announced
        new mail, or the socket woke us with nothing to show. imapclient's ``idle_check``
        swallows an end of file, so a dead connection looks like that; ending IDLE on it then
        fails, and the poller connects again."""
        began = time.monotonic()
        responses = self.client.idle_check(timeout=timeout)
        if not responses:
            return time.monotonic() - began < timeout / 2
        return _news(responses)

    def renew_idle(self) -> bool:
        """End IDLE and begin it again; true when ending it brought news. A server may report
        mail that arrived between our last command and the start of IDLE only when IDLE ends
        (Dovecot 2.3 does), so the first renewal soon after a poll closes that gap."""
        if self.stop_idle():
            return True
        self.start_idle()
        return False

    def stop_idle(self) -> bool:
        if not self._idling:
            return False
        self._idling = False
        _, responses = self.client.idle_done()
        return _news(responses)


def _news(responses: list[Any]) -> bool:
    """New mail among untagged responses (``* n EXISTS``); ``BYE`` means the end."""
    news = False
    for response in responses:
        if response and response[0] == b"BYE":
            raise ImapConnectionLost("the server said BYE")
        news = news or (len(response) > 1 and response[1] in (b"EXISTS", b"RECENT"))
    return news


def poll_once(
    gateway: Gateway,
    client_factory: ClientFactory | None = None,
    *,
    on_stored: Callable[[], None] | None = None,
) -> PollReport:
    """Connect, take what is waiting in the folder, log out. Blocking; for tests and one-shot
    use (the service runs :func:`run_imap_poller`)."""
    account = parse_imap_url(gateway.settings.imap_url or "")
    _quiet_imapclient()
    intake = ImapIntake(gateway, account, client_factory=client_factory, on_stored=on_stored)
    intake.open()
    try:
        return intake.poll()
    finally:
        intake.close()


async def run_imap_poller(
    gateway: Gateway,
    *,
    stop: asyncio.Event,
    poll_interval: float = POLL_INTERVAL_SECONDS,
    idle_timeout: float = IDLE_RENEW_SECONDS,
    client_factory: ClientFactory | None = None,
    backoff: float = BACKOFF_INITIAL_SECONDS,
    max_backoff: float = BACKOFF_MAX_SECONDS,
) -> None:
    """Poll the folder of ``VERWIJSINDEX_IMAP_URL`` until ``stop``; the message in hand is
    finished first. A dropped connection is reopened after a back-off, never fatal."""
    account = parse_imap_url(gateway.settings.imap_url or "")  # a bad URL is fatal, at start
    _quiet_imapclient()
    loop = asyncio.get_running_loop()
    wait_seconds = max(0.0, min(poll_interval, idle_timeout, IDLE_RENEW_SECONDS))

    def wake_processing() -> None:  # from the worker thread: asyncio.Event is not thread-safe
        loop.call_soon_threadsafe(gateway.inbound_waiting.set)

    delay = backoff
    health.roles.imap_runs()
    while not stop.is_set():
        intake = ImapIntake(
            gateway,
            account,
            client_factory=client_factory,
            on_stored=wake_processing,
            should_stop=stop.is_set,
        )
        try:
            await _blocking(intake, stop, intake.open)
            health.roles.imap_connection(True)
            log.info("IMAP intake from %s", account.where)
            while not stop.is_set():
                report = await _blocking(intake, stop, intake.poll)
                delay = backoff
                if report.outcomes:
                    log.info(
                        "IMAP %s: %d stored, %d duplicate, %d refused",
                        account.where,
                        report.stored,
                        report.duplicates,
                        report.refused,
                    )
                await _wait_for_mail(intake, stop, wait_seconds)
        except Exception as exc:
            intake.abandon()
            health.roles.imap_connection(False)
            if stop.is_set():
                log.info("IMAP %s: connection closed while stopping", account.where)
                break
            # A refused login needs a person (a changed password); the rest usually passes.
            level = logging.ERROR if isinstance(exc, LoginError) else logging.WARNING
            log.log(
                level,
                "IMAP %s: %s; connecting again in %.1f s",
                account.where,
                _describe(exc),
                delay,
            )
            await _sleep_unless_stopped(stop, delay)
            delay = min(delay * 2, max_backoff)
        else:
            with contextlib.suppress(Exception):  # a polite LOGOUT; the server may be gone
                await _blocking(intake, stop, intake.close)


async def _wait_for_mail(intake: ImapIntake, stop: asyncio.Event, seconds: float) -> None:
    """IDLE as a wake-up, in short slices so ``stop`` is noticed; or just wait."""
    if not intake.can_idle:
        await _sleep_unless_stopped(stop, seconds)
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    await _blocking(intake, stop, intake.start_idle)
    renewed = False
    try:
        while not stop.is_set():
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            if await _blocking(intake, stop, intake.idle_news, min(remaining, IDLE_SLICE_SECONDS)):
                break
            if not renewed:
                renewed = True
                if await _blocking(intake, stop, intake.renew_idle):
                    break
    except BaseException:
        intake.abandon()  # the connection is dropped anyway; don't let DONE hide the cause
        raise
    await _blocking(intake, stop, intake.stop_idle)


async def _blocking(
    intake: ImapIntake, stop: asyncio.Event, call: Callable[..., T], *args: Any
) -> T:
    """Run a blocking IMAP call in a thread. A stop lets it finish, within STOP_GRACE_SECONDS;
    then the socket is shut so the thread's read returns (and the call fails)."""
    work = asyncio.ensure_future(asyncio.to_thread(call, *args))
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not work.done():
            _, pending = await asyncio.wait({work}, timeout=STOP_GRACE_SECONDS)
            if pending:
                log.warning("IMAP %s: no answer while stopping; closing", intake.account.where)
                intake.interrupt()
        return await work
    finally:
        stopping.cancel()


async def _sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def _quiet_imapclient() -> None:
    """imapclient logs the login name at INFO and every protocol line at DEBUG — message
    content, BSNs included. Keep it at WARNING unless the operator set its level on purpose."""
    logger = logging.getLogger("imapclient")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)


def _describe(exc: BaseException) -> str:
    """Type and the server's short text; imaplib puts no message content in its errors."""
    text = str(exc).strip()[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# -- the cursor ----------------------------------------------------------------------------------


def _cursor_start(engine: Engine, key: str, uidvalidity: int, where: str) -> int:
    """The last UID handled in this UIDVALIDITY; 0 for a new folder or renumbered UIDs."""
    with Session(engine) as session:
        cursor = session.exec(select(ImapCursor).where(ImapCursor.account == key)).first()
        if cursor is not None and cursor.uidvalidity == uidvalidity:
            return cursor.last_uid
        if cursor is None:
            session.add(ImapCursor(account=key, uidvalidity=uidvalidity, last_uid=0))
        else:
            log.warning(
                "IMAP %s: UIDVALIDITY changed (%s → %s); reading the whole folder again",
                where,
                cursor.uidvalidity,
                uidvalidity,
            )
            cursor.uidvalidity, cursor.last_uid, cursor.updated_at = uidvalidity, 0, utcnow()
            session.add(cursor)
        with contextlib.suppress(IntegrityError):  # another poller made it at the same moment
            session.commit()
    return 0


def _advance_cursor(engine: Engine, key: str, uidvalidity: int, uid: int) -> None:
    with Session(engine) as session:
        session.execute(
            update(ImapCursor)
            .where(
                col(ImapCursor.account) == key,
                col(ImapCursor.uidvalidity) == uidvalidity,
                col(ImapCursor.last_uid) < uid,  # several pollers: never back
            )
            .values(last_uid=uid, updated_at=utcnow())
        )
        session.commit()


# -- small helpers -------------------------------------------------------------------------------


@contextlib.contextmanager
def _server_may_refuse() -> Iterator[None]:
    """A ``NO`` to something optional is fine; a dropped connection is not."""
    try:
        yield
    except IMAPClientAbortError:
        raise
    except IMAPClientError:
        pass


def _server_address(client: IMAPClient) -> str | None:
    """The IP address of the server at the other end of the connection, or None."""
    try:
        peer = client.socket().getpeername()
    except (OSError, AttributeError):
        return None
    return str(peer[0]) if isinstance(peer, tuple) and peer else None


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
