"""After any change to a youth's registrations or signals, derive the rest again."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from core.config import CoreConfig
from core.coordination import reconcile_coordination
from core.matching import reconcile_client_match, reconcile_family_matches
from core.models import Coordination, Match


def reconcile_youth(
    session: Session, config: CoreConfig, youth_id: int, now: datetime
) -> tuple[Match | None, Coordination | None]:
    session.flush()
    match = reconcile_client_match(session, config, youth_id, now)
    reconcile_family_matches(session, config, youth_id, now)
    coordination = reconcile_coordination(session, config, youth_id, now)
    return match, coordination
