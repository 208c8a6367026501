"""The outbox: notifications waiting to be delivered, whatever the transport.

A core command writes rows with :func:`enqueue` in its own transaction (ARCHITECTURE, step 3);
delivery workers (SMTP or maildir in ``mail_gateway``, Slack in ``bot``) hand them to a
``send`` function through :func:`deliver_due` (step 4). The life of a row::

    enqueue ──▶ pending ──claim_due──▶ sending ──mark_sent──▶ sent
                   ▲                      │
                   │   temporary failure, │ permanent failure,
                   └── after a backoff ◀──┤ or MAX_ATTEMPTS used ──▶ failed (dead letter)
                                          │                            │
                   lease expired (worker  │                            │ retry_failed
                   crashed): claimable ◀──┘                            ▼ (an administrator)
                   again                                            pending

* **Idempotent.** Every row has a unique ``idempotency_key``; enqueueing the same key again
  does nothing, so re-running a command or a scheduled job never notifies twice.
* **One claimant.** A claim sets ``sending`` with a lease (``claimed_until``) in one
  ``UPDATE ... RETURNING``: PostgreSQL skips rows another worker is claiming
  (``FOR UPDATE SKIP LOCKED``); SQLite runs it in a ``BEGIN IMMEDIATE`` transaction, which
  serialises writers. Outcomes are recorded only by the worker that still holds the claim.
* **Crash-safe.** A worker that dies leaves rows in ``sending``; when their lease has expired
  they are claimed again. The lease is short (``VERWIJSINDEX_OUTBOX_LEASE_SECONDS``, 30 s) and
  renewed while the worker works on its batch (:func:`keep_claimed`), so a slow relay never lets
  it run out under a live worker, and what a killed worker held goes out within the lease of
  the next start. ``attempts`` counts claims, so a row that keeps crashing its worker still
  ends as a dead letter.
* **Logged.** Every sent or dead-lettered notification is an event in the logboek, with its
  kind, reference, recipient role and channel — never its context, never its address.
* **Secrets do not outlive delivery.** A context entry :data:`SEALED_KEY` (a link code, sealed:
  core.outbox_secrets) is dropped when its row is sent or dead-lettered.

Delivery is at least once: a worker that sends and then dies before its deliveries are
recorded (:func:`mark_sent_many`, once per batch) has those rows sent again after the lease, so
senders should derive the Message-ID from the idempotency key, letting receivers recognise the
duplicate.

Exceptions a ``send`` function raises::

    DeliveryError                 base
    ├── TemporaryDeliveryError    try again later (SMTP 4xx, connection refused, Slack 429)
    └── PermanentDeliveryError    never going to work (SMTP 5xx, unknown Slack user)

Anything else a ``send`` raises is a bug or an unforeseen failure: logged, and retried as
temporary.
"""

from __future__ import annotations

import base64
import binascii
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlmodel
from sqlalchemy import (
    JSON,
    ColumnElement,
    Insert,
    Select,
    Table,
    Text,
    and_,
    case,
    cast,
    func,
    literal,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, Row
from sqlmodel import Session

from core import metrics
from core.audit import Actor, record
from core.clock import as_utc, utcnow
from core.db import transaction
from core.errors import Conflict, NotFound
from core.leases import LeaseKeeper
from core.models import Channel, OutboxMessage, OutboxStatus
from core.wake import Wake, announce

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 12
DEFAULT_LEASE = timedelta(seconds=30)  # Settings.outbox_lease_seconds; renewed while working
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=6)
BACKOFF_JITTER = 0.2  # ±20 %: rows that failed together (a relay outage) come back spread out
# Start no send once half the lease has gone by without a renewal (the database is away): past
# its lease another worker may be sending the same row. The rest of the batch goes back.
LEASE_BUDGET = 0.5
MAX_ERROR_LENGTH = 1000
IDEMPOTENCY_KEY_LENGTH = 200  # OutboxMessage.idempotency_key; truncating would merge keys
# Deliveries recorded per UPDATE (three bound parameters each; SQLite allows 32,766).
_SENT_PER_UPDATE = 500
_NO_DELAY = timedelta(0)

