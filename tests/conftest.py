"""Shared fixtures.

The whole suite runs against SQLite by default, or against PostgreSQL when
``VERWIJSINDEX_TEST_DATABASE_URL`` is a PostgreSQL URL (``.ci/run`` does both). Tests that need
PostgreSQL whatever the suite's database (concurrency) use ``pg_engine``; it skips when no
server answers, except under CI, where a missing PostgreSQL is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from core.audit import use_keyring
from core.db import create_db_engine
from core.keyring import KeyRing
from core.models import metadata
from tests import privacy_guard

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
# The keys the suite's engines MAC the logboek with, as Settings(secret_key=TEST_SECRET) would.
TEST_KEYRING = KeyRing.of(TEST_SECRET.encode())

# Hypothesis, for every property test: no example database in the working tree, and no deadline
# or too-slow check (a loaded CI machine is slow, which says nothing about the property).
settings.register_profile(
    "verwijsindex", deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("verwijsindex")


def _pg_base_url() -> str:
    url = os.environ.get("VERWIJSINDEX_TEST_DATABASE_URL", "")
    return url if url.startswith("postgresql") else os.environ.get(
        "VERWIJSINDEX_TEST_POSTGRES_URL", DEFAULT_PG_URL
    )


def _postgres_available(url: str) -> bool:
    try:
        import psycopg

        parsed = make_url(url)
        with psycopg.connect(
            host=parsed.host, port=parsed.port or 5432, user=parsed.username,
            dbname=parsed.database, connect_timeout=3,
        ):
            return True
    except Exception:
        return False


def _fresh_schema_engine(base_url: str) -> Iterator[Engine]:
    """An engine whose connections live in a schema of their own, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_db_engine(base_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    engine = create_db_engine(url.render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _require_postgres() -> str:
    url = _pg_base_url()
    if not _postgres_available(url):
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI but does not answer at {url}")
        pytest.skip(f"PostgreSQL does not answer at {url}")
    return url


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """A URL for an empty database of the suite's kind (for code that makes its own engine)."""
    configured = os.environ.get("VERWIJSINDEX_TEST_DATABASE_URL", "")
    if configured.startswith("postgresql"):
        base = _require_postgres()
        for engine in _fresh_schema_engine(base):
            yield engine.url.render_as_string(hide_password=False)
    else:
        yield f"sqlite:///{tmp_path / 'verwijsindex.db'}"


@pytest.fixture
def empty_engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url)
    use_keyring(engine, TEST_KEYRING)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(empty_engine: Engine) -> Engine:
    """The suite's database with every table created."""
    metadata.create_all(empty_engine)
    return empty_engine


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    """Always PostgreSQL (for tests of row locks and concurrent workers)."""
    base = _require_postgres()
    for engine in _fresh_schema_engine(base):
        use_keyring(engine, TEST_KEYRING)
        metadata.create_all(engine)
        yield engine


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'sqlite.db'}")
    use_keyring(engine, TEST_KEYRING)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{privacy_guard.MARKER}(reason): the test lets a youth's identity through on purpose "
        "(tests/privacy_guard.py does not fail it)",
    )
    privacy_guard.install()


@pytest.fixture(autouse=True)
def _no_identity_leaves_the_system(request: pytest.FixtureRequest) -> Iterator[None]:
    """The privacy guard (tests/privacy_guard.py) around every test of the suite."""
    privacy_guard.forget()
    yield
    marker = request.node.get_closest_marker(privacy_guard.MARKER)
    tmp_path = getattr(request.node, "funcargs", {}).get("tmp_path")
    found = privacy_guard.leaks(tmp_path if isinstance(tmp_path, Path) else None)
    privacy_guard.forget()
    if marker is None and found:
        pytest.fail("a test youth's identity left the system:\n" + "\n".join(found))
    if marker is not None and not (marker.args and str(marker.args[0]).strip()):
        pytest.fail(f"@pytest.mark.{privacy_guard.MARKER} needs a reason")
