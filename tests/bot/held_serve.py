"""Test-only launcher: ``verwijsindex serve`` whose live path stores and acknowledges a Slack form
but never processes it — it writes the stored row's id to ``$HELD_FORM_MARKER`` and waits — so
a test can kill the service between the acknowledgement and the processing
(tests/bot/test_durable_submissions.py). The service itself has no such hook.

    python -m tests.bot.held_serve serve --only slack
"""

from __future__ import annotations

import asyncio
import os
import runpy
import sys
from pathlib import Path

from bot.submission_processing import Answer, LiveProcessing


async def _held(self: LiveProcessing, inbound_id: int) -> Answer | None:
    Path(os.environ["HELD_FORM_MARKER"]).write_text(str(inbound_id))
    await asyncio.Event().wait()  # until the test kills the process
    return None


if __name__ == "__main__":
    # What the listener calls after the acknowledgement.
    LiveProcessing.process = _held  # type: ignore[method-assign]
    sys.argv = ["verwijsindex", *sys.argv[1:]]
    runpy.run_module("cli", run_name="__main__", alter_sys=True)