# Core statements on the table itself (SQLModel's type stubs leave ``__table__`` out).
_outbox: Table = OutboxMessage.__table__  # type: ignore[attr-defined]
_col = _outbox.c

# What the logboek may know about a notification: never its context, never its recipient.
_SUMMARY = (
    _col.id,
    _col.kind,
    _col.reference,
    _col.recipient_role,
    _col.channel,
)
_NOTIFICATION = (
    *_SUMMARY,
    _col.recipient,
    _col.context,
    _col.reply_token,
    _col.in_reply_to,
    _col.idempotency_key,
    _col.attempts,
    _col.professional_id,
    _col.institution_id,
    _col.next_attempt_at,
    _col.created_at,
)


class DeliveryError(Exception):
    """A ``send`` function could not deliver a notification."""


class TemporaryDeliveryError(DeliveryError):
    """Worth trying again later: after ``retry_after`` when the other side said when (Slack's
    HTTP 429 ``Retry-After``), else after the outbox's backoff."""

    def __init__(self, message: str = "", *, retry_after: timedelta | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """Will never succeed as addressed; the row becomes a dead letter at once."""


@dataclass(frozen=True)
class OutboundNotification:
    """One claimed row, as plain data: safe to use after the claim's session has closed."""

    id: int
    kind: str
    channel: str
    recipient: str
    recipient_role: str
    reference: str
    context: dict[str, Any] = field(hash=False)
    reply_token: str | None
    in_reply_to: str | None
    idempotency_key: str
    attempts: int  # this claim included
    professional_id: int | None
    institution_id: str | None
    created_at: datetime | None = None  # for the delivery latency (core.metrics)

    @property
    def mail_parts(self) -> tuple[MailPart, ...]:
        """The files the e-mail carries besides its text and HTML (:class:`MailPart`)."""
        return mail_parts_of(self.context)


# -- files a mail carries ---------------------------------------------------------------------

# A notification's inline images and attachments ride in its context under this key (base64),
# so that the row alone is the whole message at every attempt and on every worker.
MAIL_PARTS_KEY = "mail_parts"
# Secrets a mail carries, sealed (core.outbox_secrets); dropped once the row is sent or dead.
SEALED_KEY = "sealed"


@dataclass(frozen=True)
class MailPart:
    """A file in a notification's e-mail: with ``content_id`` an inline image that the HTML
    shows as ``cid:<content_id>`` (RFC 2392), without it an attachment."""

    filename: str
    content_type: str  # "image/png", "text/csv"
    data: bytes = field(repr=False)
    content_id: str | None = None

    def to_context(self) -> dict[str, str | None]:
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "content_id": self.content_id,
            "data": base64.b64encode(self.data).decode("ascii"),
        }


def mail_parts_context(parts: Sequence[MailPart]) -> dict[str, Any]:
    """The context entry that makes a notification carry ``parts``."""
    return {MAIL_PARTS_KEY: [part.to_context() for part in parts]}


def mail_parts_of(context: dict[str, Any]) -> tuple[MailPart, ...]:
    """The parts :func:`mail_parts_context` put in ``context`` (none for most kinds). A part
    that does not decode is a ``ValueError``: the row can never be sent as it is."""
    parts = []
    for item in context.get(MAIL_PARTS_KEY) or ():
        try:
            data = base64.b64decode(item["data"], validate=True)
            parts.append(
                MailPart(
                    filename=str(item["filename"]),
                    content_type=str(item["content_type"]),
                    data=data,
                    content_id=item.get("content_id"),
                )
            )
        except (KeyError, TypeError, binascii.Error) as exc:
            raise ValueError("a mail part of the notification is malformed") from exc
    return tuple(parts)


