"""Events → notifications. A command calls ``publish``; the event waits in the unit of work
(core.unit_of_work) and goes to its subscribers (one list, ``subscribers.SUBSCRIBERS``) when the
command's transaction or savepoint commits; they enqueue outbox rows in that same commit.

The listener sits here, beside ``publish``, so whoever can publish an event has the listener that
dispatches it registered: no event can wait for a dispatcher nobody imported. It goes first among
the ``before_commit`` listeners: the logboek's (core.audit) must run after it, as the very last
step, so the audit events a subscriber records are written and its chain lock is taken last.
"""

from __future__ import annotations

from sqlalchemy.event import listens_for
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from core import unit_of_work
from core.config import CoreConfig
from core.events import Event
from core.notifications.subscribers import SUBSCRIBERS


def publish(session: Session, config: CoreConfig, event: Event) -> None:
    """Record ``event``; its subscribers run when the unit of work commits, not now."""
    unit_of_work.record(session, config, event)


def dispatch_pending(session: Session) -> int:
    """Run the subscribers of the events published so far, now. Only for code that needs their
    outbox rows before its transaction commits; a commit does this by itself."""
    return unit_of_work.dispatch(session, _to_subscribers)


def _to_subscribers(session: Session, config: CoreConfig, event: Event) -> None:
    for event_type, subscriber in SUBSCRIBERS:
        if isinstance(event, event_type):
            subscriber(session, config, event)


@listens_for(OrmSession, "before_commit", insert=True)
def _dispatch_at_commit(session: OrmSession) -> None:
    if isinstance(session, Session):  # publish takes the sqlmodel Session every command uses
        dispatch_pending(session)


__all__ = ["dispatch_pending", "publish"]
