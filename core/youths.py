"""Finding, creating and locking youths.

Commands about a youth lock its row first (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's
BEGIN IMMEDIATE already serializes writers). Everything derived per youth (matches, coordination)
is therefore computed by one transaction at a time.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Container, Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Table, bindparam, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from core.clock import local_date
from core.config import CoreConfig
from core.errors import DomainError, InvalidInput, NotFound
from core.free_text import quote
from core.identity import (
    YouthIdentity,
    age_on,
    check_youth_age,
    normalize_bsn,
    purge_month,
    substitute_identity,
)
from core.models import Municipality, Signal, SignalStatus, Youth, YouthParent
from core.numbers import find_numbered

IN_CHUNK = 500  # values per IN (...) list: well below SQLite's bound-parameter limit


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


@dataclass(frozen=True)
class Destination:
    """Where a registration or signal says the youth lives: an active covenant municipality
    (``inside``), or one outside the covenant, where only a youth already in the index can have
    moved (Jeugdwet 7.1.2.3 g): ``refusal`` is what a youth new to the index gets instead."""

    name: str
    inside: bool
    refusal: DomainError | None = None


def lives_at(municipality: str, moved_out_to: str | None, destination: Destination) -> bool:
    """Whether a youth of ``municipality`` (moved outside the covenant to ``moved_out_to``, if
    set) lives at ``destination`` already: anything else is a move (core.moves)."""
    here = moved_out_to if moved_out_to is not None else municipality
    same_side = destination.inside == (moved_out_to is None)
    return same_side and here.casefold() == destination.name.casefold()


# A Dutch municipality's name: letters, spaces and - ' . ( ) ('s-Hertogenbosch, Bergen (NH)).
_PLACE_NAME = re.compile(r"['’]?[^\W\d_](?:[^\W\d_]|[ '’.()-])*")


def resolve_destination(
    config: CoreConfig, name: str, *, active_names: Container[str]
) -> Destination:
    """The covenant's municipality ``name`` names, or a municipality outside the covenant. A
    name close to a covenant municipality's is refused as a typing error, not taken as a move
    out of the region; so is one that cannot be a place name."""
    try:
        return Destination(resolve_municipality(config, name, active_names=active_names), True)
    except InvalidInput as refusal:
        shown = " ".join((name or "").split())
        known = config.covenant.municipality(shown) if shown else None
        if known is not None:  # a covenant municipality that is no longer active: outside now
            return Destination(known.name, False, refusal)
        if not _PLACE_NAME.fullmatch(shown) or len(shown) > 100:
            raise refusal from None
        names = {m.name.casefold(): m.name for m in config.covenant.municipalities}
        close = difflib.get_close_matches(shown.casefold(), list(names), n=1, cutoff=0.8)
        if close:
            raise InvalidInput(
                f"onbekende gemeente {quote(shown)}; bedoelt u '{names[close[0]]}'?",
                field="Gemeente",
            ) from None
        return Destination(shown, False, refusal)


def find_youth(session: Session, config: CoreConfig, identity: YouthIdentity) -> Youth | None:
    # Under every ring key: during a rotation the youth may not have been moved yet.
    keys = config.keys.identity_keys(identity)
    return session.exec(select(Youth).where(col(Youth.identity_key).in_(keys))).first()


def birth_date_of(config: CoreConfig, youth: Youth) -> date:
    """The youth's birth date, decrypted (only the rules that need it ask)."""
    return config.keys.decrypt_date(youth.birth_date_encrypted)


def age_of(config: CoreConfig, youth: Youth, day: date) -> int:
    """The youth's age in years on ``day`` (coordination rules, who is informed)."""
    return age_on(birth_date_of(config, youth), day)


def require_youth(session: Session, config: CoreConfig, identity: YouthIdentity) -> Youth:
    youth = find_youth(session, config, identity)
    if youth is None:
        raise NotFound("deze jongere staat niet in de verwijsindex")
    return youth


YOUTH_REFERENCE_PREFIX = "J-"  # as the overview and the inzage name the youth


def youth_by_reference(session: Session, reference: str) -> Youth:
    """The youth a reference such as ``J-12`` names (from ``youth show`` or an inzage)."""
    return find_numbered(
        session,
        Youth,
        reference,
        prefix=YOUTH_REFERENCE_PREFIX,
        missing=f"jongere {quote(reference)} staat niet in de verwijsindex",
        field="jongere",
    )


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
    """The locked youth row, created if new (race-safe: INSERT ... ON CONFLICT DO NOTHING).
    ``municipality`` is where a new youth lives; a known youth's move is the caller's
    (core.moves: the one place a youth's municipality changes)."""
    check_youth_age(identity.birth_date, local_date(now, config.tz))
    parents = [normalize_bsn(raw, field="BSN ouder") for raw in parent_bsns]
    keys = config.keys
    substitute = substitute_identity(identity)
    youth_id = session.exec(
        select(Youth.id).where(col(Youth.identity_key).in_(keys.identity_keys(identity)))
    ).first()
    if youth_id is None:
        municipality = canonical_municipality(session, config, municipality)
        values = {
            "identity_key": keys.identity_key(identity),
            "key_id": keys.key_id,
            "has_bsn": identity.bsn is not None,
            "bsn_encrypted": keys.encrypt(identity.bsn) if identity.bsn else None,
            "name_encrypted": keys.encrypt(identity.name or identity.surname or "")
            if (identity.name or identity.surname)
            else None,
            "birth_date_encrypted": keys.encrypt_date(identity.birth_date),
            "substitute_encrypted": keys.encrypt(substitute) if substitute else None,
            "municipality": municipality,
            "purge_month": purge_month(identity.birth_date),
        }
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        session.execute(
            insert(Youth)
            .values(created_at=now, **values)
            .on_conflict_do_nothing(index_elements=["identity_key"])
        )
        # Ours, or the row a concurrent command (or the rotation) put there first.
        youth_id = session.exec(
            select(Youth.id).where(col(Youth.identity_key).in_(keys.identity_keys(identity)))
        ).one()
    assert youth_id is not None
    youth = lock_youth(session, youth_id)
    session.refresh(youth)
    if identity.name and youth.name_encrypted is None:
        youth.name_encrypted = config.keys.encrypt(identity.name)
    if substitute and youth.substitute_encrypted is None:  # a youth from before revision 0003
        youth.substitute_encrypted = config.keys.encrypt(substitute)
    add_parents(session, config, [(youth_id, bsn) for bsn in parents])
    return youth