@dataclass
class DeliveryReport:
    """What one :func:`deliver_due` round did. ``claimed`` is the sum of the others."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    lost: int = 0  # the claim had passed to another worker when the outcome was reported
    released: int = 0  # handed back unsent: stopping, or the lease could not be renewed


# -- enqueue ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewNotification:
    """One row to add to the outbox (``enqueue_many``)."""

    kind: str
    channel: str
    recipient: str
    recipient_role: str
    reference: str
    context: dict[str, Any]
    idempotency_key: str
    professional_id: int | None = None
    institution_id: str | None = None
    reply_token: str | None = None
    in_reply_to: str | None = None


# Keys per ``IN (...)`` when looking for rows already there (SQLite's bound-parameter limit).
_KEYS_PER_LOOKUP = 500


def enqueue_many(
    session: Session, notifications: Sequence[NewNotification], *, now: datetime | None = None
) -> int:
    """Add notifications in the caller's transaction, set-wise; returns how many were new. The
    one way into the outbox: every notification, receipt and bulk import's chain notice comes
    through here, and a key already there (the same occasion again) adds nothing."""
    moment = _now(now)
    rows: dict[str, dict[str, Any]] = {}
    for notification in notifications:
        Channel(notification.channel)  # ValueError on a channel no worker delivers
        key = notification.idempotency_key
        if len(key) > IDEMPOTENCY_KEY_LENGTH:
            raise ValueError(f"idempotency key longer than {IDEMPOTENCY_KEY_LENGTH} characters")
        rows.setdefault(
            key,
            {
                "idempotency_key": key,
                "kind": notification.kind,
                "channel": notification.channel,
                "recipient": notification.recipient,
                "recipient_role": notification.recipient_role,
                "professional_id": notification.professional_id,
                "institution_id": notification.institution_id,
                "reference": notification.reference,
                "context": dict(notification.context),
                "reply_token": notification.reply_token,
                "in_reply_to": notification.in_reply_to,
                "status": OutboxStatus.PENDING.value,
                "attempts": 0,
                "created_at": moment,
                "next_attempt_at": moment,
            },
        )
    if not rows:
        return 0
    connection = session.connection()
    keys = list(rows)
    for start in range(0, len(keys), _KEYS_PER_LOOKUP):
        chunk = keys[start : start + _KEYS_PER_LOOKUP]
        for existing in connection.execute(
            select(_col.idempotency_key).where(_col.idempotency_key.in_(chunk))
        ).scalars():
            rows.pop(existing, None)
    if not rows:
        return 0
    # ON CONFLICT DO NOTHING still: a concurrent transaction may add the same key meanwhile.
    statement = _insert_ignoring_duplicates(session.get_bind().dialect.name)
    # RETURNING, not rowcount: PostgreSQL drivers report -1 for an INSERT that returns rows.
    added = connection.execute(statement.returning(_col.id), list(rows.values())).all()
    if added:
        announce(session, Wake.OUTBOX)  # delivery workers in every process, once this commits
    return len(added)


def enqueue(session: Session, *, now: datetime | None = None, **fields: Any) -> bool:
    """One notification (:class:`NewNotification`'s fields); False if its key was there."""
    return enqueue_many(session, [NewNotification(**fields)], now=now) == 1


def _insert_ignoring_duplicates(dialect: str) -> Insert:
    if dialect == "postgresql":
        return postgresql.insert(_outbox).on_conflict_do_nothing(index_elements=["idempotency_key"])
    if dialect == "sqlite":
        return sqlite.insert(_outbox).on_conflict_do_nothing(index_elements=["idempotency_key"])
    raise NotImplementedError(f"the outbox supports SQLite and PostgreSQL, not {dialect}")


# -- claim ------------------------------------------------------------------------------------


def claim_due(
    engine: Engine,
    *,
    channel: str,
    worker_id: str,
    limit: int = 20,
    lease: timedelta = DEFAULT_LEASE,
    now: datetime | None = None,
) -> list[OutboundNotification]:
    """Claim up to ``limit`` due rows of ``channel`` for ``worker_id`` until ``now + lease``.

    Due: pending rows whose ``next_attempt_at`` has come, and rows whose worker's lease has
    expired. ``worker_id`` must differ between workers running at the same time.
    """
    moment = _now(now)
    with transaction(engine) as session:
        connection = session.connection()
        _dead_letter_exhausted_leases(session, connection, channel=channel, now=moment)
        due = _due_ids(connection, channel=channel, now=moment, limit=limit)
        claimed = connection.execute(
            update(_outbox)
            .where(_col.id.in_(due))
            .values(
                status=OutboxStatus.SENDING.value,
                claimed_by=worker_id,
                claimed_until=moment + lease,
                attempts=_col.attempts + 1,
            )
            .returning(*_NOTIFICATION)
        ).all()
    in_order = sorted(claimed, key=lambda row: (row.next_attempt_at, row.id))
    return [_notification(row) for row in in_order]


def _due_ids(connection: Connection, *, channel: str, now: datetime, limit: int) -> Select:
    waiting = and_(_col.status == OutboxStatus.PENDING, _col.next_attempt_at <= now)
    abandoned = and_(
        _col.status == OutboxStatus.SENDING, _col.claimed_until < now, _col.attempts < MAX_ATTEMPTS
    )
    query = (
        select(_col.id)
        .where(_col.channel == channel, or_(waiting, abandoned))
        .order_by(_col.next_attempt_at, _col.id)
        .limit(limit)
    )
    return _skip_locked(connection, query)


def _skip_locked(connection: Connection, query: Select) -> Select:
    """PostgreSQL: lock the chosen rows, passing over those another worker is claiming now.
    SQLite needs nothing: BEGIN IMMEDIATE already lets one writer in at a time."""
    if connection.dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True)
    return query


