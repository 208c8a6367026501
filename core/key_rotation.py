"""Moving everything keyed to the region's current key (``verwijsindex keys rotate``).

After ``VERWIJSINDEX_SECRET_KEY`` is replaced (the old value in
``VERWIJSINDEX_PREVIOUS_SECRET_KEYS``), new data is written under the new key and old data is
still read with the old one: look-ups digest a BSN under every ring key, sealed values name
their key (core.sealing). The rotation moves, in batches of one transaction each:

- youths: the identity key made again from the decrypted BSN (or, without BSN, the encrypted
  surname|sex and birth date), every encrypted field resealed;
- parent links: per parent digest, all links of that parent at once (so a family never falls
  apart halfway), the digest made again from the encrypted parent BSN, and the family matches
  that carry the digest with it;
- kept inbound mail: resealed;
- the Slack installations' bot tokens (core.slack_installations): resealed.

What was moved no longer matches "not under the current key", so an interrupted rotation just
runs again. The logboek's MAC chain has a key id per row of its own (core.audit).

What cannot be moved: parent links and youths without BSN written before revision 0003, which
kept no encrypted source for their digest. A registration naming the parent again supplies it
(core.youths.add_parents); until then :func:`key_status` counts them, and they stop matching
once the old key is dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, func, inspect, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core import audit
from core.config import CoreConfig
from core.db import run_in_transaction
from core.keyring import KeyRing
from core.matching import lock_family
from core.models import AuditEvent, InboundMessage, Match, SlackInstallation, Youth, YouthParent
from core.sealing import HEADER_BYTES, INBOUND_MAIL_PURPOSE, Sealer, header
from core.slack_installations import token_sealer

DEFAULT_BATCH_SIZE = 500
# A kept mail may be 25 MiB: fewer per transaction than rows of identity fields.
MAIL_BATCH_SIZE = 20

_parents: Table = YouthParent.__table__  # type: ignore[attr-defined]
_inbound: Table = InboundMessage.__table__  # type: ignore[attr-defined]
_installations: Table = SlackInstallation.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class KeyStatus:
    """What is still under a key other than the current one, per key id."""

    current: str
    youths: dict[str, int] = field(default_factory=dict)
    parent_links: dict[str, int] = field(default_factory=dict)
    kept_mail: dict[str, int] = field(default_factory=dict)
    # Of the above, what has no encrypted source for its digest (written before revision 0003).
    unmovable_youths: int = 0
    unmovable_parent_links: int = 0
    unknown_keys: tuple[str, ...] = ()  # old key ids the ring does not hold
    # Logboek events stay under the key they were MACed with (rotation never rewrites the
    # chain: that would void every anchor kept outside). The old key is then only read, to
    # verify them; its holder cannot rewrite them undetected, because the first event under
    # the new key MACs the last old one.
    logboek: dict[str, int] = field(default_factory=dict)
    slack_tokens: dict[str, int] = field(default_factory=dict)  # the installations' bot tokens

    @property
    def remaining(self) -> int:
        return (
            sum(self.youths.values())
            + sum(self.parent_links.values())
            + sum(self.kept_mail.values())
            + sum(self.slack_tokens.values())
        )

    @property
    def movable(self) -> int:
        return self.remaining - self.unmovable_youths - self.unmovable_parent_links

    @property
    def old_keys(self) -> tuple[str, ...]:
        return tuple(
            sorted({*self.youths, *self.parent_links, *self.kept_mail, *self.slack_tokens})
        )


def unknown_key_in_use(session: Session, ring: KeyRing) -> str | None:
    """The id of a key the database is written under that ``ring`` does not hold, if any: the
    latest logboek event's, or a youth's. A service started with another key (another working
    folder with its own generated key, a mistyped setting) would otherwise write new data under
    it beside the old, which it could neither match nor read. Asked before the migrations too,
    of a schema of any revision: a table or column not there yet holds no key id."""
    known = [key.id for key in ring.keys]
    keyed = _tables_with_key_ids(session, AuditEvent, Youth)
    if AuditEvent in keyed:
        last_event = session.exec(
            select(AuditEvent.key_id)
            .where(col(AuditEvent.key_id).is_not(None))
            .order_by(col(AuditEvent.id).desc())
            .limit(1)
        ).first()
        if last_event is not None and last_event not in known:
            return last_event
    if Youth in keyed:
        return session.exec(
            select(Youth.key_id).where(col(Youth.key_id).not_in(known)).limit(1)
        ).first()
    return None


def _tables_with_key_ids(session: Session, *models: Any) -> set[Any]:
    """Those of ``models`` whose table has its ``key_id`` column in this database (0002, 0003
    added them)."""
    schema = inspect(session.connection())
    return {
        model
        for model in models
        if schema.has_table(model.__tablename__)
        and any(column["name"] == "key_id" for column in schema.get_columns(model.__tablename__))
    }


def key_status(session: Session, config: CoreConfig) -> KeyStatus:
    current = config.keys.key_id
    youths = _counts(
        session.exec(
            select(Youth.key_id, func.count())
            .where(Youth.key_id != current)
            .group_by(col(Youth.key_id))
        ).all()
    )
    parent_links = _counts(
        session.exec(
            select(YouthParent.key_id, func.count())
            .where(YouthParent.key_id != current)
            .group_by(col(YouthParent.key_id))
        ).all()
    )
    kept_mail = _sealed_counts(session, _inbound.c.raw, current)
    slack_tokens = _sealed_counts(session, _installations.c.bot_token_sealed, current)
    unmovable_youths = session.exec(
        select(func.count()).select_from(Youth).where(*_youths_unmovable(current))
    ).one()
    unsealed = (
        select(YouthParent.parent_key)
        .where(YouthParent.key_id != current)
        .group_by(col(YouthParent.parent_key))
        .having(func.count(col(YouthParent.parent_bsn_encrypted)) == 0)
    )
    unmovable_links = session.exec(
        select(func.count())
        .select_from(YouthParent)
        .where(col(YouthParent.parent_key).in_(unsealed))
    ).one()
    logboek = _counts(
        session.exec(
            select(AuditEvent.key_id, func.count())
            .where(col(AuditEvent.key_id).is_not(None), AuditEvent.key_id != current)
            .group_by(col(AuditEvent.key_id))
        ).all()
    )
    known = {key.id for key in config.keys.ring.keys}
    unknown = sorted({*youths, *parent_links, *kept_mail, *slack_tokens, *logboek} - known)
    return KeyStatus(
        current,
        youths,
        parent_links,
        kept_mail,
        unmovable_youths,
        unmovable_links,
        tuple(unknown),
        logboek,
        slack_tokens,
    )


def _counts(rows: Any) -> dict[str, int]:
    return {str(key_id): int(count) for key_id, count in rows}


def _sealed_counts(session: Session, sealed: Any, current: str) -> dict[str, int]:
    """Per key id, the values of column ``sealed`` not under ``current``."""
    key_id = func.substr(sealed, 2, HEADER_BYTES - 1)
    return {
        (key.decode("ascii") if isinstance(key, bytes) else str(key)): count
        for key, count in session.connection()
        .execute(select(key_id, func.count()).where(*_not_under(sealed, current)).group_by(key_id))
        .all()
    }


def _not_under(sealed: Any, current: str) -> tuple[Any, ...]:
    # The key id is the sealed value's header (core.sealing): nothing is opened to count it.
    return (sealed != b"", func.substr(sealed, 1, HEADER_BYTES) != header(current))


def _mail_not_under(current: str) -> tuple[Any, ...]:
    return _not_under(_inbound.c.raw, current)


def _youths_unmovable(current: str) -> tuple[Any, ...]:
    return (
        Youth.key_id != current,
        col(Youth.bsn_encrypted).is_(None),
        col(Youth.substitute_encrypted).is_(None),
    )


@dataclass
class RotationReport:
    youths: int = 0
    parent_links: int = 0
    kept_mail: int = 0
    slack_tokens: int = 0

    @property
    def moved(self) -> int:
        return self.youths + self.parent_links + self.kept_mail + self.slack_tokens


def rotate_keys(
    engine: Engine,
    config: CoreConfig,
    *,
    actor: audit.Actor,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> tuple[RotationReport, KeyStatus]:
    """Move everything movable to the current key, one batch per transaction; ``progress`` is
    called with the number of items of each batch done. A batch holding something under a key
    the ring no longer holds fails with the error that names that key (core.keyring)."""
    report = RotationReport()
    steps: list[tuple[str, Callable[[Session], int]]] = [
        ("youths", lambda session: move_youths(session, config, batch_size)),
        ("parent_links", lambda session: move_parent_links(session, config, batch_size)),
        ("kept_mail", lambda session: reseal_kept_mail(session, config, MAIL_BATCH_SIZE)),
        ("slack_tokens", lambda session: reseal_slack_tokens(session, config, batch_size)),
    ]
    for name, step in steps:
        while moved := run_in_transaction(engine, step):
            setattr(report, name, getattr(report, name) + moved)
            if progress is not None:
                progress(moved)

    def finish(session: Session) -> KeyStatus:
        status = key_status(session, config)
        if report.moved:
            audit.record(
                session,
                actor,
                "keys-rotated",
                f"key:{status.current}",
                details={
                    "youths": report.youths,
                    "parent_links": report.parent_links,
                    "kept_mail": report.kept_mail,
                    "slack_tokens": report.slack_tokens,
                    "remaining": status.remaining,
                },
            )
        return status

    return report, run_in_transaction(engine, finish)


def move_youths(session: Session, config: CoreConfig, limit: int) -> int:
    """One batch of youths to the current key; the number moved (0: none left)."""
    keys = config.keys
    current = keys.key_id
    youths = session.exec(
        select(Youth)
        .where(
            Youth.key_id != current,
            # Without a source for the digest a youth cannot move (see the module docstring).
            col(Youth.bsn_encrypted).is_not(None) | col(Youth.substitute_encrypted).is_not(None),
        )
        .order_by(col(Youth.id))
        .limit(limit)
        .with_for_update()
    ).all()
    for youth in youths:
        keys.ring.get(youth.key_id)  # a clear error when the old key is gone
        if youth.bsn_encrypted is not None:
            identity_key = keys.normalized_bsn_digest(keys.decrypt(youth.bsn_encrypted))
            youth.bsn_encrypted = keys.reencrypt(youth.bsn_encrypted)
        else:
            assert youth.substitute_encrypted is not None
            born = keys.decrypt_date(youth.birth_date_encrypted)
            identity_key = keys.substitute_digest(keys.decrypt(youth.substitute_encrypted), born)
            youth.substitute_encrypted = keys.reencrypt(youth.substitute_encrypted)
        if youth.name_encrypted is not None:
            youth.name_encrypted = keys.reencrypt(youth.name_encrypted)
        youth.birth_date_encrypted = keys.reencrypt(youth.birth_date_encrypted)
        youth.identity_key = identity_key
        youth.key_id = current
        session.add(youth)
    session.flush()
    return len(youths)


def move_parent_links(session: Session, config: CoreConfig, limit: int) -> int:
    """One batch of parents (all links of each) to the current key; the links moved."""
    keys = config.keys
    current = keys.key_id
    digests = session.exec(
        select(YouthParent.parent_key)
        .where(YouthParent.key_id != current)
        .group_by(col(YouthParent.parent_key))
        .having(func.count(col(YouthParent.parent_bsn_encrypted)) > 0)
        .order_by(col(YouthParent.parent_key))
        .limit(limit)
    ).all()
    moved = 0
    for old in digests:
        links = session.exec(
            select(YouthParent).where(YouthParent.parent_key == old).with_for_update()
        ).all()
        sealed = next(link.parent_bsn_encrypted for link in links if link.parent_bsn_encrypted)
        for link in links:
            keys.ring.get(link.key_id)
        bsn = keys.decrypt(sealed)
        new = keys.normalized_bsn_digest(bsn)
        # The family's matching takes these locks too: no family match is computed halfway.
        for digest in sorted((old, new)):
            lock_family(session, digest)
        already = set(
            session.exec(select(YouthParent.youth_id).where(YouthParent.parent_key == new)).all()
        )
        for link in links:
            if link.youth_id in already:  # linked under the new digest meanwhile
                session.delete(link)
                continue
            link.parent_key = new
            link.key_id = current
            link.parent_bsn_encrypted = keys.encrypt(bsn)
            session.add(link)
        session.flush()
        session.execute(update(Match).where(col(Match.family_key) == old).values(family_key=new))
        moved += len(links)
    return moved


def reseal_kept_mail(session: Session, config: CoreConfig, limit: int) -> int:
    """One batch of stored inbound mail resealed under the current key; the number resealed."""
    sealer = Sealer(
        config.keys.ring,
        INBOUND_MAIL_PURPOSE,
        unreadable="een opgeslagen bericht is niet te lezen met de sleutel",
    )
    connection = session.connection()
    # Locked: a processing worker that finishes a mail meanwhile erases its content, and the
    # reseal must not bring it back.
    rows = connection.execute(
        select(_inbound.c.id, _inbound.c.raw)
        .where(*_mail_not_under(config.keys.key_id))
        .order_by(_inbound.c.id)
        .limit(limit)
        .with_for_update()
    ).all()
    for message_id, raw in rows:
        connection.execute(
            update(_inbound).where(_inbound.c.id == message_id).values(raw=sealer.reseal(raw))
        )
    return len(rows)


def reseal_slack_tokens(session: Session, config: CoreConfig, limit: int) -> int:
    """One batch of Slack installations' bot tokens resealed under the current key; the number
    resealed."""
    sealer = token_sealer(config.keys.ring)
    connection = session.connection()
    column = _installations.c.bot_token_sealed
    # Locked: a reinstall meanwhile writes a new token, which the reseal must not overwrite.
    rows = connection.execute(
        select(_installations.c.id, column)
        .where(*_not_under(column, config.keys.key_id))
        .order_by(_installations.c.id)
        .limit(limit)
        .with_for_update()
    ).all()
    for installation_id, sealed in rows:
        connection.execute(
            update(_installations)
            .where(_installations.c.id == installation_id)
            .values(bot_token_sealed=sealer.reseal(bytes(sealed)))
        )
    return len(rows)