def add_parents(session: Session, config: CoreConfig, links: Iterable[tuple[int, str]]) -> None:
    """Link youths to parents: ``(youth id, normalised parent BSN)`` pairs, set-wise (the bulk
    import links tens of thousands at once; a link that exists is left alone).

    A parent whose digest is stored under a previous key only (a rotation has not reached it
    yet) is linked under that same digest, so the family stays one group until the rotation
    moves all of its links at once. Links from before revision 0003 get the encrypted BSN they
    lack, so that the rotation can move them too.
    """
    wanted = list(dict.fromkeys(links))
    if not wanted:
        return
    keys = config.keys
    bsns = {bsn for _, bsn in wanted}
    chosen = {bsn: (keys.normalized_bsn_digest(bsn), keys.key_id) for bsn in bsns}
    if keys.ring.previous:
        candidates = {
            keys.normalized_bsn_digest(bsn, key): (bsn, key.id)
            for bsn in bsns
            for key in keys.ring.keys
        }
        stored = _stored_parent_keys(session, list(candidates))
        for digest, (bsn, key_id) in candidates.items():
            if digest in stored and chosen[bsn][0] not in stored:
                chosen[bsn] = (digest, key_id)
    by_digest = {digest: bsn for bsn, (digest, _) in chosen.items()}
    table: Table = YouthParent.__table__  # type: ignore[attr-defined]
    connection = session.connection()
    unsealed = _stored_parent_keys(session, list(by_digest), unsealed_only=True)
    if unsealed:
        connection.execute(
            update(table)
            .where(
                table.c.parent_key == bindparam("digest"), table.c.parent_bsn_encrypted.is_(None)
            )
            .values(parent_bsn_encrypted=bindparam("sealed")),
            [{"digest": d, "sealed": keys.encrypt(by_digest[d])} for d in unsealed],
        )
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    connection.execute(
        insert(table).on_conflict_do_nothing(index_elements=["youth_id", "parent_key"]),
        [
            {
                "youth_id": youth_id,
                "parent_key": chosen[bsn][0],
                "key_id": chosen[bsn][1],
                "parent_bsn_encrypted": keys.encrypt(bsn),
            }
            for youth_id, bsn in wanted
        ],
    )


def _stored_parent_keys(
    session: Session, digests: list[str], *, unsealed_only: bool = False
) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(digests), IN_CHUNK):
        query = select(YouthParent.parent_key).where(
            col(YouthParent.parent_key).in_(digests[start : start + IN_CHUNK])
        )
        if unsealed_only:
            query = query.where(col(YouthParent.parent_bsn_encrypted).is_(None))
        found.update(session.exec(query.distinct()).all())
    return found


def parent_keys_of(session: Session, youth_id: int) -> list[str]:
    return list(
        session.exec(select(YouthParent.parent_key).where(YouthParent.youth_id == youth_id)).all()
    )


# Made once: a fresh alias per call is a new statement each time, compiled anew each time (it
# cost more than the query itself, at every registration).
_OWN_PARENT = aliased(YouthParent, name="own_parent")
_SIBLINGS_PARENT = aliased(YouthParent, name="siblings_parent")


def with_a_signalled_sibling(session: Session, youth_ids: Iterable[int]) -> set[int]:
    """Those of ``youth_ids`` who share a parent with a youth that has an active signal: their
    family may now need coordination (one family, one coordinator), signal or not."""
    wanted = sorted(set(youth_ids))
    if not wanted:
        return set()
    own, sibling = _OWN_PARENT, _SIBLINGS_PARENT
    found: set[int] = set()
    for start in range(0, len(wanted), 500):  # bound the IN list
        found.update(
            session.exec(
                select(own.youth_id)
                .join(sibling, col(sibling.parent_key) == col(own.parent_key))
                .join(Signal, col(Signal.youth_id) == col(sibling.youth_id))
                .where(
                    col(own.youth_id).in_(wanted[start : start + 500]),
                    col(sibling.youth_id) != col(own.youth_id),
                    Signal.status == SignalStatus.ACTIVE,
                )
                .distinct()
            ).all()
        )
    return found
