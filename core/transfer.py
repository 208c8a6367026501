"""Transfer of active signals on long absence or leaving (DOMAIN: Transfer on absence).

The secretariat requests it on a senior's instruction; an institution-admin (instellings-
coördinator) or the region's admin executes it (Jeugdwet 7.1.3.3). Only to a colleague of the
same institution; placing dates and end dates do not change; the new owner and the match
partners are told.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from core import audit
from core.actors import (
    acting_professional,
    may_administer,
    require_known_professional,
    require_professional,
)
from core.clock import utcnow
from core.config import CoreConfig
from core.errors import Conflict, InvalidInput, NotAllowed
from core.events import TransferExecutedEvent, TransferRejectedEvent, TransferRequestedEvent
from core.models import (
    Professional,
    Role,
    Signal,
    SignalStatus,
    Team,
    TransferRequest,
    TransferStatus,
)
from core.notifications import publish
from core.numbers import find_numbered
from core.youths import lock_youth


def request_transfer(
    from_email: str,
    to_email: str,
    instructed_by_email: str,
    *,
    session: Session,
    config: CoreConfig,
    actor: audit.Actor,
    now: datetime | None = None,
) -> TransferRequest:
    now = now or utcnow()
    requester = acting_professional(session, actor)
    source = require_known_professional(session, from_email, field="van")
    target = require_professional(session, to_email, field="naar")
    senior = require_professional(session, instructed_by_email, field="senior")
    if not (
        requester.has_role(Role.SECRETARIAT) and requester.institution_id == source.institution_id
    ):
        raise NotAllowed(
            "alleen het secretariaat van de instelling van de hulpverlener kan een overdracht "
            "aanvragen"
        )
    if not (senior.has_role(Role.SENIOR) and senior.institution_id == source.institution_id):
        raise InvalidInput(f"{senior.email} is geen senior van dezelfde instelling", field="senior")
    _check_pair(
        session, source.institution_id, source.id, target.institution_id, target.id, target.team_id
    )
    already = _open_request(session, source.id, target.id)
    if already is not None:
        raise Conflict(f"er staat al een aanvraag voor deze overdracht open ({already.number})")
    transfer = TransferRequest(
        institution_id=source.institution_id,
        from_professional_id=source.id or 0,
        to_professional_id=target.id or 0,
        requested_by_id=requester.id or 0,
        instructed_by_id=senior.id or 0,
        requested_at=now,
    )
    session.add(transfer)
    session.flush()
    audit.record(
        session,
        actor,
        "transfer-requested",
        f"professional:{source.id}",
        details={"transfer": transfer.number, "to": target.email, "senior": senior.email},
        at=now,
    )
    publish(session, config, TransferRequestedEvent(at=now, transfer_id=transfer.id or 0))
    return transfer


def _check_pair(
    session: Session,
    source_institution: str,
    source_id: int | None,
    target_institution: str,
    target_id: int | None,
    target_team_id: int,
) -> None:
    if source_id == target_id:
        raise InvalidInput("van en naar zijn dezelfde hulpverlener", field="naar")
    if source_institution != target_institution:
        raise InvalidInput(
            "overdracht kan alleen naar een collega van dezelfde instelling", field="naar"
        )
    team = session.get(Team, target_team_id)
    if team is None or not team.may_signal:
        raise InvalidInput(
            "de nieuwe hulpverlener zit in een team dat geen signalen mag afgeven", field="naar"
        )


def execute_transfer(
    transfer_number: str,
    *,
    session: Session,
    config: CoreConfig,
    actor: audit.Actor,
    now: datetime | None = None,
) -> TransferRequest:
    now = now or utcnow()
    executor = acting_professional(session, actor)
    transfer = _find(session, transfer_number)
    # Authorisation first: someone without the role learns nothing about the request's state.
    if not may_administer(executor, transfer.institution_id):
        raise NotAllowed(
            "alleen een instellingscoördinator van deze instelling of een functioneel beheerder "
            "kan een overdracht uitvoeren"
        )
    if transfer.status != TransferStatus.REQUESTED:
        done = "uitgevoerd" if transfer.status == TransferStatus.EXECUTED else "afgewezen"
        raise Conflict(f"{transfer.number} is al {done}")
    target = session.get(Professional, transfer.to_professional_id)
    if target is None or not target.active:
        raise Conflict(
            f"{transfer.number}: de nieuwe hulpverlener is niet meer actief; wijs de aanvraag af"
        )
    # The target may have changed team or institution since the request.
    _check_pair(
        session,
        transfer.institution_id,
        transfer.from_professional_id,
        target.institution_id,
        target.id,
        target.team_id,
    )
    moved = _move_signals(session, transfer, now)
    transfer.status = TransferStatus.EXECUTED
    transfer.executed_by_id = executor.id
    transfer.executed_at = now
    transfer.signals_moved = len(moved)
    session.add(transfer)
    session.flush()
    audit.record(
        session,
        actor,
        "transfer-executed",
        f"professional:{transfer.from_professional_id}",
        details={"transfer": transfer.number, "signals": [f"S-{i}" for i in moved]},
        at=now,
    )
    publish(
        session,
        config,
        TransferExecutedEvent(at=now, transfer_id=transfer.id or 0, signal_ids=tuple(moved)),
    )
    return transfer


def reject_transfer(
    transfer_number: str,
    *,
    session: Session,
    config: CoreConfig,
    actor: audit.Actor,
    now: datetime | None = None,
) -> TransferRequest:
    now = now or utcnow()
    executor = acting_professional(session, actor)
    transfer = _find(session, transfer_number)
    if not may_administer(executor, transfer.institution_id):
        raise NotAllowed("alleen een instellingscoördinator of functioneel beheerder kan dit")
    if transfer.status != TransferStatus.REQUESTED:
        raise Conflict(f"{transfer.number} is niet meer open")
    transfer.status = TransferStatus.REJECTED
    transfer.executed_by_id = executor.id
    transfer.executed_at = now
    session.add(transfer)
    audit.record(
        session,
        actor,
        "transfer-rejected",
        f"professional:{transfer.from_professional_id}",
        details={"transfer": transfer.number},
        at=now,
    )
    publish(session, config, TransferRejectedEvent(at=now, transfer_id=transfer.id or 0))
    return transfer


def _move_signals(session: Session, transfer: TransferRequest, now: datetime) -> list[int]:
    target = session.get(Professional, transfer.to_professional_id)
    assert target is not None
    signals = session.exec(
        select(Signal)
        .where(
            Signal.professional_id == transfer.from_professional_id,
            Signal.status == SignalStatus.ACTIVE,
        )
        .order_by(col(Signal.youth_id))  # lock youths in a fixed order: no deadlocks
    ).all()
    moved = []
    for signal in signals:
        lock_youth(session, signal.youth_id)
        clash = session.exec(
            select(Signal.id).where(
                Signal.youth_id == signal.youth_id,
                Signal.professional_id == target.id,
                Signal.status == SignalStatus.ACTIVE,
            )
        ).first()
        if clash is not None:
            continue  # the colleague already signals this youth; the original stays (reported)
        signal.professional_id = target.id or 0
        signal.team_id = target.team_id
        session.add(signal)  # placed_at and ends_on unchanged (DOMAIN)
        moved.append(signal.id or 0)
    session.flush()
    return moved


def _open_request(
    session: Session, source_id: int | None, target_id: int | None
) -> TransferRequest | None:
    return session.exec(
        select(TransferRequest).where(
            TransferRequest.from_professional_id == source_id,
            TransferRequest.to_professional_id == target_id,
            TransferRequest.status == TransferStatus.REQUESTED,
        )
    ).first()


def _find(session: Session, number: str) -> TransferRequest:
    return find_numbered(
        session, TransferRequest, number, prefix="T-", missing=f"overdracht {number} bestaat niet"
    )


def transfer_signals(
    from_email: str,
    to_email: str,
    *,
    by_email: str,
    instructed_by_email: str | None,
    session: Session,
    config: CoreConfig,
    actor: audit.Actor,
    now: datetime | None = None,
) -> TransferRequest:
    """The CLI's one-step form: a secretariat member requests (naming the senior); an
    institution-admin or admin executes the open request for this pair, or requests and
    executes at once when none exists (then ``by`` itself stands for the instruction)."""
    now = now or utcnow()
    me = acting_professional(session, actor)
    if by_email and by_email.strip().lower() != me.email:
        raise NotAllowed("u kunt een overdracht alleen uit eigen naam aanvragen of uitvoeren")
    source = require_known_professional(session, from_email, field="van")
    target = require_professional(session, to_email, field="naar")
    if may_administer(me, source.institution_id):
        open_request = _open_request(session, source.id, target.id)
        if open_request is None:
            _check_pair(
                session,
                source.institution_id,
                source.id,
                target.institution_id,
                target.id,
                target.team_id,
            )
            open_request = TransferRequest(
                institution_id=source.institution_id,
                from_professional_id=source.id or 0,
                to_professional_id=target.id or 0,
                requested_by_id=me.id or 0,
                instructed_by_id=me.id or 0,
                requested_at=now,
            )
            session.add(open_request)
            session.flush()
            audit.record(
                session,
                actor,
                "transfer-requested",
                f"professional:{source.id}",
                details={"transfer": open_request.number, "to": target.email},
                at=now,
            )
        return execute_transfer(
            open_request.number, session=session, config=config, actor=actor, now=now
        )
    if not instructed_by_email:
        raise InvalidInput("noem de senior die de overdracht heeft opgedragen", field="senior")
    return request_transfer(
        from_email,
        to_email,
        instructed_by_email,
        session=session,
        config=config,
        actor=actor,
        now=now,
    )
