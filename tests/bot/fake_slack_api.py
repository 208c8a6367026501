"""The tests' fake Slack Web API is the demo's stand-in (one implementation, in ``demo``)."""

from demo.slack_stand_in import Call, FakeSlackApi

__all__ = ["Call", "FakeSlackApi"]
