"""Loading what the registration planner reads, set-wise, and applying its plan set-wise.

One look-up of the requests' youths (locked, on PostgreSQL in id order as every command locks
them), one of their registrations and signals; then bulk inserts and updates of youths,
registrations and parents, the logboek's events, the chain notices through the outbox, and the
per-youth derivation (matches, coordination) only for the few youths with an active signal.

A youth the plan creates is inserted without ON CONFLICT: a concurrent command that created it
first makes the insert fail on the unique identity key, and the transaction is run again
(:func:`core.db.run_in_transaction`) on the state that command left — planned on a snapshot
without it, this plan could miss an involvement and its chain notice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from core import audit, outbox
from core.bulk_writes import in_chunks, insert_rows, next_sqlite_id
from core.clock import as_utc
from core.config import CoreConfig
from core.identity import purge_month
from core.models import (
    Institution,
    Professional,
    Registration,
    RegistrationStatus,
    Signal,
    SignalStatus,
    Youth,
)
from core.moves import Move, apply_moves, detect_move
from core.notifications.dispatch import channels, notification_row
from core.notifications.recipients import institution_card, institution_recipient
from core.reconcile import reconcile_youth
from core.registration_plan import (
    CheckedRequest,
    KnownYouth,
    NewYouth,
    Outcome,
    Plan,
    RegistrationContext,
    RegistrationRow,
    Snapshot,
    YouthChange,
    plan_registrations,
)
from core.registration_requests import InvolvedInstitution
from core.youths import active_municipality_names, add_parents, with_a_signalled_sibling

CHAIN_NOTICE = "nieuwe-betrokkenheid"

_youth: Table = Youth.__table__  # type: ignore[attr-defined]
_registration: Table = Registration.__table__  # type: ignore[attr-defined]


def load_context(
    session: Session,
    config: CoreConfig,
    institution: Institution,
    *,
    professional_emails: Iterable[str | None] | None = None,
) -> RegistrationContext:
    """The context for checking the institution's requests: all its active professionals, or
    only those ``professional_emails`` name (a single command)."""
    wanted = None
    if professional_emails is not None:
        wanted = sorted({email.strip().lower() for email in professional_emails if email})
    professionals: dict[str, int] = {}
    if wanted is None or wanted:
        query = select(Professional.email, Professional.id).where(
            Professional.institution_id == institution.id, col(Professional.active)
        )
        if wanted is not None:
            query = query.where(col(Professional.email).in_(wanted))
        professionals = {email: pid for email, pid in session.exec(query).all() if pid is not None}
    return RegistrationContext(
        config, institution, active_municipality_names(session), professionals
    )


@dataclass(frozen=True)
class Applied:
    """A plan as written: the ids the database gave, and the institutions it names."""

    plan: Plan
    youth_ids: dict[str, int]  # identity key -> youth id
    registration_ids: dict[str, int]  # identity key -> the institution's registration id
    institutions: dict[str, Institution]
    notifications: int  # outbox rows added

    def registration_number(self, key: str) -> str:
        return f"R-{self.registration_ids[key]}"

    def others_involved(self, outcome: Outcome) -> tuple[InvolvedInstitution, ...]:
        return tuple(
            InvolvedInstitution(other.id, other.name, other.notification_email)
            for other_id in outcome.others_involved
            if (other := self.institutions.get(other_id)) is not None
        )


def apply_checked(
    session: Session,
    context: RegistrationContext,
    requests: Sequence[CheckedRequest],
    *,
    actor: audit.Actor,
    now: datetime,
    strict: bool = False,
) -> Applied:
    """Plan ``requests`` on the state they find and apply the plan, in the caller's
    transaction. ``strict``: a refusal is raised (its :class:`DomainError`) before anything
    is written, as a single command refuses."""
    snapshot = load_snapshot(session, context, requests)
    plan = plan_registrations(requests, snapshot, now)
    if strict and plan.refusals:
        raise plan.refusals[0].error
    return execute_plan(session, context, snapshot, plan, actor=actor, now=now)


# --- the snapshot ----------------------------------------------------------------------------


def load_snapshot(
    session: Session, context: RegistrationContext, requests: Sequence[CheckedRequest]
) -> Snapshot:
    """The requests' youths as they are (locked), with their registrations and active signals;
    a youth not in the index yet is simply not in it."""
    session.flush()  # ORM changes of the caller's transaction first: the look-ups are core
    youths = _find_youths(session, requests)
    key_of = {youth.id: key for key, youth in youths.items()}
    own: dict[int, RegistrationRow] = {}
    others: dict[int, dict[str, str]] = {}
    signalled: set[int] = set()
    signalled_by_us: set[int] = set()
    institution_id = context.institution.id
    connection = session.connection()
    r = _registration.c
    for chunk in in_chunks(sorted(key_of)):
        references: dict[tuple[int, str], str] = {}
        for row in connection.execute(
            sa_select(
                r.id,
                r.youth_id,
                r.institution_id,
                r.reference,
                r.status,
                r.professional_id,
                r.ends_on,
                r.registered_at,
                r.ended_at,
            ).where(r.youth_id.in_(chunk))
        ).all():
            reg_id, youth_id, other, reference, status = row[:5]
            if other == institution_id:
                own[youth_id] = RegistrationRow(
                    key_of[youth_id],
                    reg_id,
                    reference,
                    row.professional_id,
                    row.ends_on,
                    status,
                    row.registered_at,
                    row.ended_at,
                )
                continue
            references[(youth_id, other)] = reference
            if status == RegistrationStatus.ACTIVE:
                others.setdefault(youth_id, {})[other] = reference
        for youth_id, other in connection.execute(
            select(Signal.youth_id, Signal.institution_id).where(
                col(Signal.youth_id).in_(chunk), Signal.status == SignalStatus.ACTIVE
            )
        ).all():
            signalled.add(youth_id)
            if other == institution_id:
                signalled_by_us.add(youth_id)
            else:
                # Its reference if it ever registered the youth, else nothing.
                others.setdefault(youth_id, {}).setdefault(
                    other, references.get((youth_id, other), "")
                )
    return Snapshot(youths, own, others, signalled, signalled_by_us)


def _find_youths(session: Session, requests: Sequence[CheckedRequest]) -> dict[str, KnownYouth]:
    """identity key (under the current key) -> the youth, also one still under a previous key
    (a rotation under way). PostgreSQL: locked, in id order (SQLite's BEGIN IMMEDIATE made this
    transaction the only writer already)."""
    current = {older: request.key for request in requests for older in request.older_keys}
    current.update((request.key, request.key) for request in requests)
    c = _youth.c
    columns = (
        c.id,
        c.identity_key,
        c.municipality,
        c.name_encrypted.is_not(None),
        c.substitute_encrypted.is_not(None),
        c.moved_out_to,
    )
    connection = session.connection()
    found: dict[str, KnownYouth] = {}
    for keys in in_chunks(list(current)):
        for youth_id, key, municipality, has_name, has_substitute, away in connection.execute(
            sa_select(*columns).where(c.identity_key.in_(keys))
        ).all():
            found[current[key]] = KnownYouth(
                youth_id, municipality, bool(has_name), bool(has_substitute), away
            )
    if connection.dialect.name != "postgresql" or not found:
        return found
    # Locked, the rows are read again: a concurrent command may have moved the youth meanwhile.
    key_of = {youth.id: key for key, youth in found.items()}
    for ids in in_chunks(sorted(key_of)):
        for youth_id, _key, municipality, has_name, has_substitute, away in connection.execute(
            sa_select(*columns).where(c.id.in_(ids)).order_by(c.id).with_for_update()
        ).all():
            found[key_of[youth_id]] = KnownYouth(
                youth_id, municipality, bool(has_name), bool(has_substitute), away
            )
    return found


# --- the chain notice (nieuwe-betrokkenheid) ---------------------------------------------------


def new_involvement_context(
    own_reference: str, newcomer: dict[str, Any], involved_count: int
) -> dict[str, Any]:
    return {
        "own_reference": own_reference,
        "new_institution": newcomer,
        "involved_count": involved_count,
    }


def involvement_occasion(registration_id: int, at: datetime) -> str:
    """Idempotency key of one chain notification: the registration *and* the moment it became
    active, so signing on again after an afmelding tells the others again."""
    return f"R-{registration_id}@{as_utc(at).isoformat()}"


# --- the executor ----------------------------------------------------------------------------


def execute_plan(
    session: Session,
    context: RegistrationContext,
    snapshot: Snapshot,
    plan: Plan,
    *,
    actor: audit.Actor,
    now: datetime,
) -> Applied:
    """Write ``plan`` (made on ``snapshot``) in the caller's transaction, set-wise: one
    statement per kind of change, whatever the number of requests."""
    config = context.config
    youth_ids = {key: youth.id for key, youth in snapshot.youths.items()}
    youth_ids.update(_insert_youths(session, config, plan.new_youths, now))
    _change_youths(session, config, plan.youth_changes)
    add_parents(session, config, [(youth_ids[key], bsn) for key, bsn in plan.parents])
    registration_ids = _write_registrations(session, context, plan.registrations, youth_ids)
    for change in plan.changes:
        audit.record(
            session,
            actor,
            change.audit_action,
            f"youth:{youth_ids[change.key]}",
            details={"registration": f"R-{registration_ids[change.key]}"},
            at=now,
        )
    apply_moves(session, config, _moves(snapshot, plan, registration_ids), actor=actor, now=now)
    institutions = _institutions(session, plan)
    notifications = outbox.enqueue_many(
        session, _chain_notices(context, plan, registration_ids, institutions, now), now=now
    )
    _forget_rewritten_rows(session)
    # A youth whose registration changed is derived again when it has an active signal (the
    # plan knows) or a sibling with one (known only now that the plan's parents are linked).
    changed = {youth_ids[change.key] for change in plan.changes}
    family = with_a_signalled_sibling(session, changed - set(plan.reconcile))
    for youth_id in sorted(set(plan.reconcile) | family):
        reconcile_youth(session, config, youth_id, now)
    return Applied(plan, youth_ids, registration_ids, institutions, notifications)


def _moves(snapshot: Snapshot, plan: Plan, registration_ids: dict[str, int]) -> list[Move]:
    """The plan's moves of known youths, each from where the snapshot had it (a youth sent
    back and forth in one file may not have moved at all)."""
    moves = []
    for planned in plan.moves:
        known = snapshot.youths[planned.key]
        via = f"R-{registration_ids[planned.key]}"
        move = detect_move(
            known.id, known.municipality, known.moved_out_to, planned.destination, via=via
        )
        if move is not None:
            moves.append(move)
    return moves


def _insert_youths(
    session: Session, config: CoreConfig, new_youths: list[NewYouth], now: datetime
) -> dict[str, int]:
    if not new_youths:
        return {}
    keys = config.keys
    rows = [
        {
            "identity_key": youth.key,
            "key_id": keys.key_id,
            "has_bsn": youth.bsn is not None,
            # Never in clear (DOMAIN: Security): encrypted only for the subject-access report.
            "bsn_encrypted": keys.encrypt(youth.bsn) if youth.bsn else None,
            "name_encrypted": keys.encrypt(youth.name) if youth.name else None,
            "birth_date_encrypted": keys.encrypt_date(youth.birth_date),
            "substitute_encrypted": keys.encrypt(youth.substitute) if youth.substitute else None,
            "municipality": youth.municipality,
            "purge_month": purge_month(youth.birth_date),
            "created_at": now,
        }
        for youth in new_youths
    ]
    ids = _insert(session, _youth, rows)
    return dict(zip((youth.key for youth in new_youths), ids, strict=True))


def _insert(session: Session, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``rows``; their ids, in order."""
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        # The only writer (BEGIN IMMEDIATE): give the ids SQLite would give (AUTOINCREMENT:
        # past the highest ever given), so nothing just inserted has to be looked up again.
        first = next_sqlite_id(connection, table)
        for number, row in enumerate(rows, start=first):
            row["id"] = number
        insert_rows(connection, table, rows)
        return [row["id"] for row in rows]
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return list(connection.execute(statement, rows).scalars())


