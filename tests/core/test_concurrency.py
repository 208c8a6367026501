"""Two professionals at two institutions act on the same youth at the same moment.

On PostgreSQL, commands run truly in parallel; the youth row lock, the partial unique indexes
and the outbox idempotency keys must together yield exactly one match, one coordination and no
duplicate notifications. SQLite serializes writers, so the same test there checks the logic.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import date

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.audit import verify_chain
from core.config import CoreConfig
from core.covenant.sync import sync_covenant
from core.db import transaction
from core.identity import YouthIdentity
from core.models import Coordination, Match, MatchMember, OutboxMessage, Youth
from core.registration import RegisterYouth, register_youth
from core.signals import PlaceSignal, place_signal
from tests.bsns import valid_bsns
from tests.core.conftest import MONDAY, CoreDriver

ROUNDS = 12


def _race(*works: list[Callable[[], None]]) -> None:
    """Run each list of steps in its own thread; every step starts at the same moment in all
    threads (a barrier before each), so the registrations race and then the signals race."""
    barrier = threading.Barrier(len(works))
    errors: list[BaseException] = []

    def run(steps: list[Callable[[], None]]) -> None:
        try:
            for step in steps:
                barrier.wait(timeout=30)
                step()
        except BaseException as exc:  # reported below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(w,)) for w in works]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    if errors:
        raise errors[0]


def _register_and_signal(
    driver: CoreDriver,
    identity: YouthIdentity,
    institution: str,
    reference: str,
    email: str,
    code: str,
) -> list[Callable[[], None]]:
    cfg = driver.config
    inst_actor = driver.institution(institution)
    prof_actor = driver.professional(email)

    def register() -> None:
        driver.run(
            lambda s: register_youth(
                RegisterYouth(identity, "Groningen", reference),
                session=s,
                config=cfg,
                actor=inst_actor,
                now=MONDAY,
            )
        )

    def signal() -> None:
        driver.run(
            lambda s: place_signal(
                PlaceSignal(identity, "Groningen", code, "ja"),
                session=s,
                config=cfg,
                actor=prof_actor,
                now=MONDAY,
            )
        )

    return [register, signal]


def _check_one_of_each(engine: Engine) -> None:
    with Session(engine) as session:
        youths = session.exec(select(Youth)).all()
        assert len(youths) == ROUNDS
        for youth in youths:
            matches = session.exec(select(Match).where(Match.youth_id == youth.id)).all()
            assert len(matches) == 1, f"youth {youth.id}: {len(matches)} matches"
            members = session.exec(
                select(MatchMember).where(MatchMember.match_id == matches[0].id)
            ).all()
            assert len(members) == 2
            coordinations = session.exec(
                select(Coordination).where(Coordination.youth_id == youth.id)
            ).all()
            assert len(coordinations) == 1, f"youth {youth.id}: {len(coordinations)} coordinations"
            assert coordinations[0].institution_id == "wij-groningen"
        rows = session.exec(select(OutboxMessage)).all()
        per_occasion = Counter((r.kind, r.recipient, r.reference, r.channel) for r in rows)
        duplicates = {k: n for k, n in per_occasion.items() if n > 1}
        assert duplicates == {}
        kinds = Counter(r.kind for r in rows)
        # Per youth: each professional one match message; one assignment; one chain notice.
        assert kinds["match"] == 2 * ROUNDS
        assert kinds["coordinatie-toegewezen"] == ROUNDS
        assert kinds["nieuwe-betrokkenheid"] == ROUNDS
        count, broken = verify_chain(session)
        assert broken is None and count > 0


def _simultaneous_rounds(engine: Engine, config: CoreConfig) -> None:
    with transaction(engine) as session:
        sync_covenant(session, config.covenant)
    driver = CoreDriver(engine, config)
    for bsn in valid_bsns(ROUNDS):
        identity = YouthIdentity(bsn=bsn, birth_date=date(2016, 5, 1))
        _race(
            _register_and_signal(
                driver,
                identity,
                "ggd-groningen",
                "GGD-1",
                "a.devries@ggd-groningen.example",
                "laag",
            ),
            _register_and_signal(
                driver,
                identity,
                "wij-groningen",
                "WIJ-1",
                "s.jansen@wij-groningen.example",
                "urgent",
            ),
        )
    _check_one_of_each(engine)


@pytest.mark.postgres
def test_simultaneous_commands_on_postgresql_make_one_match_one_coordination(
    pg_engine: Engine, config: CoreConfig
) -> None:
    _simultaneous_rounds(pg_engine, config)


def test_simultaneous_commands_on_sqlite_make_one_match_one_coordination(
    sqlite_engine: Engine, config: CoreConfig
) -> None:
    _simultaneous_rounds(sqlite_engine, config)
