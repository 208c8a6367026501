"""Finding, creating and locking youths.

Commands about a youth lock its row first (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's
BEGIN IMMEDIATE already serializes writers). Everything derived per youth (matches, coordination)
is therefore computed by one transaction at a time.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from core.clock import local_date
from core.config import CoreConfig
from core.errors import InvalidInput, NotFound
from core.identity import YouthIdentity, check_youth_age, normalize_bsn, twenty_third_birthday
from core.models import Municipality, Youth, YouthParent


def canonical_municipality(session: Session, config: CoreConfig, name: str) -> str:
    known = config.covenant.municipality(name) if name else None
    row = session.get(Municipality, known.name) if known is not None else None
    return resolve_municipality(
        config, name, active_names=(row.name,) if row is not None and row.active else ()
    )


def active_municipality_names(session: Session) -> set[str]:
    return set(session.exec(select(Municipality.name).where(col(Municipality.active))).all())


def resolve_municipality(config: CoreConfig, name: str, *, active_names: Container[str]) -> str:
    """The covenant's spelling of ``name`` (case-insensitive), if it is active; else InvalidInput
    naming 'Gemeente'. The bulk import resolves with ``active_names`` looked up once."""
    known = config.covenant.municipality(name) if name and name.strip() else None
    if known is None:
        raise InvalidInput(
            f"onbekende gemeente '{name.strip()}'; de gemeente moet in het convenant staan",
            field="Gemeente",
        )
    if known.name not in active_names:
        raise InvalidInput(f"gemeente '{known.name}' is niet geactiveerd", field="Gemeente")
    return known.name


def find_youth(session: Session, config: CoreConfig, identity: YouthIdentity) -> Youth | None:
    key = config.keys.identity_key(identity)
    return session.exec(select(Youth).where(Youth.identity_key == key)).first()


def require_youth(session: Session, config: CoreConfig, identity: YouthIdentity) -> Youth:
    youth = find_youth(session, config, identity)
    if youth is None:
        raise NotFound("deze jongere staat niet in de verwijsindex")
    return youth


def lock_youth(session: Session, youth_id: int) -> Youth:
    youth = session.exec(select(Youth).where(Youth.id == youth_id).with_for_update()).one()
    return youth


def get_or_create_youth(
    session: Session,
    config: CoreConfig,
    identity: YouthIdentity,
    *,
    municipality: str,
    now: datetime,
    parent_bsns: Iterable[str] = (),
) -> Youth:
    """The locked youth row, created if new (race-safe: INSERT ... ON CONFLICT DO NOTHING)."""
    check_youth_age(identity.birth_date, local_date(now, config.tz))
    municipality = canonical_municipality(session, config, municipality)
    parent_keys = [
        config.keys.bsn_digest(normalize_bsn(raw, field="BSN ouder")) for raw in parent_bsns
    ]
    key = config.keys.identity_key(identity)
    values = {
        "identity_key": key,
        "has_bsn": identity.bsn is not None,
        "bsn_encrypted": config.keys.encrypt(identity.bsn) if identity.bsn else None,
        "name_encrypted": config.keys.encrypt(identity.name or identity.surname or "")
        if (identity.name or identity.surname)
        else None,
        "birth_date": identity.birth_date,
        "municipality": municipality,
        "purge_on": twenty_third_birthday(identity.birth_date),
    }
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(Youth)
        .values(created_at=now, **values)
        .on_conflict_do_nothing(index_elements=["identity_key"])
    )
    youth_id = session.exec(select(Youth.id).where(Youth.identity_key == key)).one()
    assert youth_id is not None
    youth = lock_youth(session, youth_id)
    session.refresh(youth)
    if youth.municipality != municipality:
        youth.municipality = municipality  # the youth moved: coordination rules follow
    if identity.name and youth.name_encrypted is None:
        youth.name_encrypted = config.keys.encrypt(identity.name)
    _add_parents(session, youth_id, parent_keys)
    return youth


def _add_parents(session: Session, youth_id: int, parent_keys: list[str]) -> None:
    if not parent_keys:
        return
    existing = set(
        session.exec(select(YouthParent.parent_key).where(YouthParent.youth_id == youth_id)).all()
    )
    for parent_key in dict.fromkeys(parent_keys):
        if parent_key not in existing:
            session.add(YouthParent(youth_id=youth_id, parent_key=parent_key))
    session.flush()


def parent_keys_of(session: Session, youth_id: int) -> list[str]:
    return list(
        session.exec(select(YouthParent.parent_key).where(YouthParent.youth_id == youth_id)).all()
    )
