"""Events → notifications. ``publish`` hands an event to its subscribers (one list, in
``subscribers.SUBSCRIBERS``), which enqueue outbox rows in the caller's transaction."""

from __future__ import annotations

from sqlmodel import Session

from core.config import CoreConfig
from core.events import Event
from core.notifications.subscribers import SUBSCRIBERS


def publish(session: Session, config: CoreConfig, event: Event) -> None:
    for event_type, subscriber in SUBSCRIBERS:
        if isinstance(event, event_type):
            subscriber(session, config, event)


__all__ = ["publish"]
