"""The daily anchor mail: the logboek's checkpoint (core.audit.make_anchor) to the region's
administrator (covenant ``region.admin_email``), who keeps it outside the database.

A copy of the database that is rolled back to an older, internally consistent state passes
``audit verify``; it fails ``audit verify --anchor`` with any anchor made after the copy was
taken, so an anchor a day limits what a rollback can hide to the last day. When the head does
not verify, the mail says so instead of vouching for it.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from core.audit import ChainBreak, make_anchor
from core.clock import local_date
from core.config import CoreConfig
from core.notifications.dispatch import notify
from core.notifications.recipients import Recipient

KIND = "logboek-anker"


def mail_audit_anchor(session: Session, config: CoreConfig, now: datetime) -> int:
    """Once a region-local day (the outbox key is the date); 0 without ``admin_email``."""
    address = config.covenant.region.admin_email
    if address is None:
        return 0
    day = local_date(now, config.tz).isoformat()
    anchor = make_anchor(session, now)
    if isinstance(anchor, ChainBreak):
        event_id = anchor.event_id
        context = {
            "anchored_on": day,
            "intact": False,
            "event_id": event_id,
            "reason": anchor.reason,
        }
    else:
        event_id = anchor.event_id
        context = {
            "anchored_on": day,
            "intact": True,
            "event_id": event_id,
            "event_count": anchor.event_count,
            "anchor": anchor.to_json(),
        }
    administrator = Recipient(
        address=address, role="administrator", name="beheerder van de verwijsindex"
    )
    return notify(
        session,
        config,
        kind=KIND,
        recipients=[administrator],
        reference=f"L-{event_id}",
        context=context,
        key=day,
        now=now,
    )
