"""The App Home tab (``views.publish`` on ``app_home_opened``): the professional's active
signals with their end dates, matches with the partners' contact details, the open
coordination assignments of their institution with deadlines, and absence status — the same
overview as ``/verwijsindex mijn`` (``core.overview.my_work``), as Block Kit from
``templates/slack/home.view.j2``.

Showing it is a view of data about youths, so it is logged (``work-viewed``): call
:func:`build_home_view` inside a transaction, e.g. ``run_in_transaction(engine, ...)``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlmodel import Session

from core.actors import professional_actor
from core.clock import utcnow
from core.config import CoreConfig
from core.errors import NotFound
from core.models import Professional
from core.overview import my_work
from core.rendering import SLACK_MAX_VIEW_BLOCKS, TemplateRenderer, fit_slack_blocks

ITEMS_PER_LIST = 20  # each list is cut here; with every list full the view stays < 100 blocks


def build_home_view(
    session: Session,
    config: CoreConfig,
    professional: Professional,
    *,
    renderer: TemplateRenderer | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The ``{"type": "home", "blocks": [...]}`` view for ``professional``; logs the view."""
    now = now or utcnow()
    current = session.get(Professional, professional.id) if professional.id else None
    if current is None or not current.active:
        raise NotFound("u staat niet (meer) als actieve hulpverlener in het convenant")
    work = my_work(session, config, current, actor=professional_actor(current, "slack"), now=now)
    renderer = renderer or TemplateRenderer(timezone=config.tz)
    rendered = renderer.render_part(
        "slack",
        "home",
        "view",
        {
            "work": work,
            "region": config.covenant.region.name,
            "now": now,
            "limit": ITEMS_PER_LIST,
            "lead_days": config.covenant.region.reminder_lead_days,
        },
    )
    view: dict[str, Any] = json.loads(rendered)
    view["blocks"] = fit_slack_blocks(
        view["blocks"],
        max_blocks=SLACK_MAX_VIEW_BLOCKS,
        shortened="Ingekort: Slack toont hier niet meer dan 100 blokken.",
    )
    return view
