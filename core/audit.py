"""The logboek: every state change and every view of a youth's data, MAC-chained.

Each row's ``hash`` is an HMAC-SHA256 (:func:`event_mac`) over its own fields and the previous
row's MAC, under a key derived from the region's secret (core.keyring) that the row names by
``key_id``. Editing or deleting a row breaks the chain from there on, and without the secret key
nobody can compute a chain that verifies again. The head row (AuditHead: last event, its MAC, the
number of events) carries a MAC of its own, so cutting off the newest events and rewriting the
head to match is detected too. ``verify_chain`` finds the first break.

What the chain alone cannot show is a rollback of the whole database to an older copy: that copy
is internally consistent. An *anchor* (:func:`make_anchor`, ``verwijsindex audit anchor``) is a
MACed checkpoint -- event id, event count, that event's MAC, time -- kept outside the database;
:func:`check_anchor` confirms the chain still holds that event with that MAC.

The key reaches the ``before_commit`` listener through the engine: whoever makes an engine from
the settings binds the region's keyring to it with :func:`use_keyring`. A session on an engine
without one cannot write audit events (there is no unkeyed fallback).

Events are collected during a transaction and written in ``before_commit``: the chain's tail is
read and extended as the very last step, under an exclusive lock (PostgreSQL advisory lock;
SQLite's BEGIN IMMEDIATE already serializes writers). Taking that lock last keeps lock order
fixed, so it cannot deadlock with the youth row locks taken earlier in a command.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, event, func, insert, text, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session, col

from core.clock import as_utc, utcnow
from core.errors import InvalidInput, SystemError_
from core.keyring import KeyRing, SecretKey
from core.models import AuditEvent, AuditHead

log = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
AUDIT_LOCK_ID = 7_110_011  # arbitrary constant for pg_advisory_xact_lock
_PENDING = "audit_pending"
# One purpose label per kind of MAC (core.keyring): a row's MAC can never pass for the head's or
# an anchor's, even over the same bytes.
CHAIN_PURPOSE = b"verwijsindex audit chain v1"
HEAD_PURPOSE = b"verwijsindex audit head v1"
ANCHOR_PURPOSE = b"verwijsindex audit anchor v1"
# The engine execution option that carries the keyring (inherited by every connection).
_KEYRING_OPTION = "verwijsindex_audit_keyring"
ANCHOR_FORMAT = "verwijsindex-logboek-anker"
ANCHOR_VERSION = 1

_events: Table = AuditEvent.__table__  # type: ignore[attr-defined]
_heads: Table = AuditHead.__table__  # type: ignore[attr-defined]


def use_keyring(engine: Engine, keyring: KeyRing) -> None:
    """Bind the region's keys to ``engine``: its sessions MAC what they write to the logboek
    with ``keyring.current`` and verify with any key of the ring."""
    engine.update_execution_options(**{_KEYRING_OPTION: keyring})


def keyring_of(connection: Connection) -> KeyRing:
    keyring = connection.get_execution_options().get(_KEYRING_OPTION)
    if not isinstance(keyring, KeyRing):
        raise SystemError_(
            "het logboek kan niet worden geschreven of gecontroleerd: de database-verbinding "
            "heeft geen sleutel (core.audit.use_keyring ontbreekt waar de engine wordt gemaakt)"
        )
    return keyring


@dataclass(frozen=True)
class Actor:
    """Who does something, and through which channel (smtp, imap, slack, cli, system)."""

    kind: str  # professional | institution | system | municipality | peer (an SMTP client)
    identifier: str  # e-mail, institution id, or job name
    channel: str
    professional_id: int | None = None
    institution_id: str | None = None

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.identifier}"


SYSTEM = Actor(kind="system", identifier="scheduler", channel="system")


def record(
    session: Session,
    actor: Actor,
    action: str,
    subject: str,
    *,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """Queue an audit event; it is written, chained, in the same commit. Never pass identity."""
    # Kept with the (sub)transaction it was recorded in: a savepoint that is rolled back takes
    # its own events along, and only those.
    transaction = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_PENDING, []).append(
        (
            transaction,
            {
                "occurred_at": at or utcnow(),
                "actor": actor.label,
                "action": action,
                "subject": subject,
                "channel": actor.channel,
                "details": details or {},
            },
        )
    )


@contextmanager
def savepoint(session: Session) -> Iterator[None]:
    """One item of a batch (a block of a registration mail): when it fails, its writes *and*
    the audit events it queued are undone, and the rest of the batch goes on."""
    nested = session.begin_nested()
    try:
        yield
    except BaseException:
        nested.rollback()  # its events go with it (_drop_rolled_back)
        raise
    nested.commit()


def _payload(prev: str, row: dict[str, Any], extra: list[Any]) -> bytes:
    return json.dumps(
        [
            prev,
            as_utc(row["occurred_at"]).isoformat(timespec="microseconds"),
            row["actor"],
            row["action"],
            row["subject"],
            row["channel"],
            row["details"],
            *extra,
        ],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    ).encode()


def event_mac(key: SecretKey, prev: str, row: dict[str, Any]) -> str:
    """A row's MAC: its fields, the previous row's MAC and the id of the key it is MACed with."""
    return key.mac(CHAIN_PURPOSE, _payload(prev, row, [key.id]))


def unkeyed_event_hash(prev: str, row: dict[str, Any]) -> str:
    """The SHA-256 of the chain before revision 0002; only the upgrade (and downgrade) of that
    revision reads or writes it, nothing ever accepts it as proof."""
    return hashlib.sha256(_payload(prev, row, [])).hexdigest()


def head_mac(key: SecretKey, last_event_id: int, last_hash: str, event_count: int) -> str:
    message = json.dumps([last_event_id, last_hash, event_count, key.id], separators=(",", ":"))
    return key.mac(HEAD_PURPOSE, message.encode())


@event.listens_for(OrmSession, "before_commit")
def _write_pending(session: OrmSession) -> None:
    if session.in_nested_transaction():
        # A savepoint's release (before_commit fires for it too): the events wait for the
        # transaction's commit, or a later rollback of an outer savepoint would take events of
        # commands outside it along.
        return
    queued = session.info.pop(_PENDING, None)
    if not queued:
        return
    pending = [row for _transaction, row in queued]
    session.flush()
    connection = session.connection()
    key = keyring_of(connection).current
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": AUDIT_LOCK_ID})
    head = connection.execute(sa_select(AuditHead).where(col(AuditHead.id) == 1)).first()
    prev = head.last_hash if head else GENESIS_HASH
    for row in pending:
        row["prev_hash"] = prev
        row["key_id"] = key.id
        row["hash"] = prev = event_mac(key, prev, row)
    connection.execute(insert(AuditEvent), pending)
    last_id: int = connection.execute(
        sa_select(_events.c.id).where(_events.c.hash == prev)
    ).scalar_one()
    # Read under the lock above, so no other writer moved the head in between.
    count = (head.event_count if head else 0) + len(pending)
    values = {
        "last_event_id": last_id,
        "last_hash": prev,
        "event_count": count,
        "key_id": key.id,
        "mac": head_mac(key, last_id, prev, count),
    }
    if head is None:
        connection.execute(insert(AuditHead).values(id=1, **values))
    else:
        connection.execute(update(AuditHead).where(col(AuditHead.id) == 1).values(**values))


@event.listens_for(OrmSession, "after_soft_rollback")
def _drop_rolled_back(session: OrmSession, rolled_back: SessionTransaction) -> None:
    """A rolled-back transaction drops its queued events; a rolled-back savepoint only those
    recorded inside it (or inside savepoints within it) — the events of the commands before it
    in the same transaction stay."""
    if rolled_back.parent is None:
        session.info.pop(_PENDING, None)
    elif rolled_back.nested:
        queued = session.info.get(_PENDING, [])
        queued[:] = [
            (transaction, row)
            for transaction, row in queued
            if not _within(transaction, rolled_back)
        ]


@event.listens_for(OrmSession, "after_transaction_end")
def _drop_with_session(session: OrmSession, transaction: SessionTransaction) -> None:
    # Session.close() without commit or rollback: nothing may wait for the next transaction.
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


def _within(transaction: SessionTransaction | None, outer: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False


@dataclass(frozen=True)
class ChainBreak:
    event_id: int
    reason: str


def _rows_in_order(connection: Connection, batch: int = 5000) -> Iterator[dict[str, Any]]:
    last_id = 0
    columns = [
        _events.c[name]
        for name in (
            "id", "occurred_at", "actor", "action", "subject", "channel", "details",
            "prev_hash", "hash", "key_id",
        )
    ]  # fmt: skip
    while True:
        rows = (
            connection.execute(
                sa_select(*columns)
                .where(_events.c.id > last_id)
                .order_by(_events.c.id)
                .limit(batch)
            )
            .mappings()
            .all()
        )
        if not rows:
            return
        for row in rows:
            yield dict(row)
        last_id = rows[-1]["id"]


def _key_for(keyring: KeyRing, key_id: str | None, what: str) -> SecretKey | str:
    """The key ``what`` was MACed with, or why there is none."""
    if key_id is None:
        return (
            f"{what} has no MAC (no key id): written before the logboek was keyed (revision "
            "0002) and left unkeyed because its unkeyed chain was already broken then, or "
            "written since by someone without the key"
        )
    try:
        return keyring.get(key_id)
    except SystemError_ as exc:
        return f"{what} is MACed with key {key_id}, which is not in the keyring: {exc.message}"


def verify_chain(session: Session) -> tuple[int, ChainBreak | None]:
    """Walk the log in id order; return (events checked, first break or None)."""
    connection = session.connection()
    keyring = keyring_of(connection)
    prev = GENESIS_HASH
    count = 0
    last_id = 0
    for row in _rows_in_order(connection):
        count += 1
        last_id = row["id"]
        if row["prev_hash"] != prev:
            return count, ChainBreak(last_id, "prev_hash does not match the previous event")
        key = _key_for(keyring, row["key_id"], "the event")
        if isinstance(key, str):
            return count, ChainBreak(last_id, key)
        if not hmac.compare_digest(row["hash"], event_mac(key, prev, row)):
            return count, ChainBreak(last_id, "contents were changed after writing")
        prev = row["hash"]
    head = connection.execute(sa_select(_heads).where(_heads.c.id == 1)).mappings().first()
    if head is None:
        if count:
            return count, ChainBreak(last_id, "the log has events but no head: it was removed")
        return count, None
    head_key = _key_for(keyring, head["key_id"], "the head")
    if isinstance(head_key, str):
        return count, ChainBreak(last_id, head_key)
    expected = head_mac(head_key, head["last_event_id"], head["last_hash"], head["event_count"])
    if not hmac.compare_digest(head["mac"] or "", expected):
        return count, ChainBreak(
            last_id, "the head was rewritten (its MAC does not match): events were deleted?"
        )
    if (head["last_hash"], head["event_count"], head["last_event_id"]) != (prev, count, last_id):
        return count, ChainBreak(
            last_id,
            f"the log ends after {count} events but its head records {head['event_count']}: "
            "events were deleted",
        )
    return count, None


# -- anchors ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Anchor:
    """A checkpoint of the chain to keep outside the database (``audit anchor``)."""

    event_id: int
    event_count: int
    event_mac: str
    created_at: datetime
    key_id: str
    mac: str

    def _message(self) -> bytes:
        return json.dumps(
            [
                ANCHOR_FORMAT,
                ANCHOR_VERSION,
                self.event_id,
                self.event_count,
                self.event_mac,
                as_utc(self.created_at).isoformat(timespec="seconds"),
                self.key_id,
            ],
            separators=(",", ":"),
        ).encode()

    def to_json(self) -> str:
        """One line of JSON: what the anchor file (and the daily mail) holds."""
        return json.dumps(
            {
                "format": ANCHOR_FORMAT,
                "version": ANCHOR_VERSION,
                "event_id": self.event_id,
                "event_count": self.event_count,
                "event_mac": self.event_mac,
                "created_at": as_utc(self.created_at).isoformat(timespec="seconds"),
                "key_id": self.key_id,
                "mac": self.mac,
            },
            separators=(",", ":"),
        )

    @classmethod
    def parse(cls, content: str) -> Anchor:
        """The anchor in a file: the JSON line on its own, or within a saved mail's text."""
        for line in content.splitlines():
            line = line.strip()
            if not (line.startswith("{") and ANCHOR_FORMAT in line):
                continue
            try:
                data = json.loads(line)
                if data["format"] != ANCHOR_FORMAT or data["version"] != ANCHOR_VERSION:
                    break
                return cls(
                    event_id=int(data["event_id"]),
                    event_count=int(data["event_count"]),
                    event_mac=str(data["event_mac"]),
                    created_at=as_utc(datetime.fromisoformat(data["created_at"])),
                    key_id=str(data["key_id"]),
                    mac=str(data["mac"]),
                )
            except (ValueError, KeyError, TypeError):
                break
        raise InvalidInput("het bestand bevat geen logboek-anker (versie 1)", field="anker")


