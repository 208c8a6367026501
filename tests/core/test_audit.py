"""The logboek's MAC chain (core.audit): what ``verify_chain`` and ``check_anchor`` detect, on the
suite's database (SQLite, or PostgreSQL in the PostgreSQL run), with the tampering done in SQL
as someone with database access but without the secret key would do it."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core import audit
from core.audit import (
    GENESIS_HASH,
    SYSTEM,
    Anchor,
    ChainBreak,
    check_anchor,
    event_mac,
    head_mac,
    key_unkeyed_chain,
    make_anchor,
    unkeyed_event_hash,
    use_keyring,
    verify_chain,
)
from core.audit_anchor import mail_audit_anchor
from core.config import CoreConfig
from core.db import create_db_engine, transaction
from core.errors import InvalidInput, SystemError_
from core.keyring import KeyRing
from core.models import AuditEvent, AuditHead, OutboxMessage, metadata
from tests.conftest import TEST_KEYRING, TEST_SECRET
from tests.core.conftest import MONDAY, CoreDriver

EVENTS: Any = AuditEvent.__table__  # type: ignore[attr-defined]
HEAD: Any = AuditHead.__table__  # type: ignore[attr-defined]
NEW_SECRET = "the-next-region-secret-after-a-rotation-0123456789"
ATTACKER = KeyRing.of(b"a-key-the-attacker-made-up-for-himself-0123456789")


def _log(engine: Engine, count: int) -> None:
    """``count`` events, one transaction each (as commands write them)."""
    for n in range(count):
        with transaction(engine) as session:
            audit.record(session, SYSTEM, "test-event", f"test:{n}", details={"n": n})


def _verify(engine: Engine) -> tuple[int, ChainBreak | None]:
    with Session(engine) as session:
        return verify_chain(session)


def _rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(select(EVENTS).order_by(EVENTS.c.id)).mappings()
        return [dict(row) for row in rows]


def _head(engine: Engine) -> dict[str, Any]:
    with engine.connect() as connection:
        return dict(connection.execute(select(HEAD)).mappings().one())


def _rechain_from(engine: Engine, first_id: int, seal: Any) -> None:
    """Recompute every link from ``first_id`` on, and the head, with ``seal(prev, row)``."""
    rows = _rows(engine)
    prev = GENESIS_HASH
    with engine.begin() as connection:
        for row in rows:
            if row["id"] >= first_id:
                row["prev_hash"] = prev
                row["hash"] = seal(prev, row)
                connection.execute(
                    update(EVENTS)
                    .where(EVENTS.c.id == row["id"])
                    .values(prev_hash=row["prev_hash"], hash=row["hash"])
                )
            prev = row["hash"]
        connection.execute(update(HEAD).values(last_hash=prev))


# -- what the chain alone detects -----------------------------------------------------------------


def test_an_intact_chain_verifies_and_names_its_key(engine: Engine) -> None:
    _log(engine, 3)
    assert _verify(engine) == (3, None)
    assert {row["key_id"] for row in _rows(engine)} == {TEST_KEYRING.current.id}
    head = _head(engine)
    assert head["key_id"] == TEST_KEYRING.current.id and head["event_count"] == 3
    key = TEST_KEYRING.current
    assert head["mac"] == head_mac(key, head["last_event_id"], head["last_hash"], 3)


def test_an_edited_event_is_detected(engine: Engine) -> None:
    _log(engine, 3)
    with engine.begin() as connection:
        connection.execute(update(EVENTS).where(EVENTS.c.id == 2).values(subject="test:99"))
    assert _verify(engine) == (2, ChainBreak(2, "contents were changed after writing"))


def test_a_deleted_event_is_detected(engine: Engine) -> None:
    _log(engine, 4)
    with engine.begin() as connection:
        connection.execute(delete(EVENTS).where(EVENTS.c.id == 2))
    assert _verify(engine) == (2, ChainBreak(3, "prev_hash does not match the previous event"))


def test_a_chain_rehashed_without_the_key_is_detected(engine: Engine) -> None:
    """Before the chain was keyed, editing an event and recomputing the SHA-256 links after it
    (and the head) made a chain that verified. Neither that nor a MAC under a key of one's own
    passes now."""
    _log(engine, 4)
    with engine.begin() as connection:
        connection.execute(update(EVENTS).where(EVENTS.c.id == 2).values(subject="test:99"))
    _rechain_from(engine, 2, lambda prev, row: event_mac(ATTACKER.current, prev, row))
    assert _verify(engine) == (2, ChainBreak(2, "contents were changed after writing"))

    _rechain_from(engine, 1, unkeyed_event_hash)
    assert _verify(engine) == (1, ChainBreak(1, "contents were changed after writing"))
    with engine.begin() as connection:
        connection.execute(update(EVENTS).values(key_id=None))
    count, chain_break = _verify(engine)
    assert count == 1 and chain_break is not None and "no MAC" in chain_break.reason


def test_a_cut_tail_with_a_rewritten_head_is_detected(engine: Engine) -> None:
    """Deleting the newest events leaves an intact, shorter chain; rewriting the head to match
    it passed before the head had a MAC."""
    _log(engine, 5)
    kept = _rows(engine)[2]
    with engine.begin() as connection:
        connection.execute(delete(EVENTS).where(EVENTS.c.id > kept["id"]))
        connection.execute(
            update(HEAD).values(last_event_id=kept["id"], last_hash=kept["hash"], event_count=3)
        )
    count, chain_break = _verify(engine)
    assert count == 3 and chain_break is not None
    assert "head was rewritten" in chain_break.reason

    forged = head_mac(ATTACKER.current, kept["id"], kept["hash"], 3)
    with engine.begin() as connection:
        connection.execute(update(HEAD).values(mac=forged))
    assert "head was rewritten" in (_verify(engine)[1] or ChainBreak(0, "")).reason


def test_a_cut_tail_under_an_untouched_head_is_detected(engine: Engine) -> None:
    _log(engine, 3)
    with engine.begin() as connection:
        connection.execute(delete(EVENTS).where(EVENTS.c.id == 3))
    count, chain_break = _verify(engine)
    assert count == 2 and chain_break is not None and "events were deleted" in chain_break.reason


def test_an_engine_without_the_key_writes_no_events(database_url: str) -> None:
    unkeyed = create_db_engine(database_url)
    try:
        metadata.create_all(unkeyed)
        with pytest.raises(SystemError_, match="geen sleutel"), transaction(unkeyed) as session:
            audit.record(session, SYSTEM, "test-event", "test:1")
        with Session(unkeyed) as session, pytest.raises(SystemError_, match="geen sleutel"):
            verify_chain(session)
        with unkeyed.connect() as connection:
            assert connection.execute(select(EVENTS)).first() is None
    finally:
        unkeyed.dispose()


# -- key rotation ---------------------------------------------------------------------------------


def test_after_a_rotation_older_events_verify_with_the_previous_key(engine: Engine) -> None:
    _log(engine, 2)
    with Session(engine) as session:
        anchor = make_anchor(session)
    assert isinstance(anchor, Anchor)
    rotated = KeyRing.of(NEW_SECRET.encode(), [TEST_SECRET.encode()])
    use_keyring(engine, rotated)
    _log(engine, 2)
    assert [row["key_id"] for row in _rows(engine)] == [TEST_KEYRING.current.id] * 2 + [
        rotated.current.id
    ] * 2
    assert _head(engine)["key_id"] == rotated.current.id
    assert _verify(engine) == (4, None)
    with Session(engine) as session:
        assert check_anchor(session, anchor) is None

    use_keyring(engine, KeyRing.of(NEW_SECRET.encode()))
    count, chain_break = _verify(engine)
    assert count == 1 and chain_break is not None
    assert f"key {TEST_KEYRING.current.id}, which is not in the keyring" in chain_break.reason
    assert "VERWIJSINDEX_PREVIOUS_SECRET_KEYS" in chain_break.reason
    with Session(engine) as session:
        refused = check_anchor(session, anchor)
    assert refused is not None and "not in the keyring" in refused.reason


# -- anchors --------------------------------------------------------------------------------------


def test_an_anchor_survives_a_round_trip_and_later_events(engine: Engine) -> None:
    _log(engine, 3)
    with Session(engine) as session:
        anchor = make_anchor(session, MONDAY)
    assert isinstance(anchor, Anchor)
    assert (anchor.event_count, anchor.key_id) == (3, TEST_KEYRING.current.id)
    text = anchor.to_json()
    assert Anchor.parse(text) == anchor
    assert Anchor.parse(f"Beste beheerder,\n\nHet anker:\n\n{text}\n-- \n") == anchor
    _log(engine, 2)
    with Session(engine) as session:
        assert check_anchor(session, Anchor.parse(text)) is None


def test_a_rollback_to_an_older_copy_passes_the_chain_but_not_the_anchor(engine: Engine) -> None:
    _log(engine, 3)
    older_head = _head(engine)  # the copy: three events and their head
    _log(engine, 2)
    with Session(engine) as session:
        anchor = make_anchor(session)
    assert isinstance(anchor, Anchor) and anchor.event_count == 5
    with engine.begin() as connection:
        connection.execute(delete(EVENTS).where(EVENTS.c.id > older_head["last_event_id"]))
        connection.execute(update(HEAD).values(**older_head))

    assert _verify(engine) == (3, None)  # the older copy is consistent in itself
    with Session(engine) as session:
        chain_break = check_anchor(session, anchor)
    assert chain_break is not None and chain_break.event_id == anchor.event_id
    assert "rolled back to an older copy" in chain_break.reason


def test_an_event_replaced_up_to_the_anchor_is_detected(engine: Engine) -> None:
    """Even a chain rebuilt with the key (say, from a restored older copy that then took other
    writes) does not hold the anchored MAC at the anchored event."""
    _log(engine, 3)
    with Session(engine) as session:
        anchor = make_anchor(session)
    assert isinstance(anchor, Anchor)
    with engine.begin() as connection:
        connection.execute(update(EVENTS).where(EVENTS.c.id == 1).values(subject="test:99"))
    _rechain_from(engine, 1, lambda prev, row: event_mac(TEST_KEYRING.current, prev, row))
    with Session(engine) as session:
        chain_break = check_anchor(session, anchor)
    assert chain_break is not None and "rewritten up to the anchor" in chain_break.reason


def test_a_changed_anchor_is_refused(engine: Engine) -> None:
    _log(engine, 3)
    with Session(engine) as session:
        anchor = make_anchor(session)
        assert isinstance(anchor, Anchor)
        later = dataclasses.replace(anchor, event_id=1, event_count=1)
        chain_break = check_anchor(session, later)
    assert chain_break is not None and "anchor itself was changed" in chain_break.reason
    with pytest.raises(InvalidInput):
        Anchor.parse("geen anker")


def test_no_anchor_vouches_for_a_rewritten_head(engine: Engine) -> None:
    with Session(engine) as session:
        assert isinstance(make_anchor(session), ChainBreak)  # nothing logged yet
    _log(engine, 3)
    with engine.begin() as connection:
        connection.execute(update(HEAD).values(event_count=2))
    with Session(engine) as session:
        refused = make_anchor(session)
    assert isinstance(refused, ChainBreak) and "head does not match" in refused.reason


# -- the daily mail -------------------------------------------------------------------------------


def test_the_administrator_gets_one_anchor_a_day(core: CoreDriver) -> None:
    address = core.config.covenant.region.admin_email
    assert address is not None
    assert core.run(lambda s: mail_audit_anchor(s, core.config, MONDAY)) == 1
    assert core.run(lambda s: mail_audit_anchor(s, core.config, MONDAY + timedelta(hours=3))) == 0
    assert core.run(lambda s: mail_audit_anchor(s, core.config, MONDAY + timedelta(days=1))) == 1
    first, next_day = core.outbox("logboek-anker")
    assert next_day.context["anchored_on"] == "2026-03-03"
    assert (first.recipient, first.channel, first.recipient_role) == (
        address,
        "email",
        "administrator",
    )
    assert first.context["intact"] is True and first.context["anchored_on"] == "2026-03-02"
    with Session(core.engine) as session:
        assert check_anchor(session, Anchor.parse(first.context["anchor"])) is None


def test_the_mail_warns_instead_of_anchoring_a_rewritten_head(core: CoreDriver) -> None:
    with core.engine.begin() as connection:
        connection.execute(update(HEAD).values(event_count=99))
    core.run(lambda s: mail_audit_anchor(s, core.config, MONDAY))
    [warning] = core.outbox("logboek-anker")
    assert warning.context["intact"] is False and "anchor" not in warning.context
    assert "head does not match" in warning.context["reason"]


def test_without_an_admin_address_no_anchor_is_mailed(core: CoreDriver) -> None:
    covenant = core.config.covenant
    config = CoreConfig(
        covenant=covenant.model_copy(
            update={"region": covenant.region.model_copy(update={"admin_email": None})}
        ),
        keys=core.config.keys,
    )
    assert core.run(lambda s: mail_audit_anchor(s, config, MONDAY)) == 0
    with Session(core.engine) as session:
        assert session.execute(select(OutboxMessage)).first() is None


# -- keying the chain written before revision 0002 ------------------------------------------------


def _write_unkeyed_chain(engine: Engine, count: int) -> None:
    """Events as the code before revision 0002 wrote them: SHA-256 links, no key id."""
    prev = GENESIS_HASH
    with engine.begin() as connection:
        for n in range(count):
            row: dict[str, Any] = {
                "occurred_at": MONDAY + timedelta(minutes=n),
                "actor": "system:scheduler",
                "action": "test-event",
                "subject": f"test:{n}",
                "channel": "system",
                "details": {"n": n},
                "prev_hash": prev,
            }
            row["hash"] = prev = unkeyed_event_hash(prev, row)
            connection.execute(insert(EVENTS).values(**row))
        connection.execute(
            insert(HEAD).values(id=1, last_event_id=count, last_hash=prev, event_count=count)
        )


def test_an_intact_unkeyed_chain_is_keyed(engine: Engine) -> None:
    _write_unkeyed_chain(engine, 4)
    assert "no MAC" in (_verify(engine)[1] or ChainBreak(0, "")).reason
    with engine.begin() as connection:
        assert key_unkeyed_chain(connection, TEST_KEYRING) == (4, None)
    assert _verify(engine) == (4, None)
    _log(engine, 1)
    assert _verify(engine) == (5, None)


def test_a_broken_unkeyed_chain_is_left_unkeyed(engine: Engine) -> None:
    _write_unkeyed_chain(engine, 4)
    with engine.begin() as connection:
        connection.execute(update(EVENTS).where(EVENTS.c.id == 3).values(subject="test:99"))
    before = _rows(engine)
    with engine.begin() as connection:
        result = key_unkeyed_chain(connection, TEST_KEYRING)
    assert result == (3, ChainBreak(3, "contents were changed after writing"))
    assert _rows(engine) == before
    assert _verify(engine)[1] is not None


def test_a_rolled_back_savepoint_takes_only_its_own_events_along(engine: Engine) -> None:
    """A batch of commands in one transaction, each in a savepoint (a mail of fifty
    registrations): the one that fails loses its events, the commands before and after it
    keep theirs — also with savepoints inside savepoints."""
    with transaction(engine) as session:
        audit.record(session, SYSTEM, "before", "test:1")
        with pytest.raises(InvalidInput), audit.savepoint(session):
            audit.record(session, SYSTEM, "failed", "test:2")
            with audit.savepoint(session):  # released, but inside the one that fails
                audit.record(session, SYSTEM, "failed-inner", "test:3")
            audit.record(session, SYSTEM, "failed-after-inner", "test:4")
            raise InvalidInput("this block is refused")
        with audit.savepoint(session):
            audit.record(session, SYSTEM, "after", "test:5")
    assert [row["action"] for row in _rows(engine)] == ["before", "after"]
    assert _verify(engine) == (2, None)


def test_a_rolled_back_transaction_and_a_closed_session_write_nothing(engine: Engine) -> None:
    with Session(engine) as session:
        audit.record(session, SYSTEM, "rolled-back", "test:1")
        session.rollback()
        audit.record(session, SYSTEM, "closed-without-commit", "test:2")
    with Session(engine) as session:
        audit.record(session, SYSTEM, "kept", "test:3")
        session.commit()
    assert [row["action"] for row in _rows(engine)] == ["kept"]
