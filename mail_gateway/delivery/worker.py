"""The mail delivery worker (ARCHITECTURE, step 4): claims due e-mail rows from the outbox,
renders them, sends them through the relay and records the outcome.

* **Envelope sender ``postmaster@DOMAIN``**, for every kind. RFC 3834 advises a null sender
  (``MAIL FROM:<>``) for automatic answers, so that a failing answer cannot start a loop. We
  deviate, for receipts and error reports too, because (1) the loop cannot happen here:
  ``postmaster@`` is one of our own mailboxes, whose mail is kept for an administrator and never
  answered, and the intake answers no null sender, bounce or ``Auto-Submitted`` mail
  (RFC 3834 §2); (2) a bounce is news an administrator needs: a coordination request or a receipt
  listing refused rows that never arrived means a covenant address is wrong; (3) relays that
  take SMTP AUTH often refuse a null sender, and SPF cannot align a null sender with the
  ``From`` domain for DMARC.
* **A notification that cannot be rendered** (no template for its kind, a key missing from its
  context: ``StrictUndefined``) will never render: a permanent failure, so a dead letter at once,
  logged with its kind, reference and outbox id and the error's type, never its context.
* **Logging**: outbox id, kind, reference and the recipient's *domain*; never the full address,
  never the context (STYLE; ``core.outbox`` keeps the logboek the same way).
* **Stopping**: the batch in hand is finished first, then the loop returns; rows not yet claimed
  stay pending for the next start, so a SIGTERM loses nothing.
* **Lease**: the batch's claim lasts ``VERWIJSINDEX_OUTBOX_LEASE_SECONDS`` and is renewed while
  the relay takes its time (``core.outbox.deliver_due``); after a SIGKILL the next start sends
  what was claimed once that short lease has run out.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Callable
from datetime import datetime, timedelta

import jinja2
from sqlalchemy.engine import Engine

from core import outbox
from core.installation import installation_id
from core.models import Channel
from core.outbox import DeliveryReport, OutboundNotification, PermanentDeliveryError
from core.outbox_secrets import opened_context
from core.rendering import RenderedEmail, TemplateRenderer
from core.settings import Settings
from mail_gateway.delivery.dkim_signing import DkimSigner, DkimSigningRelay
from mail_gateway.delivery.message import (
    MessageTemplate,
    UnsendableNotification,
    message_id_salt,
    reply_address,
    single_address,
)
from mail_gateway.delivery.relay import Relay, relay_from_url

log = logging.getLogger(__name__)

BATCH_SIZE = 50
# While mail keeps coming, a batch waits this long after the wake-up for more to gather.
GATHER_SECONDS = 0.05


def default_worker_id() -> str:
    """Unique per worker: the outbox records outcomes only for the worker holding the claim."""
    return f"mail@{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def recipient_domain(address: str) -> str:
    """What the log may say about a recipient: ``@domain``."""
    return "@" + address.rpartition("@")[2] if "@" in address else "(no address)"


def _unrenderable(notification: OutboundNotification, error: Exception) -> PermanentDeliveryError:
    """Rendering is deterministic: what fails now fails on every retry. The error is named by
    its type only: the message of a template error may quote the context."""
    log.warning(
        "outbox:%s %s %s cannot be rendered (%s): dead letter",
        notification.id,
        notification.kind,
        notification.reference,
        type(error).__name__,
    )
    return PermanentDeliveryError(f"rendering failed: {type(error).__name__}")


class MailDelivery:
    """Renders and sends one batch at a time through one relay connection (synchronous: the
    async loop runs :meth:`deliver_batch` in a thread)."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        region_name: str,
        relay: Relay | None = None,
        renderer: TemplateRenderer | None = None,
        worker_id: str | None = None,
        batch_size: int = BATCH_SIZE,
    ):
        self.engine = engine
        self.mail_domain = settings.mail_domain
        self.keyring = settings.keyring()  # opens what a notification carries sealed
        self.template = MessageTemplate(
            mail_domain=settings.mail_domain,
            region_name=region_name,
            message_id_salt=message_id_salt(self.keyring, installation_id(engine)),
        )
        self.envelope_from = f"postmaster@{settings.mail_domain}"  # see the module docstring
        self.relay = relay or relay_from_url(settings.relay_url, local_hostname=self.mail_domain)
        if settings.dkim_key is not None:  # signed here: the relay does not (dkim_signing)
            signer = DkimSigner.from_file(
                settings.dkim_key,
                domain=settings.dkim_domain or settings.mail_domain,
                selector=settings.dkim_selector,
            )
            self.relay = DkimSigningRelay(self.relay, signer)
        self.renderer = renderer or TemplateRenderer(settings.templates_dir)
        self.worker_id = worker_id or default_worker_id()
        self.batch_size = batch_size
        self.lease = timedelta(seconds=settings.outbox_lease_seconds)

    def render(self, notification: OutboundNotification) -> RenderedEmail:
        context = dict(notification.context)
        if notification.reply_token:
            context["reply_address"] = reply_address(notification.reply_token, self.mail_domain)
        try:
            # A sealed secret (core.outbox_secrets) is opened here only, for this rendering.
            return self.renderer.render_email(
                notification.kind, opened_context(self.keyring, context)
            )
        except Exception as exc:
            # jinja2's TemplateNotFound is an OSError too, but no retry will make it appear.
            if isinstance(exc, OSError) and not isinstance(exc, jinja2.TemplateError):
                raise  # an unreadable template folder may come back: retried as temporary
            raise _unrenderable(notification, exc) from exc

    def send(self, notification: OutboundNotification) -> str:
        """Render, build and send one notification; returns its Message-ID (``deliver_due``
        stores it, for replies found by ``In-Reply-To``)."""
        rendered = self.render(notification)
        try:
            recipient = single_address(notification.recipient)
            message = self.template.build(notification, rendered)
        except UnsendableNotification as exc:
            log.warning(
                "outbox:%s %s %s: %s",
                notification.id,
                notification.kind,
                notification.reference,
                exc,
            )
            raise PermanentDeliveryError(str(exc)) from exc
        self.relay.send(message.raw, envelope_from=self.envelope_from, recipients=[recipient])
        log.info(
            "sent outbox:%s %s %s to %s %s",
            notification.id,
            notification.kind,
            notification.reference,
            notification.recipient_role,
            recipient_domain(recipient),
        )
        return message.message_id

    def deliver_batch(
        self, *, now: datetime | None = None, keep_connection: bool = False
    ) -> DeliveryReport:
        """Claim up to ``batch_size`` rows due at ``now``, send them, record each outcome.

        The relay connection is closed afterwards, unless ``keep_connection`` and every row
        went out: then the next batch uses it too (a busy worker does not open a connection,
        with STARTTLS and a login, for every few rows). After any failure the next batch
        starts afresh, so a relay that proved unreachable is tried again."""
        clean = False
        try:
            report = outbox.deliver_due(
                self.engine,
                channel=Channel.EMAIL.value,
                worker_id=self.worker_id,
                send=self.send,
                limit=self.batch_size,
                lease=self.lease,
                now=now,
            )
            clean = report.sent == report.claimed
            return report
        finally:
            if not (keep_connection and clean):
                self.relay.close()

    def close(self) -> None:
        """Let go of the relay connection (idle, or stopping)."""
        self.relay.close()


