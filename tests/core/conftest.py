"""Fixtures for core tests: the bundled example covenant, synced into the suite's database,
and a small driver that runs each command in its own transaction as a transport would."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.actors import institution_actor, professional_actor, require_professional
from core.audit import Actor
from core.config import CoreConfig
from core.covenant import bundled_covenant_path, load_covenant
from core.covenant.sync import sync_covenant
from core.db import run_in_transaction, transaction
from core.identity import IdentityKeys, YouthIdentity
from core.models import OutboxMessage
from tests.conftest import TEST_SECRET

T = TypeVar("T")

# A Monday morning in the Netherlands, well clear of holidays.
MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

# Valid (elfproef) test BSNs.
BSN_A = "111222333"
BSN_B = "123456782"
BSN_C = "012345672"
BSN_PARENT = "100000009"


@pytest.fixture(scope="session")
def config() -> CoreConfig:
    return CoreConfig(
        covenant=load_covenant(bundled_covenant_path()), keys=IdentityKeys(TEST_SECRET.encode())
    )


class CoreDriver:
    """Runs core commands the way a transport does: one transaction each."""

    def __init__(self, engine: Engine, config: CoreConfig):
        self.engine = engine
        self.config = config

    def run(self, work: Callable[[Session], T]) -> T:
        return run_in_transaction(self.engine, work)

    def professional(self, email: str, channel: str = "cli") -> Actor:
        with transaction(self.engine) as session:
            return professional_actor(require_professional(session, email), channel)

    def institution(self, institution_id: str, channel: str = "smtp") -> Actor:
        return institution_actor(institution_id, channel)

    def outbox(self, kind: str | None = None, **where: Any) -> list[OutboxMessage]:
        with Session(self.engine) as session:
            query = select(OutboxMessage).order_by(OutboxMessage.id)  # type: ignore[arg-type]
            if kind:
                query = query.where(OutboxMessage.kind == kind)
            rows = list(session.exec(query).all())
        return [r for r in rows if all(getattr(r, k) == v for k, v in where.items())]


@pytest.fixture
def core(engine: Engine, config: CoreConfig) -> CoreDriver:
    with transaction(engine) as session:
        sync_covenant(session, config.covenant)
    return CoreDriver(engine, config)


def youth(bsn: str = BSN_A, birth: date = date(2016, 5, 1)) -> YouthIdentity:
    return YouthIdentity(bsn=bsn, birth_date=birth, name="Testkind Geheimnaam")
