"""A Slack form stored before Slack hears "ok" (ARCHITECTURE, step 1, as for mail): what was
submitted, by whom, and where to answer, sealed under the region's keys.

A signal form holds a BSN and a birth date, which are never stored in clear: the form is sealed
(AES-GCM, ``core.sealing``) with the key derived for stored inbound messages, the one the
gateway seals mail with, so ``verwijsindex keys rotate`` reseals a waiting form with the mail.
The stored row is emptied when the form has been processed.

Storing is what the modal waits for, so :class:`FormIntake` keeps it short: forms submitted
together are stored in one transaction (a group commit), on a thread of its own, so they never
queue behind the processing of earlier forms for a worker thread; and processing waits while
forms wait to be stored, so they never queue behind it for the database's write lock either
(SQLite's busy wait backs off up to 100 ms at a time: a store would lose every race).
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import timedelta

from sqlalchemy.engine import Engine

from bot.dedupe import Outcome, SlackRequest, store_all
from bot.identity import Linked
from core.db import run_in_transaction
from core.keyring import KeyRing
from core.sealing import INBOUND_MAIL_PURPOSE, Sealer
from core.settings import Settings

# A stored form is processed in milliseconds and its sender waits for the answer: a process that
# died hands its forms to the recovery worker after this long at most (shorter when the
# processing lease of the settings is shorter: tests).
MAX_LEASE = timedelta(seconds=30)


def submission_lease(settings: Settings) -> timedelta:
    return min(MAX_LEASE, timedelta(seconds=settings.processing_lease_seconds))


@dataclass(frozen=True)
class StoredForm:
    """``kind`` names the form's handler (``bot.submission_processing.HANDLERS``); ``pairs`` are
    its fields as (label, text), for ``core.fields``; ``response_url`` answers in the channel
    where the form was opened while it lasts."""

    kind: str
    linked: Linked
    pairs: tuple[tuple[str, str], ...]
    response_url: str = ""

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> StoredForm:
        decoded = json.loads(data)
        return cls(
            kind=str(decoded["kind"]),
            linked=Linked(**decoded["linked"]),
            pairs=tuple((str(label), str(text)) for label, text in decoded["pairs"]),
            response_url=str(decoded.get("response_url") or ""),
        )


class FormVault:
    """Seals and opens stored forms under the region's key ring."""

    def __init__(self, ring: KeyRing) -> None:
        self._sealer = Sealer(
            ring,
            INBOUND_MAIL_PURPOSE,
            unreadable="een opgeslagen Slack-formulier is niet te lezen met de sleutel",
        )

    def seal(self, form: StoredForm) -> bytes:
        return self._sealer.seal(form.to_json())

    def open(self, sealed: bytes) -> StoredForm:
        return StoredForm.from_json(self._sealer.open(sealed))


_Waiting = tuple[SlackRequest, bytes, "asyncio.Future[Outcome[int]]"]


class FormIntake:
    """Stores forms (each with its request's key, :func:`bot.dedupe.store_all`) in group
    commits: while one commit runs, the forms that arrive wait for the next one."""

    def __init__(self, engine: Engine, ring: KeyRing, *, held_for: timedelta) -> None:
        self.vault = FormVault(ring)
        self._engine = engine
        self._held_for = held_for
        self._waiting: list[_Waiting] = []
        self._writer: asyncio.Task[None] | None = None
        # Set while no form waits to be stored: processing starts only then (LiveProcessing).
        self.idle = asyncio.Event()
        self.idle.set()

    async def store(self, request: SlackRequest, form: StoredForm) -> Outcome[int]:
        """The stored row's id (``Done``), or :class:`~bot.dedupe.AlreadyDone` for a retry."""
        loop = asyncio.get_running_loop()
        stored: asyncio.Future[Outcome[int]] = loop.create_future()
        self._waiting.append((request, self.vault.seal(form), stored))
        self.idle.clear()
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write(), name="slack-form-intake")
        return await stored

    async def _write(self) -> None:
        # A thread of its own for the burst (it ends with the burst): the default executor's
        # threads may all be busy with other work, which the modals must not wait for.
        thread = ThreadPoolExecutor(1, thread_name_prefix="slack-form-intake")
        try:
            await self._write_waiting(thread)
        finally:
            self.idle.set()
            thread.shutdown(wait=False)  # idle now: it ends at once, the loop need not wait

    async def _write_waiting(self, thread: ThreadPoolExecutor) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            batch, self._waiting = self._waiting, []
            work = store_all([(request, sealed) for request, sealed, _ in batch], self._held_for)
            try:
                outcomes = await loop.run_in_executor(
                    thread, run_in_transaction, self._engine, work
                )
            except Exception as exc:  # none of the batch was stored: each listener says so
                for _, _, stored in batch:
                    if not stored.done():
                        stored.set_exception(exc)
                continue
            for (_, _, stored), outcome in zip(batch, outcomes, strict=True):
                if not stored.done():
                    stored.set_result(outcome)