def _dead_letter_exhausted_leases(
    session: Session, connection: Connection, *, channel: str, now: datetime
) -> None:
    """A row whose worker died on every one of its MAX_ATTEMPTS claims probably kills workers:
    stop handing it out."""
    exhausted = _skip_locked(
        connection,
        select(_col.id).where(
            _col.channel == channel,
            _col.status == OutboxStatus.SENDING,
            _col.claimed_until < now,
            _col.attempts >= MAX_ATTEMPTS,
        ),
    )
    rows = connection.execute(
        update(_outbox)
        .where(_col.id.in_(exhausted))
        .values(
            status=OutboxStatus.FAILED.value,
            claimed_until=None,
            last_error="lease expired on every attempt: the worker stopped while sending",
        )
        .returning(*_SUMMARY, _col.attempts, _col.claimed_by)
    ).all()
    _drop_sealed(connection, [row.id for row in rows])
    for row in rows:
        log.warning("outbox:%s dead-lettered: its worker never reported back", row.id)
        actor = _delivery_actor(row.claimed_by or "unknown", row.channel)
        _audit(
            session,
            actor,
            "notification-failed",
            row,
            now,
            reason="lease-expired",
            attempts=row.attempts,
        )


def _notification(row: Row) -> OutboundNotification:
    return OutboundNotification(
        id=row.id,
        kind=row.kind,
        channel=row.channel,
        recipient=row.recipient,
        recipient_role=row.recipient_role,
        reference=row.reference,
        context=dict(row.context or {}),
        reply_token=row.reply_token,
        in_reply_to=row.in_reply_to,
        idempotency_key=row.idempotency_key,
        attempts=row.attempts,
        professional_id=row.professional_id,
        institution_id=row.institution_id,
        created_at=row.created_at,
    )


def release(engine: Engine, notification_ids: Sequence[int], *, worker_id: str) -> int:
    """Hand claimed rows back unsent (shutting down, lease running out); the claim does not
    count as an attempt. Returns how many rows this worker still held."""
    if not notification_ids:
        return 0
    with transaction(engine) as session:
        result = session.connection().execute(
            update(_outbox)
            .where(_col.id.in_(notification_ids), *_held_by(worker_id))
            .values(
                status=OutboxStatus.PENDING.value,
                claimed_until=None,
                attempts=_col.attempts - 1,
            )
        )
        return result.rowcount