def _anchor_mac(key: SecretKey, anchor: Anchor) -> str:
    return key.mac(ANCHOR_PURPOSE, anchor._message())


def make_anchor(session: Session, now: datetime | None = None) -> Anchor | ChainBreak:
    """An anchor for the chain's head as it is now, MACed with the current key; a break when
    the head itself does not verify (an anchor must not vouch for a rewritten head).

    Only the head and its last event are checked, so this is cheap enough to run daily; the
    rest of the chain is what ``verify_chain`` checks."""
    connection = session.connection()
    keyring = keyring_of(connection)
    head = connection.execute(sa_select(_heads).where(_heads.c.id == 1)).mappings().first()
    if head is None:
        return ChainBreak(0, "the log is empty: there is nothing to anchor yet")
    head_key = _key_for(keyring, head["key_id"], "the head")
    if isinstance(head_key, str):
        return ChainBreak(head["last_event_id"], head_key)
    expected = head_mac(head_key, head["last_event_id"], head["last_hash"], head["event_count"])
    last = connection.execute(
        sa_select(_events.c.hash).where(_events.c.id == head["last_event_id"])
    ).scalar()
    if not hmac.compare_digest(head["mac"] or "", expected) or last != head["last_hash"]:
        return ChainBreak(head["last_event_id"], "the head does not match the log")
    key = keyring.current
    unsigned = Anchor(
        event_id=head["last_event_id"],
        event_count=head["event_count"],
        event_mac=head["last_hash"],
        created_at=as_utc(now or utcnow()).replace(microsecond=0),
        key_id=key.id,
        mac="",
    )
    return replace(unsigned, mac=_anchor_mac(key, unsigned))


