"""The App Home tab (``views.publish``): the professional's work, from
``core.overview.my_work(..., with_answers=True)``, as Block Kit from
``templates/slack/home.view.j2``.

At the top two buttons: *Signaal afgeven* (the ``/signaal`` form, :mod:`bot.signals`) and
*Afwezigheid melden* (:mod:`bot.absence_form`). Then what awaits the user's answer — a
coordination to accept, decline or hand over, a transfer to carry out, a match's contact and
consent, a signal to inform about or to extend — each with the buttons the notification carries
(same action ids, a reply token of the same subject as value: the mail's, never a DM's, so the
DM is updated as after a mail answer — core.overview), so the handlers of the DMs serve the
Home too.
Then the rest: active signals, matches, the institution's coordinations, a stand-in's duties.

:data:`PAGE_SIZE` items a page, *Vorige* / *Volgende* re-publish the view at another offset
(kept in the view's ``private_metadata``): an item takes at most four blocks, so a page stays
under Slack's 100 blocks in a view whatever the count.

Showing it is a view of data about youths, so it is logged (``work-viewed``): call
:func:`build_home_view` inside a transaction, e.g. ``run_in_transaction(engine, ...)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot.blocks import section
from core.actors import professional_actor
from core.clock import utcnow
from core.config import CoreConfig
from core.errors import NotFound
from core.models import Professional
from core.overview import (
    AwaitingCoordination,
    AwaitingMatch,
    AwaitingSignal,
    AwaitingTransfer,
    MyWork,
    my_work,
)
from core.rendering import SLACK_MAX_VIEW_BLOCKS, TemplateRenderer, fit_slack_blocks

PAGE_SIZE = 20
OPEN_SIGNAL_FORM = "signaal_formulier"  # bot.signals.OPEN_FORM_ACTION: the /signaal form
DECLARE_ABSENCE = "afwezigheid_melden"  # bot.absence_form
PREVIOUS_PAGE = "home_vorige"
NEXT_PAGE = "home_volgende"


@dataclass(frozen=True)
class Entry:
    """One item of the Home's list: ``group`` gives its header, ``kind`` how it is shown."""

    group: str  # awaiting | signals | matches | assignments | stand-in
    kind: str
    item: Any
    duty: int = 0  # for group stand-in: which of work.standing_in_for


def entries_of(work: MyWork) -> list[Entry]:
    """Awaiting an answer first, then the rest; an item awaiting an answer is not repeated."""
    entries: list[Entry] = []
    answering: set[str] = set()
    for awaiting in work.awaiting:
        if isinstance(awaiting, AwaitingCoordination):
            entries.append(Entry("awaiting", "coordination", awaiting))
            answering.add(awaiting.assignment.number)
        elif isinstance(awaiting, AwaitingTransfer):
            entries.append(Entry("awaiting", "transfer", awaiting))
        elif isinstance(awaiting, AwaitingMatch):
            entries.append(Entry("awaiting", "awaiting-match", awaiting))
            answering.add(awaiting.match.number)
        elif isinstance(awaiting, AwaitingSignal):
            entries.append(Entry("awaiting", "awaiting-signal", awaiting))
            answering.add(awaiting.signal.number)
    entries += [Entry("signals", "signal", s) for s in work.signals if s.number not in answering]
    entries += [Entry("matches", "match", m) for m in work.matches if m.number not in answering]
    entries += [
        Entry("assignments", "assignment", a) for a in work.assignments if a.number not in answering
    ]
    for index, duty in enumerate(work.standing_in_for):
        if not duty.current:
            continue
        entries += [
            Entry("stand-in", "signal", s, index) for s in duty.signals if s.number not in answering
        ]
        entries += [
            Entry("stand-in", "match", m, index) for m in duty.matches if m.number not in answering
        ]
    return entries


def page_start(offset: int, total: int) -> int:
    """``offset`` as the start of a page that exists (the list may have shrunk meanwhile)."""
    if total <= 0 or offset <= 0:
        return 0
    offset = min(offset, total - 1)
    return offset - offset % PAGE_SIZE


def build_home_view(
    session: Session,
    config: CoreConfig,
    professional: Professional,
    *,
    offset: int = 0,
    notice: str = "",
    renderer: TemplateRenderer | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The ``{"type": "home", "blocks": [...]}`` view for ``professional`` at ``offset``, with
    ``notice`` (mrkdwn: what the user just did) under its title; logs the view."""
    now = now or utcnow()
    current = session.get(Professional, professional.id) if professional.id else None
    if current is None or not current.active:
        raise NotFound("u staat niet (meer) als actieve hulpverlener in het convenant")
    work = my_work(
        session,
        config,
        current,
        actor=professional_actor(current, "slack"),
        now=now,
        with_answers=True,
    )
    entries = entries_of(work)
    start = page_start(offset, len(entries))
    page = entries[start : start + PAGE_SIZE]
    renderer = renderer or TemplateRenderer(timezone=config.tz)
    rendered = renderer.render_part(
        "slack",
        "home",
        "view",
        {
            "work": work,
            "region": config.covenant.region.name,
            "now": now,
            "lead_days": config.covenant.region.reminder_lead_days,
            "entries": page,
            "counts": _counts(entries),
            "offset": start,
            "total": len(entries),
            "page_size": PAGE_SIZE,
            "previous": start - PAGE_SIZE if start > 0 else None,
            "next": start + PAGE_SIZE if start + PAGE_SIZE < len(entries) else None,
            "open_signal_form": OPEN_SIGNAL_FORM,
            "declare_absence": DECLARE_ABSENCE,
            "previous_action": PREVIOUS_PAGE,
            "next_action": NEXT_PAGE,
        },
    )
    view: dict[str, Any] = json.loads(rendered)
    blocks = _unique_block_ids(view["blocks"])
    if notice:
        blocks.insert(2, section(notice))
    view["blocks"] = fit_slack_blocks(
        blocks,
        max_blocks=SLACK_MAX_VIEW_BLOCKS,
        shortened="Ingekort: Slack toont hier niet meer dan 100 blokken.",
    )
    view["private_metadata"] = json.dumps({"offset": start})
    return view


def offset_of(view: dict[str, Any] | None) -> int:
    """The offset a published Home view was built at (its ``private_metadata``)."""
    try:
        offset = json.loads(str((view or {}).get("private_metadata") or "{}")).get("offset", 0)
    except (ValueError, AttributeError):
        return 0
    return offset if isinstance(offset, int) and offset > 0 else 0


def _counts(entries: list[Entry]) -> dict[str, int]:
    counts = {"awaiting": 0, "signals": 0, "matches": 0, "assignments": 0, "stand-in": 0}
    for entry in entries:
        counts[entry.group] += 1
    return counts


def _unique_block_ids(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each item's buttons come with the notifications' block ids (``antwoord``,
    ``toestemming``); Slack wants a block id once per view, so repeats get a number."""
    seen: dict[str, int] = {}
    for block in blocks:
        block_id = block.get("block_id")
        if not isinstance(block_id, str):
            continue
        seen[block_id] = seen.get(block_id, 0) + 1
        if seen[block_id] > 1:
            block["block_id"] = f"{block_id}-{seen[block_id]}"
    return blocks