def renew(
    engine: Engine,
    notification_ids: Iterable[int],
    *,
    worker_id: str,
    lease: timedelta = DEFAULT_LEASE,
    now: datetime | None = None,
) -> int:
    """Extend ``worker_id``'s claim on those of ``notification_ids`` it still holds (still
    ``sending``: rows it has sent or released are left alone) to ``now + lease``; returns how
    many it still held."""
    ids = list(notification_ids)
    if not ids:
        return 0
    moment = _now(now)
    with transaction(engine) as session:
        result = session.connection().execute(
            update(_outbox)
            .where(_col.id.in_(ids), *_held_by(worker_id))
            .values(claimed_until=moment + lease)
        )
        return result.rowcount


def keep_claimed(
    engine: Engine,
    batch: Sequence[OutboundNotification],
    *,
    worker_id: str,
    lease: timedelta = DEFAULT_LEASE,
    since: float | None = None,
    now: datetime | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> LeaseKeeper:
    """A keeper (not yet started) that renews ``worker_id``'s claim on ``batch`` while the worker
    sends it. ``since``: the ``clock()`` value from before the claim. ``now``: the moment the
    claim was made at, when not the real one (tests); renewals move on from it in real time."""
    ids = [notification.id for notification in batch]
    offset = _now(now) - utcnow()

    def renew_batch() -> None:
        renew(engine, ids, worker_id=worker_id, lease=lease, now=utcnow() + offset)

    return LeaseKeeper(
        renew_batch, lease, name=f"outbox-lease-{worker_id}", since=since, clock=clock
    )


def lease_running_out(keeper: LeaseKeeper) -> bool:
    """Whether the claim kept by ``keeper`` has gone ``LEASE_BUDGET`` of its lease without a
    renewal: then no further send may start."""
    return keeper.remaining() < keeper.lease.total_seconds() * (1 - LEASE_BUDGET)


def _held_by(worker_id: str) -> tuple[Any, ...]:
    # The claim alone decides: past its lease, a row not yet claimed again is still this
    # worker's, and recording what it did beats sending it twice.
    return (_col.status == OutboxStatus.SENDING, _col.claimed_by == worker_id)


# -- outcomes ---------------------------------------------------------------------------------


def mark_sent(
    engine: Engine,
    notification_id: int,
    *,
    worker_id: str,
    message_id: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Record one delivery (:func:`mark_sent_many`); False (and nothing changed) if another
    worker has claimed the row since."""
    delivered = [(notification_id, message_id)]
    return notification_id in mark_sent_many(engine, delivered, worker_id=worker_id, now=now)


def mark_sent_many(
    engine: Engine,
    delivered: Sequence[tuple[int, str | None]],
    *,
    worker_id: str,
    now: datetime | None = None,
) -> set[int]:
    """Record deliveries, ``(notification id, message id)`` each, in one transaction with their
    logboek events (appended to the chain together when it commits); returns the ids recorded:
    those ``worker_id`` still held. A transaction and a chain append per notification cost
    more than sending it (1.5-2 ms), hence one per batch."""
    moment = _now(now)
    message_ids = dict(delivered)
    if not message_ids:
        return set()
    ids = sorted(message_ids)
    with transaction(engine) as session:
        connection = session.connection()
        recorded: list[Row] = []
        for start in range(0, len(ids), _SENT_PER_UPDATE):
            chunk = ids[start : start + _SENT_PER_UPDATE]
            recorded += connection.execute(
                update(_outbox)
                .where(_col.id.in_(chunk), *_held_by(worker_id))
                .values(
                    status=OutboxStatus.SENT.value,
                    sent_at=moment,
                    message_id=case(
                        {i: message_ids[i] for i in chunk}, value=_col.id, else_=null()
                    ),
                    claimed_until=None,
                )
                .returning(*_SUMMARY)
            ).all()
        _drop_sealed(connection, [row.id for row in recorded])
        for row in sorted(recorded, key=lambda row: row.id):
            actor = _delivery_actor(worker_id, row.channel)
            _audit(session, actor, "notification-sent", row, moment)
    done = {row.id for row in recorded}
    for notification_id in sorted(message_ids.keys() - done):
        log.warning("outbox:%s sent by %s, who no longer holds it", notification_id, worker_id)
    return done


def mark_failed(
    engine: Engine,
    notification_id: int,
    *,
    worker_id: str,
    error: str,
    permanent: bool,
    retry_after: timedelta | None = None,
    now: datetime | None = None,
) -> str:
    """Record a failed attempt and return the row's status: ``pending`` (retried after
    ``retry_after``, or else a backoff) or ``failed``. A worker that no longer holds the claim
    changes nothing and gets the row's current status."""
    status = _fail(engine, notification_id, worker_id, error, permanent, _now(now), retry_after)
    if status is not None:
        return status
    with transaction(engine) as session:
        current = _status_of(session.connection(), notification_id)
    if current is None:
        raise NotFound(f"bericht outbox:{notification_id} bestaat niet")
    return current


def _fail(
    engine: Engine,
    notification_id: int,
    worker_id: str,
    error: str,
    permanent: bool,
    now: datetime,
    retry_after: timedelta | None = None,
) -> str | None:
    """The new status, or None when ``worker_id`` no longer holds the claim."""
    with transaction(engine) as session:
        connection = session.connection()
        row = _held_row(connection, notification_id, worker_id)
        if row is None:
            log.warning(
                "outbox:%s failed for %s, who no longer holds it", notification_id, worker_id
            )
            return None
        reason = _dead_letter_reason(row.attempts, permanent)
        if reason is None:
            delay = (
                backoff(row.attempts)
                if retry_after is None
                else min(max(retry_after, _NO_DELAY), BACKOFF_CAP)  # the other side's word
            )
            status, retry_at = OutboxStatus.PENDING.value, {"next_attempt_at": now + delay}
            log.info("outbox:%s attempt %d failed; retry in %s", row.id, row.attempts, delay)
        else:
            status, retry_at = OutboxStatus.FAILED.value, {}
            _drop_sealed(connection, [row.id])
            log.warning(
                "outbox:%s dead-lettered (%s) after %d attempts", row.id, reason, row.attempts
            )
            actor = _delivery_actor(worker_id, row.channel)
            _audit(
                session,
                actor,
                "notification-failed",
                row,
                now,
                reason=reason,
                attempts=row.attempts,
            )
        connection.execute(
            update(_outbox)
            .where(_col.id == notification_id)
            .values(
                status=status,
                claimed_until=None,
                last_error=error[:MAX_ERROR_LENGTH],
                **retry_at,
            )
        )
        return status


def _drop_sealed(connection: Connection, notification_ids: Sequence[int]) -> None:
    """Rows sent or dead-lettered keep no sealed secret (:data:`SEALED_KEY`); the others are
    left as they are."""
    if not notification_ids:
        return
    has_sealed: ColumnElement[bool]
    without: ColumnElement[Any]
    if connection.dialect.name == "postgresql":
        as_jsonb = cast(_col.context, postgresql.JSONB)
        has_sealed = as_jsonb.has_key(SEALED_KEY)
        without = cast(as_jsonb.op("-")(cast(literal(SEALED_KEY), Text)), JSON)
    else:
        has_sealed = func.json_type(_col.context, f"$.{SEALED_KEY}").is_not(None)
        without = func.json_remove(_col.context, f"$.{SEALED_KEY}")
    for start in range(0, len(notification_ids), _SENT_PER_UPDATE):
        chunk = list(notification_ids[start : start + _SENT_PER_UPDATE])
        connection.execute(
            update(_outbox).where(_col.id.in_(chunk), has_sealed).values(context=without)
        )


def _held_row(connection: Connection, notification_id: int, worker_id: str) -> Row | None:
    """The row's summary and attempts, locked, if ``worker_id`` holds its claim."""
    query = select(*_SUMMARY, _col.attempts).where(_col.id == notification_id, *_held_by(worker_id))
    return connection.execute(_lock_for_update(connection, query)).first()


def _lock_for_update(connection: Connection, query: Select) -> Select:
    """PostgreSQL: lock the row, waiting for a worker that is re-claiming it right now (and
    then seeing its claim). SQLite: BEGIN IMMEDIATE has locked the database already."""
    if connection.dialect.name == "postgresql":
        return query.with_for_update()
    return query


def _dead_letter_reason(attempts: int, permanent: bool) -> str | None:
    if permanent:
        return "permanent"
    if attempts >= MAX_ATTEMPTS:
        return "attempts-exhausted"
    return None


def backoff(attempts: int, *, rng: random.Random | None = None) -> timedelta:
    """How long to wait after the ``attempts``-th failed try: 30 s, 1 min, 2 min, 4 min, ...
    doubling up to 6 h, each spread by ±20 % and never past 6 h."""
    doublings = min(max(attempts, 1) - 1, 20)  # 30 s · 2**20 is far past the cap already
    nominal = min(BACKOFF_BASE * 2**doublings, BACKOFF_CAP)
    low, high = 1 - BACKOFF_JITTER, 1 + BACKOFF_JITTER
    spread = rng.uniform(low, high) if rng is not None else random.uniform(low, high)
    return min(nominal * spread, BACKOFF_CAP)


def _delivery_actor(worker_id: str, channel: str) -> Actor:
    return Actor(kind="system", identifier=f"delivery:{worker_id}", channel=channel)


def _audit(
    session: Session, actor: Actor, action: str, row: Row, now: datetime, **extra: Any
) -> None:
    """Log ``row`` (selected with ``_SUMMARY``) in the logboek, without context or address."""
    details = {
        "kind": row.kind,
        "reference": row.reference,
        "recipient_role": row.recipient_role,
        "channel": row.channel,
        **extra,
    }
    record(session, actor, action, f"outbox:{row.id}", details=details, at=now)


def _status_of(connection: Connection, notification_id: int) -> str | None:
    return connection.execute(select(_col.status).where(_col.id == notification_id)).scalar()


# -- the worker's round -----------------------------------------------------------------------


def deliver_due(
    engine: Engine,
    *,
    channel: str,
    worker_id: str,
    send: Callable[[OutboundNotification], str | None],
    limit: int = 20,
    lease: timedelta = DEFAULT_LEASE,
    now: datetime | None = None,
) -> DeliveryReport:
    """Claim a batch and ``send`` each notification (it returns the message id, if any).

    The deliveries are recorded together once the batch is done (:func:`mark_sent_many`: one
    transaction, whatever the batch size); a failure is recorded at once and on its own, so it
    never undoes another's success. The claim is renewed while the batch is sent, however long
    a ``send`` takes; when renewing fails for half a lease, the unsent rest is released rather
    than sent late: past its lease another worker may be sending the same row.
    """
    started = time.monotonic()
    batch = claim_due(
        engine, channel=channel, worker_id=worker_id, limit=limit, lease=lease, now=now
    )
    report = DeliveryReport(claimed=len(batch))
    if not batch:
        return report
    delivered: list[tuple[int, str | None]] = []
    keeper = keep_claimed(engine, batch, worker_id=worker_id, lease=lease, since=started, now=now)
    with keeper:
        try:
            for position, notification in enumerate(batch):
                if lease_running_out(keeper):
                    unsent = [later.id for later in batch[position:]]
                    release(engine, unsent, worker_id=worker_id)
                    report.released = len(unsent)
                    log.warning(
                        "%s released %d notifications: lease not renewed", worker_id, len(unsent)
                    )
                    break
                outcome = _deliver_one(
                    engine, notification, worker_id=worker_id, send=send, now=now
                )
                if isinstance(outcome, Delivered):
                    delivered.append((notification.id, outcome.message_id))
                else:
                    setattr(report, outcome, getattr(report, outcome) + 1)
        finally:
            # Also when the round breaks off: what went out is recorded, not sent again.
            if delivered:
                report.sent = len(mark_sent_many(engine, delivered, worker_id=worker_id, now=now))
                report.lost += len(delivered) - report.sent
                _count_latency(batch, {notification_id for notification_id, _ in delivered})
    return report


def _count_latency(batch: Sequence[OutboundNotification], sent: set[int]) -> None:
    moment = utcnow()
    for notification in batch:
        if notification.id in sent and notification.created_at is not None:
            seconds = (moment - as_utc(notification.created_at)).total_seconds()
            metrics.delivered(notification.channel, seconds)


@dataclass(frozen=True)
class Delivered:
    """``send`` delivered the notification; recorded with the rest of the batch."""

    message_id: str | None


def _deliver_one(
    engine: Engine,
    notification: OutboundNotification,
    *,
    worker_id: str,
    send: Callable[[OutboundNotification], str | None],
    now: datetime | None,
) -> Delivered | str:
    """Send one notification: :class:`Delivered`, or the failure, recorded (retried, failed,
    lost)."""
    try:
        message_id = send(notification)
    except TemporaryDeliveryError as exc:
        return _failure(
            engine, notification, worker_id, _describe(exc), False, now, exc.retry_after
        )
    except PermanentDeliveryError as exc:
        return _failure(engine, notification, worker_id, _describe(exc), True, now)
    except Exception as exc:
        # The message names the row, never its context: the traceback is the developer's.
        log.exception(
            "unexpected error sending outbox:%s (%s %s) over %s",
            notification.id,
            notification.kind,
            notification.reference,
            notification.channel,
        )
        return _failure(engine, notification, worker_id, _describe(exc), False, now)
    return Delivered(message_id)


def _failure(
    engine: Engine,
    notification: OutboundNotification,
    worker_id: str,
    error: str,
    permanent: bool,
    now: datetime | None,
    retry_after: timedelta | None = None,
) -> str:
    status = _fail(engine, notification.id, worker_id, error, permanent, _now(now), retry_after)
    if status is None:
        return "lost"
    return "failed" if status == OutboxStatus.FAILED else "retried"


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# -- administration ---------------------------------------------------------------------------


def retry_failed(
    engine: Engine, notification_id: int, *, actor: Actor, now: datetime | None = None
) -> None:
    """Put a dead letter back in the queue with a fresh set of attempts (``outbox retry``)."""
    moment = _now(now)
    with transaction(engine) as session:
        connection = session.connection()
        row = connection.execute(
            update(_outbox)
            .where(_col.id == notification_id, _col.status == OutboxStatus.FAILED)
            .values(status=OutboxStatus.PENDING.value, attempts=0, next_attempt_at=moment)
            .returning(*_SUMMARY)
        ).first()
        if row is None:
            current = _status_of(connection, notification_id)
            if current is None:
                raise NotFound(f"bericht outbox:{notification_id} bestaat niet")
            raise Conflict(
                f"bericht outbox:{notification_id} heeft status '{current}'; "
                "alleen mislukte berichten ('failed') kunnen opnieuw worden verstuurd"
            )
        _audit(session, actor, "notification-retried", row, moment)


def list_outbox(
    session: Session,
    *,
    status: str | None = None,
    kind: str | None = None,
    channel: str | None = None,
    limit: int = 100,
) -> list[OutboxMessage]:
    """Rows newest first, for ``verwijsindex outbox list``."""
    query = sqlmodel.select(OutboxMessage)
    if status is not None:
        query = query.where(_col.status == status)
    if kind is not None:
        query = query.where(_col.kind == kind)
    if channel is not None:
        query = query.where(_col.channel == channel)
    query = query.order_by(_col.created_at.desc(), _col.id.desc()).limit(limit)
    return list(session.exec(query).all())


def _now(now: datetime | None) -> datetime:
    return as_utc(now) if now is not None else utcnow()


def reply_token_answered(session: Session, message_ids: Sequence[str]) -> str | None:
    """The reply token of the newest notification sent with one of ``message_ids`` (a reply
    that reached another of our addresses names what it answers in its References)."""
    if not message_ids:
        return None
    row = session.exec(
        sqlmodel.select(OutboxMessage)
        .where(
            sqlmodel.col(OutboxMessage.message_id).in_(list(message_ids)),
            sqlmodel.col(OutboxMessage.reply_token).is_not(None),
        )
        .order_by(sqlmodel.col(OutboxMessage.id).desc())
    ).first()
    return row.reply_token if row else None