def check_anchor(session: Session, anchor: Anchor) -> ChainBreak | None:
    """Whether the log still holds the anchored event, with the anchored MAC and as many events
    up to it: an older copy of the database (fewer events) or a chain rewritten up to that
    point fails. Check the chain itself with :func:`verify_chain` as well."""
    connection = session.connection()
    key = _key_for(keyring_of(connection), anchor.key_id, "the anchor")
    if isinstance(key, str):
        return ChainBreak(anchor.event_id, key)
    if not hmac.compare_digest(anchor.mac, _anchor_mac(key, anchor)):
        return ChainBreak(anchor.event_id, "the anchor itself was changed (its MAC does not match)")
    created = f"the anchor of {anchor.created_at.isoformat()}"
    mac = connection.execute(
        sa_select(_events.c.hash).where(_events.c.id == anchor.event_id)
    ).scalar()
    if mac is None:
        return ChainBreak(
            anchor.event_id,
            f"event {anchor.event_id} of {created} is not in the log: the database was rolled "
            "back to an older copy, or the log was cut",
        )
    if not hmac.compare_digest(mac, anchor.event_mac):
        return ChainBreak(
            anchor.event_id, f"the log was rewritten up to {created}: its MAC differs"
        )
    count = connection.execute(
        sa_select(func.count()).select_from(_events).where(_events.c.id <= anchor.event_id)
    ).scalar_one()
    if count != anchor.event_count:
        return ChainBreak(
            anchor.event_id,
            f"the log holds {count} events up to {created}, which counted {anchor.event_count}",
        )
    return None


