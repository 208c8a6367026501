"""The recovery worker of the Slack role: forms that were stored and acknowledged but not
processed (the process died in between) are processed after all, once.

On start and then every half lease, it claims the Slack forms whose lease ran out
(``core.inbound_claims``, the claim the mail processing uses) and processes each through the
same handler as the live path (``bot.submission_processing``), keeping its claim while it works
(``core.leases``). Several ``serve`` processes on one database may each run one: the claim and
the guarded update let only one process a form.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from bot.context import Bot
from bot.stored_submissions import FormVault, submission_lease
from bot.submission_processing import fail_if_exhausted, process_stored
from core.inbound_claims import InboundQueue, claim_next, release_claims, renew_claims
from core.leases import LeaseKeeper

log = logging.getLogger(__name__)

BATCH_SIZE = 20
MIN_POLL_SECONDS = 1.0


async def run_submission_recovery(
    bot: Bot, stop: asyncio.Event, *, poll_interval: float | None = None
) -> None:
    """Process forms left waiting until ``stop``; the form in hand is finished first."""
    vault = FormVault(bot.config.keys.ring)
    lease = submission_lease(bot.settings)
    interval = poll_interval or max(MIN_POLL_SECONDS, lease.total_seconds() / 2)
    while not stop.is_set():
        try:
            claimed = await asyncio.to_thread(
                claim_next, bot.engine, queue=InboundQueue.SLACK, lease=lease, limit=BATCH_SIZE
            )
        except Exception:  # the database is away, say: the next round tries again
            log.exception("claiming stored Slack forms failed")
            claimed = []
        for position, inbound_id in enumerate(claimed):
            if stop.is_set():
                await asyncio.to_thread(release_claims, bot.engine, claimed[position:])
                return
            await asyncio.to_thread(recover, bot, vault, inbound_id, lease)
        if claimed:
            bot.outbox_waiting.set()  # the answers and the commands' notifications
        if len(claimed) < BATCH_SIZE:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)


def recover(bot: Bot, vault: FormVault, inbound_id: int, lease: timedelta) -> None:
    """Process one claimed form, holding its claim meanwhile."""

    def renew() -> None:
        renew_claims(bot.engine, [inbound_id], lease)

    try:
        with LeaseKeeper(renew, lease, name=f"slack-form-lease-{inbound_id}"):
            answer = process_stored(bot, vault, inbound_id, later=True)
    except Exception:
        log.exception("stored Slack form %s failed", inbound_id)
        if fail_if_exhausted(bot, inbound_id):
            log.warning("stored Slack form %s failed repeatedly: given up", inbound_id)
        return
    log.info("stored Slack form %s: %s", inbound_id, "processed" if answer else "done elsewhere")
