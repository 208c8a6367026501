"""Domain events collected in the unit of work and dispatched at its boundary (issue 10.4).

A command publishes its events (``core.notifications.publish``) while it works; they are only
*recorded* here, on the session, in order. They are dispatched when the unit of work they belong
to commits — SQLAlchemy's ``before_commit``, which fires for the transaction and for each
savepoint (``core.audit.savepoint``: one command of a batch) — so a subscriber sees the state its
command left, not a half-done one, and what it writes commits with the command. Events that
subscribers publish while they run are dispatched in the same go, after the ones already waiting.

A rollback forgets what was published in the part it undoes: the whole transaction, or only the
savepoint (the events published inside it, also in savepoints nested in it). Nothing of a
transaction outlives it, however it ends (commit, rollback, or a session closed without either).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session

from core.config import CoreConfig
from core.errors import SystemError_
from core.events import Event

Handler = Callable[[Session, CoreConfig, Event], None]

# An event published by a subscriber of an event published by a subscriber of ... this deep is
# a loop between subscribers, not a command: fail the commit rather than spin.
MAX_CASCADE_DEPTH = 10

_PENDING = "unit_of_work.pending"
_DISPATCHING = "unit_of_work.dispatching"


@dataclass(frozen=True)
class _Recorded:
    config: CoreConfig
    event: Event
    # The innermost transaction or savepoint it was published in: its rollback forgets it.
    transaction: SessionTransaction
    # 0 for a command's own event; n + 1 for one a subscriber of a depth-n event published.
    depth: int


def record(session: Session, config: CoreConfig, event: Event) -> None:
    """Keep ``event`` for dispatch when the current unit of work commits."""
    dispatching: _Recorded | None = session.info.get(_DISPATCHING)
    # An event belongs to a transaction (begun here when nothing was read yet): a rollback of a
    # session with no transaction fires no event, and the next transaction must not inherit it.
    transaction = session.get_nested_transaction() or session.get_transaction() or session.begin()
    session.info.setdefault(_PENDING, deque()).append(
        _Recorded(config, event, transaction, dispatching.depth + 1 if dispatching else 0)
    )


def pending_events(session: Session) -> list[Event]:
    """The events recorded and not dispatched yet, in order."""
    return [recorded.event for recorded in session.info.get(_PENDING, ())]


def dispatch(session: Session, handler: Handler) -> int:
    """Hand every recorded event to ``handler`` in order, then those it publishes, until none is
    left; returns how many were dispatched. Inside a dispatch (a subscriber's own savepoint
    commits) it does nothing: the dispatch under way takes the new events too."""
    if session.info.get(_DISPATCHING) is not None:
        return 0
    pending: deque[_Recorded] = session.info.get(_PENDING, deque())
    dispatched = 0
    try:
        while pending:
            recorded = pending.popleft()  # before it runs: a failed subscriber never runs twice
            if recorded.depth > MAX_CASCADE_DEPTH:
                raise SystemError_(
                    f"domeingebeurtenissen blijven elkaar oproepen ({type(recorded.event).__name__}"
                    f" op diepte {recorded.depth}); de transactie wordt teruggedraaid"
                )
            session.info[_DISPATCHING] = recorded
            handler(session, recorded.config, recorded.event)
            dispatched += 1
    finally:
        session.info.pop(_DISPATCHING, None)
    return dispatched


def _undone_by(recorded: _Recorded, rolled_back: SessionTransaction) -> bool:
    transaction: SessionTransaction | None = recorded.transaction
    while transaction is not None:
        if transaction is rolled_back:
            return True
        transaction = transaction.parent
    return False


@event.listens_for(OrmSession, "after_soft_rollback")
def _forget_rolled_back(session: OrmSession, rolled_back: SessionTransaction) -> None:
    if rolled_back.parent is None:
        session.info.pop(_PENDING, None)
    elif rolled_back.nested:
        pending: deque[_Recorded] = session.info.get(_PENDING, deque())
        kept = [recorded for recorded in pending if not _undone_by(recorded, rolled_back)]
        pending.clear()
        pending.extend(kept)
    # else the inner mark of a failed flush: the transaction must be rolled back as a whole


@event.listens_for(OrmSession, "after_transaction_end")
def _forget_with_transaction(session: OrmSession, transaction: SessionTransaction) -> None:
    # After a commit nothing is left; after Session.close() without commit or rollback the
    # events must not wait for the next transaction of the same session.
    if transaction.parent is None:
        session.info.pop(_PENDING, None)