# -- revision 0002: keying the unkeyed chain ----------------------------------------------------


def _rechain(
    connection: Connection,
    check: Callable[[str, dict[str, Any]], str | None],
    seal: Callable[[str, dict[str, Any]], tuple[str, str | None]],
    head_values: Callable[[int, str, int], dict[str, Any]],
    batch: int = 5000,
) -> tuple[int, ChainBreak | None]:
    """Walk the chain checking each row's link and MAC as it is (``check``: why not, or None),
    and write the chain anew with ``seal`` (new MAC, key id); nothing is written when any row
    fails, so a break is never laundered into a valid chain."""
    prev_old = prev_new = GENESIS_HASH
    count = 0
    last_id = 0
    updates: list[dict[str, Any]] = []
    for row in _rows_in_order(connection):
        count += 1
        last_id = row["id"]
        reason = (
            "prev_hash does not match the previous event"
            if row["prev_hash"] != prev_old
            else check(prev_old, row)
        )
        if reason is not None:
            return count, ChainBreak(last_id, reason)
        prev_old = row["hash"]
        new_hash, key_id = seal(prev_new, row)
        updates.append({"b_id": last_id, "prev_hash": prev_new, "hash": new_hash, "key_id": key_id})
        prev_new = new_hash
    head = connection.execute(sa_select(_heads).where(_heads.c.id == 1)).mappings().first()
    if head is not None and (head["last_hash"], head["event_count"]) != (prev_old, count):
        return count, ChainBreak(last_id, "the log does not end where its head says")
    statement = (
        update(_events)
        .where(_events.c.id == bindparam("b_id"))
        .values(
            prev_hash=bindparam("prev_hash"), hash=bindparam("hash"), key_id=bindparam("key_id")
        )
    )
    for start in range(0, len(updates), batch):
        connection.execute(statement, updates[start : start + batch])
    if head is not None:
        connection.execute(
            update(_heads)
            .where(_heads.c.id == 1)
            .values(last_hash=prev_new, **head_values(last_id, prev_new, count))
        )
    return count, None


