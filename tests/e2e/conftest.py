"""End-to-end tests run the gateway as the mail-gateway tests do."""

from tests.core.conftest import config  # noqa: F401
from tests.mail_gateway.conftest import make_gateway, run_gateway, synced_engine  # noqa: F401
