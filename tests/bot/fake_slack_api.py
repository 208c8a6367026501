"""The tests' fake Slack Web API is the demo's stand-in (one implementation, in ``demo``), watched
by the suite's privacy guard: at the end of the test, no call it received but a form may carry a
test youth's identity (tests/privacy_guard.py). And it fails the test when it stops after
receiving a message or view that Slack would have refused (``invalid_blocks``: slack_sdk's Block
Kit models and Slack's limits, :mod:`demo.block_kit`); a test that sends one on purpose takes it
with ``take_invalid()``."""

from __future__ import annotations

from collections.abc import Iterator

from demo.slack_stand_in import Call
from demo.slack_stand_in import FakeSlackApi as _StandIn
from tests import privacy_guard


class FakeSlackApi(_StandIn):
    def __init__(self, *, team_id: str = "T0VERWIJS", bot_user_id: str = "U0BOT") -> None:
        super().__init__(team_id=team_id, bot_user_id=bot_user_id)
        privacy_guard.watch(self._privacy_texts)

    def start(self) -> FakeSlackApi:
        super().start()
        return self

    def __enter__(self) -> FakeSlackApi:
        return self.start()

    def stop(self) -> None:
        super().stop()
        invalid = self.take_invalid()
        if invalid:
            raise AssertionError(
                "the fake Slack Web API received what Slack would refuse:\n"
                + "\n".join(f"{p.method}: {'; '.join(p.problems)}" for p in invalid)
            )

    def _privacy_texts(self) -> Iterator[tuple[str, str]]:
        return privacy_guard.slack_texts((call.method, call.args) for call in self.calls)


__all__ = ["Call", "FakeSlackApi"]
