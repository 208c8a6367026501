"""Where outgoing mail goes (``VERWIJSINDEX_RELAY_URL``, CONTRACT §2): an SMTP relay
(``smtp://[user:pass@]host:port[?starttls=true][&timeout=SECONDS]``) or a maildir
(``maildir:PATH``, the default, for a machine without a relay).

A relay has one method that matters, ``send(message, envelope_from=..., recipients=...)`` (the
message as the bytes to send, CRLF line ends: ``message.MessageTemplate``), and ``close()``,
called when a batch is done. Failures are the outbox's exceptions
(``core.outbox``)::

    DeliveryError
    ├── TemporaryDeliveryError   the row backs off and is tried again:
    │                            relay unreachable or refusing the connection, a timeout, a
    │                            dropped connection, any 4xx, a refused login
    └── PermanentDeliveryError   the row becomes a dead letter, visible in ``outbox list``:
                                 a 5xx for the sender, the recipient or the content

Descriptions name the SMTP code and the stage, never the message or its recipient: they end up
in ``outbox list`` and in the log. A 5xx while *connecting* (greeting, STARTTLS, login) is a
fault of the relay or of our configuration, not of the message, so it is temporary too.

The SMTP connection is kept for a whole batch (a registration's notifications should reach the
relay well within a second, so no handshake per mail) and reopened once when the relay has
dropped it. Once the relay proved unreachable, the rest of the batch fails at once instead of
waiting out a timeout for every row; ``close()`` forgets that for the next batch.
"""

from __future__ import annotations

import contextlib
import logging
import mailbox
import os
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from core.file_privacy import PRIVATE_FILE_MODE
from core.outbox import PermanentDeliveryError, TemporaryDeliveryError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0
SERVICE_CLOSING = 421  # RFC 5321 §3.8: the server is closing the connection


class Relay(Protocol):
    def send(self, message: bytes, *, envelope_from: str, recipients: Sequence[str]) -> None: ...

    def close(self) -> None: ...


class _PrivateMaildir(mailbox.Maildir):
    """A maildir whose message files are ``0600`` whatever the umask: they carry contact
    details and references. The stdlib creates its folders ``0700`` already, but every message
    file ``0666`` minus the umask; this narrows the file in ``tmp/`` before a byte is written,
    so the file renamed into ``new/`` is never readable by others (the maildir protocol forbids
    changing a file once it is in ``new/``: a reader may be taking it). ``_create_tmp`` is the
    stdlib's one place that creates the file (internal, hence absent from typeshed); the
    delivery tests check the resulting mode, so a change there cannot pass unnoticed."""

    def _create_tmp(self) -> Any:
        handle = super()._create_tmp()  # type: ignore[misc]
        os.fchmod(handle.fileno(), PRIVATE_FILE_MODE)
        return handle


@dataclass
class MaildirRelay:
    """Each message a file in ``path/new`` (created when missing, ``0700`` folders and
    ``0600`` files); a maildir is safe to write from several processes at once (a unique name
    in ``tmp/``, then a rename)."""

    path: Path
    _box: mailbox.Maildir | None = field(default=None, init=False, repr=False)

    def send(self, message: bytes, *, envelope_from: str, recipients: Sequence[str]) -> None:
        try:
            if self._box is None:
                self._box = _PrivateMaildir(self.path, create=True)
            self._box.add(message.replace(b"\r\n", b"\n"))  # a file on disk: local line ends
        except OSError as exc:  # a full or unwritable disk may clear up
            raise TemporaryDeliveryError(f"maildir: {type(exc).__name__}") from exc

    def close(self) -> None:
        self._box = None