def _change_youths(session: Session, config: CoreConfig, changes: list[YouthChange]) -> None:
    connection = session.connection()
    by_id = _youth.c.id == bindparam("b_id")
    for name, column in (("name", "name_encrypted"), ("substitute", "substitute_encrypted")):
        values = [
            {"b_id": change.id, "value": config.keys.encrypt(value)}
            for change in changes
            if (value := getattr(change, name)) is not None
        ]
        if values:
            connection.execute(
                update(_youth).where(by_id).values({column: bindparam("value")}), values
            )


def _write_registrations(
    session: Session,
    context: RegistrationContext,
    drafts: list[RegistrationRow],
    youth_ids: dict[str, int],
) -> dict[str, int]:
    """Each registration as the plan left it; identity key -> registration id."""

    def values(draft: RegistrationRow) -> dict[str, Any]:
        return {
            "reference": draft.reference,
            "professional_id": draft.professional_id,
            "ends_on": draft.ends_on,
            "status": draft.status,
            "registered_at": draft.registered_at,
            "ended_at": draft.ended_at,
        }

    new = [draft for draft in drafts if draft.id is None]
    known = [draft for draft in drafts if draft.id is not None]
    ids = {draft.key: draft.id for draft in known if draft.id is not None}
    if known:
        session.connection().execute(
            update(_registration)
            .where(_registration.c.id == bindparam("b_id"))
            .values({name: bindparam(name) for name in values(known[0])}),
            [{"b_id": draft.id, **values(draft)} for draft in known],
        )
    if new:
        rows = [
            {
                "youth_id": youth_ids[draft.key],
                "institution_id": context.institution.id,
                **values(draft),
            }
            for draft in new
        ]
        new_ids = _insert(session, _registration, rows)
        ids.update(zip((draft.key for draft in new), new_ids, strict=True))
    return ids