async def run_mail_delivery(
    engine: Engine,
    settings: Settings,
    *,
    region_name: str,
    stop: asyncio.Event,
    wake: asyncio.Event | None = None,
    poll_interval: float = 1.0,
    worker_id: str | None = None,
    delivery_factory: Callable[[], MailDelivery] | None = None,
) -> None:
    """Deliver until ``stop`` is set, then return once the batch in hand is done.

    A batch runs as soon as ``wake`` is set (a command just wrote to the outbox) or
    ``poll_interval`` seconds have passed (retries coming due, other processes' rows); while
    batches come back full the next one starts at once. The relay connection is kept from one
    batch to the next while wake-ups keep coming, and closed once a ``poll_interval`` passed
    without one.
    """
    if delivery_factory is not None:
        delivery = delivery_factory()
    else:
        delivery = MailDelivery(engine, settings, region_name=region_name, worker_id=worker_id)
    wake = wake or asyncio.Event()
    log.info("mail delivery %s started", delivery.worker_id)
    try:
        while not stop.is_set():
            wake.clear()  # set again while the batch runs: the loop goes round at once
            try:
                report = await asyncio.to_thread(delivery.deliver_batch, keep_connection=True)
            except Exception:
                # The database is away, say: the claimed rows come back when their lease ends.
                log.exception("mail delivery round failed; trying again in %.1f s", poll_interval)
                report = DeliveryReport()
            if report.claimed:
                log.debug(
                    "batch: %d sent, %d retried, %d failed",
                    report.sent,
                    report.retried,
                    report.failed,
                )
                if report.claimed >= delivery.batch_size:
                    continue  # there may be more waiting
            if not await _until_set(wake, stop, timeout=poll_interval):
                await asyncio.to_thread(delivery.close)  # idle: no connection held open
            elif report.claimed:
                # Busy: let the next notifications gather, so one claim and one "sent" take a
                # batch, not one or two rows each (each is a write: on SQLite, the one writer).
                await _until_set(stop, stop, timeout=GATHER_SECONDS)
    finally:
        await asyncio.to_thread(delivery.close)
    log.info("mail delivery %s stopped", delivery.worker_id)


async def _until_set(wake: asyncio.Event, stop: asyncio.Event, *, timeout: float) -> bool:
    """Wait for ``wake`` or ``stop``, ``timeout`` at most; returns whether either was set."""
    waiters = {asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())}
    try:
        done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return bool(done)
