"""``serve --workers N`` (issue 10.8): the parent keeps the listeners and runs processing and
delivery in N child processes; ``--workers 0`` keeps everything in one process. (Killing a
worker, the whole service, and SIGTERM under load: test_crash_recovery.)"""

from __future__ import annotations

import signal
from pathlib import Path

from tests.mail_gateway.conftest import wait_until
from tests.mail_gateway.serve_process import Service, running


def test_workers_stop_by_themselves_when_their_parent_is_killed(
    tmp_path: Path, database_url: str
) -> None:
    """No orphans working on: the pipe from the parent closes, and each worker drains."""
    service = Service(tmp_path, database_url, workers=2)
    service.start()
    try:
        children = service.wait_for_children(2)
        service.kill(signal.SIGKILL)  # the parent alone
        wait_until(
            lambda: not any(running(pid) for pid in children),
            timeout=30,
            what="the orphaned workers to stop",
        )
    finally:
        service.stop()


def test_workers_0_runs_processing_and_delivery_in_the_one_process(
    tmp_path: Path, database_url: str
) -> None:
    service = Service(tmp_path, database_url, workers=0)
    service.start()
    try:
        wait_until(lambda: "Werkprocessen: geen" in service.output(), what="the start-up lines")
        assert service.children() == set()
        assert service.kill(signal.SIGTERM) == 0
    finally:
        service.stop()