def _institutions(session: Session, plan: Plan) -> dict[str, Institution]:
    """The institutions the plan's notices and outcomes name."""
    wanted = {i for outcome in plan.outcomes for i in outcome.others_involved}
    if not wanted:
        return {}
    rows = session.exec(select(Institution).where(col(Institution.id).in_(sorted(wanted))))
    return {institution.id: institution for institution in rows}


def _chain_notices(
    context: RegistrationContext,
    plan: Plan,
    registration_ids: dict[str, int],
    institutions: dict[str, Institution],
    now: datetime,
) -> list[outbox.NewNotification]:
    """The chain registration (DOMAIN step 1): every institution already involved hears of
    the newcomer, with its own reference. Keyed by the registration and the moment it became
    active (:func:`involvement_occasion`), so signing on again tells them again."""
    newcomer = institution_card(context.institution)
    rows = []
    for notice in plan.notices:
        registration_id = registration_ids[notice.key]
        reference = f"R-{registration_id}"
        occasion = involvement_occasion(registration_id, now)
        for other_id, own_reference in notice.involved:
            other = institutions.get(other_id)
            if other is None:
                continue
            recipient = institution_recipient(other)
            message = new_involvement_context(own_reference, newcomer, notice.involved_count)
            for channel, address in channels(recipient):
                rows.append(
                    notification_row(
                        context.config,
                        kind=CHAIN_NOTICE,
                        recipient=recipient,
                        channel=channel,
                        address=address,
                        reference=reference,
                        context=message,
                        key=occasion,
                    )
                )
    return rows


def _forget_rewritten_rows(session: Session) -> None:
    """Youths and registrations were written underneath the ORM: what it holds of them is read
    again when next used (by the derivation, or the caller)."""
    for instance in list(session.identity_map.values()):
        if isinstance(instance, Youth | Registration):
            session.expire(instance)
