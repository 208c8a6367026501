"""End-to-end tests run the gateway as the mail-gateway tests do."""

from tests.core.conftest import config  # noqa: F401
from tests.mail_gateway.conftest import (  # noqa: F401
    make_gateway,
    run_gateway,
    sink,
    synced_engine,
)