@dataclass
class SmtpRelay:
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    timeout: float = DEFAULT_TIMEOUT
    tls_context: ssl.SSLContext | None = field(default=None, repr=False)
    # The EHLO name. None: smtplib asks the resolver for this host's FQDN, which on a badly
    # configured machine takes seconds, on every connection.
    local_hostname: str | None = None
    _connection: smtplib.SMTP | None = field(default=None, init=False, repr=False)
    _unreachable: str | None = field(default=None, init=False, repr=False)

    def send(self, message: bytes, *, envelope_from: str, recipients: Sequence[str]) -> None:
        if self._unreachable is not None:
            raise TemporaryDeliveryError(self._unreachable)
        for _ in range(2):
            kept = self._connection is not None
            connection = self._connection or self._connect()
            try:
                refused = connection.sendmail(
                    envelope_from,
                    list(recipients),
                    message,
                    mail_options=_international(connection, message, envelope_from, recipients),
                )
            except smtplib.SMTPRecipientsRefused as exc:  # smtplib has reset the transaction
                codes = [code for code, _ in exc.recipients.values()]
                raise _by_code(min(codes), "recipient refused") from exc
            except smtplib.SMTPResponseException as exc:
                if exc.smtp_code == SERVICE_CLOSING:
                    self.close()
                    if kept:
                        continue  # a kept connection the relay is ending: once more, fresh
                # smtplib has reset the transaction; the connection serves the next message
                raise _by_code(exc.smtp_code, "relay answered") from exc
            except smtplib.SMTPNotSupportedError as exc:  # e.g. a non-ASCII address, no SMTPUTF8
                raise PermanentDeliveryError(
                    "relay does not support what the message needs"
                ) from exc
            except (smtplib.SMTPException, OSError) as exc:  # dropped, timed out, reset
                self.close()
                if kept:
                    continue  # a kept connection the relay dropped while we were idle
                raise TemporaryDeliveryError(f"relay: {type(exc).__name__}") from exc
            if refused:  # several recipients, some refused: retrying would resend to the rest
                codes = [code for code, _ in refused.values()]
                raise PermanentDeliveryError(f"recipient refused {min(codes)}")
            return
        raise TemporaryDeliveryError("relay dropped the connection twice")

    def _connect(self) -> smtplib.SMTP:
        connection: smtplib.SMTP | None = None
        try:
            connection = smtplib.SMTP(
                self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout
            )
            connection.ehlo()
            if self.starttls:
                connection.starttls(context=self.tls_context or ssl.create_default_context())
                connection.ehlo()
            if self.username:
                connection.login(self.username, self.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            # Our configuration, not the message: the rows wait until somebody fixes it.
            self._give_up_for_this_batch(connection, f"relay refused the login ({exc.smtp_code})")
            raise TemporaryDeliveryError(self._unreachable or "") from exc
        except smtplib.SMTPResponseException as exc:
            self._give_up_for_this_batch(connection, f"relay refused us ({exc.smtp_code})")
            raise TemporaryDeliveryError(self._unreachable or "") from exc
        except (smtplib.SMTPException, ssl.SSLError, OSError) as exc:
            self._give_up_for_this_batch(connection, f"relay unreachable: {type(exc).__name__}")
            raise TemporaryDeliveryError(self._unreachable or "") from exc
        self._connection = connection
        return connection

    def _give_up_for_this_batch(self, connection: smtplib.SMTP | None, reason: str) -> None:
        self._unreachable = reason
        if connection is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                connection.close()
        log.warning("relay %s:%d: %s; this batch waits for its retry", self.host, self.port, reason)

    def close(self) -> None:
        """End of the batch: say goodbye, and try the relay afresh next time."""
        self._unreachable = None
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                connection.quit()
            connection.close()


def _international(
    connection: smtplib.SMTP, message: bytes, envelope_from: str, recipients: Sequence[str]
) -> list[str]:
    """RFC 6531: a non-ASCII address (in the envelope, or in the headers as UTF-8) needs the
    relay's SMTPUTF8; without it the message cannot go (``smtplib`` refuses likewise)."""
    if message.isascii() and all(a.isascii() for a in (envelope_from, *recipients)):
        return []
    if not connection.has_extn("smtputf8"):
        raise smtplib.SMTPNotSupportedError("the relay does not offer SMTPUTF8")
    return ["SMTPUTF8", "BODY=8BITMIME"]


def _by_code(code: int, what: str) -> TemporaryDeliveryError | PermanentDeliveryError:
    if 500 <= code < 600:
        return PermanentDeliveryError(f"{what} {code}")
    return TemporaryDeliveryError(f"{what} {code}")


def maildir_path(url: str) -> Path | None:
    """The folder of a ``maildir:PATH`` relay URL; None for an SMTP relay."""
    if not url.startswith("maildir:"):
        return None
    path = url.removeprefix("maildir:")
    if not path:
        raise ValueError("VERWIJSINDEX_RELAY_URL: maildir: needs a path")
    return Path(path).expanduser()


def relay_from_url(url: str, *, local_hostname: str | None = None) -> Relay:
    """``maildir:PATH`` or ``smtp://[user:pass@]host:port[?starttls=true][&timeout=S]``;
    user and password percent-encoded. ``ValueError`` names what is wrong (never the password)."""
    maildir = maildir_path(url)
    if maildir is not None:
        return MaildirRelay(maildir)
    parts = urlsplit(url)
    if parts.scheme != "smtp" or not parts.hostname:
        raise ValueError(
            "VERWIJSINDEX_RELAY_URL must be maildir:PATH or smtp://[user:pass@]host:port"
        )
    try:
        port = parts.port or 25
    except ValueError as exc:
        raise ValueError("VERWIJSINDEX_RELAY_URL: the port is not a number") from exc
    query = parse_qs(parts.query)
    unknown = set(query) - {"starttls", "timeout"}
    if unknown:
        raise ValueError(f"VERWIJSINDEX_RELAY_URL: unknown option(s) {', '.join(sorted(unknown))}")
    starttls = _flag(query.get("starttls", ["false"])[-1])
    try:
        timeout = float(query.get("timeout", [str(DEFAULT_TIMEOUT)])[-1])
    except ValueError as exc:
        raise ValueError("VERWIJSINDEX_RELAY_URL: timeout must be a number of seconds") from exc
    return SmtpRelay(
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        starttls=starttls,
        timeout=timeout,
        local_hostname=local_hostname,
    )


def _flag(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("VERWIJSINDEX_RELAY_URL: starttls must be true or false")