def key_unkeyed_chain(connection: Connection, keyring: KeyRing) -> tuple[int, ChainBreak | None]:
    """Revision 0002's upgrade: check the SHA-256 chain written before it and, when intact,
    MAC every row and the head with the current key. A broken chain is left as it is (its
    rows keep no key id, so ``verify_chain`` reports them)."""
    key = keyring.current

    def check(prev: str, row: dict[str, Any]) -> str | None:
        if row["key_id"] is not None or row["hash"] != unkeyed_event_hash(prev, row):
            return "contents were changed after writing"
        return None

    def seal(prev: str, row: dict[str, Any]) -> tuple[str, str | None]:
        return event_mac(key, prev, row), key.id

    def head(last_id: int, last_hash: str, count: int) -> dict[str, Any]:
        return {"key_id": key.id, "mac": head_mac(key, last_id, last_hash, count)}

    return _rechain(connection, check, seal, head)


def unkey_chain(connection: Connection, keyring: KeyRing) -> tuple[int, ChainBreak | None]:
    """Revision 0002's downgrade: check the MAC chain and write it back as the SHA-256 chain
    the code before 0002 verifies. (The downgraded chain is only as strong as that one.)"""

    def check(prev: str, row: dict[str, Any]) -> str | None:
        key = _key_for(keyring, row["key_id"], "the event")
        if isinstance(key, str):
            return key
        return None if row["hash"] == event_mac(key, prev, row) else "contents were changed"

    def seal(prev: str, row: dict[str, Any]) -> tuple[str, str | None]:
        return unkeyed_event_hash(prev, row), None

    def head(last_id: int, last_hash: str, count: int) -> dict[str, Any]:
        return {"key_id": None, "mac": None}

    return _rechain(connection, check, seal, head)
