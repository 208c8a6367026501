"""Linking a Slack user whose e-mail address Slack hides (a Slack Connect guest from another
organisation, a workspace that hides addresses) by a one-time code (CONTRACT §5,
``/verwijsindex koppel``).

The user names their covenant address; a code goes to that address by mail only (kind
``slack-koppelcode``): whoever reads that mailbox is the professional, which is what linking by
e-mail proves too. The code is kept as an HMAC under the region's key (an 8-digit code's plain
hash would be reversed in seconds), lives :data:`CODE_LIFETIME`, is used once, and dies after
:data:`MAX_FAILED_ATTEMPTS` wrong guesses. Requests are limited per Slack user and per
professional (:data:`MAX_CODES_PER_HOUR`), so nobody can mail-bomb a colleague through the bot.
The answer to a request is the same whether the address is in the covenant or not.

The code is never at rest in clear: its table keeps the HMAC only, and the mail's outbox row
carries it sealed under the region's key (core.outbox_secrets), opened by the mail delivery
worker to render the mail and dropped once the row is sent or dead-lettered.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement
from sqlmodel import Session, col, func, select

from core import audit
from core.actors import find_professional
from core.clock import utcnow
from core.config import CoreConfig
from core.errors import Conflict
from core.models import Professional, SlackLinkCode
from core.notifications.dispatch import notify
from core.notifications.recipients import Recipient
from core.outbox_secrets import sealed_context
from core.slack_installations import find_installation
from core.slack_links import SlackUser, link

KIND = "slack-koppelcode"
CODE_PURPOSE = b"verwijsindex slack link code v1"
CODE_DIGITS = 8
CODE_LIFETIME = timedelta(minutes=15)
MAX_FAILED_ATTEMPTS = 5
MAX_CODES_PER_HOUR = 3
_HOUR = timedelta(hours=1)

REQUESTER = audit.Actor(kind="system", identifier="slack-link-code", channel="slack")


class Redeemed(StrEnum):
    LINKED = "linked"
    WRONG = "wrong"  # no valid code of this user has that value (or none is left)


@dataclass(frozen=True)
class Redemption:
    outcome: Redeemed
    professional: Professional | None = None


def looks_like_code(text: str) -> bool:
    return len(text) == CODE_DIGITS and text.isdigit()


def _digests(config: CoreConfig, code: str) -> list[str]:
    """The code's HMAC under every key of the ring: a code issued just before a key rotation
    still works."""
    return [key.mac(CODE_PURPOSE, code.encode()) for key in config.keys.ring.keys]


def _recent(session: Session, where: ColumnElement[bool], now: datetime) -> int:
    return int(
        session.exec(
            select(func.count())
            .select_from(SlackLinkCode)
            .where(where, col(SlackLinkCode.created_at) > now - _HOUR)
        ).one()
    )


def request_link_code(
    session: Session,
    config: CoreConfig,
    *,
    email: str,
    user: SlackUser,
    now: datetime | None = None,
) -> None:
    """Mail a code to ``email`` if it is an active professional's. Refused (Conflict) when the
    Slack user asked too often; otherwise silent about whether the address is known."""
    now = now or utcnow()
    if _recent(session, col(SlackLinkCode.user_id) == user.user_id, now) >= MAX_CODES_PER_HOUR:
        raise Conflict(
            f"u heeft het afgelopen uur al {MAX_CODES_PER_HOUR} koppelcodes aangevraagd; "
            "gebruik de laatste code uit uw mail, of probeer het over een uur opnieuw",
            field="koppel",
        )
    professional = find_professional(session, email)
    if professional is None or not professional.active or professional.id is None:
        return
    if (
        _recent(session, col(SlackLinkCode.professional_id) == professional.id, now)
        >= MAX_CODES_PER_HOUR
    ):
        return  # the mailbox already has codes enough; the answer stays the same
    for older in _usable(session, user, now):
        older.expires_at = now  # only the newest code counts
        session.add(older)
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    row = SlackLinkCode(
        code_hash=_digests(config, code)[0],
        professional_id=professional.id,
        enterprise_id=user.enterprise_id,
        team_id=user.team_id,
        user_id=user.user_id,
        created_at=now,
        expires_at=now + CODE_LIFETIME,
    )
    session.add(row)
    session.flush()
    installation = find_installation(
        session, enterprise_id=user.enterprise_id, team_id=user.team_id
    )
    reference = f"K-{row.id}"
    notify(
        session,
        config,
        kind=KIND,
        # By mail only: the code proves the mailbox, so it never goes to a Slack account.
        recipients=[
            Recipient(
                address=professional.email,
                role="professional",
                name=professional.name,
                professional_id=professional.id,
                institution_id=professional.institution_id,
            )
        ],
        reference=reference,
        context={
            **sealed_context(config.keys.ring, {"code": code}),  # the template's ``code``
            "minutes": int(CODE_LIFETIME.total_seconds() // 60),
            "workspace": installation.team_name if installation and installation.team_name else "",
        },
        key=reference,
        now=now,
    )
    audit.record(
        session,
        REQUESTER,
        "slack-link-code-sent",
        f"professional:{professional.id}",
        details={"slack_user": user.user_id, "slack_team": user.team_id, "reference": reference},
        at=now,
    )


def _usable(session: Session, user: SlackUser, now: datetime) -> list[SlackLinkCode]:
    return list(
        session.exec(
            select(SlackLinkCode).where(
                SlackLinkCode.user_id == user.user_id,
                col(SlackLinkCode.used_at).is_(None),
                col(SlackLinkCode.expires_at) > now,
                col(SlackLinkCode.failed_attempts) < MAX_FAILED_ATTEMPTS,
            )
        ).all()
    )


def redeem_link_code(
    session: Session, config: CoreConfig, *, code: str, user: SlackUser, now: datetime | None = None
) -> Redemption:
    """Link ``user`` to the professional the code was mailed to, when it is a valid code that
    this same Slack user asked for. A wrong guess is counted (and committed: this returns
    rather than raises)."""
    now = now or utcnow()
    usable = _usable(session, user, now)
    digests = set(_digests(config, code.strip()))
    match = next((row for row in usable if row.code_hash in digests), None)
    if match is None or match.team_id != user.team_id or match.enterprise_id != user.enterprise_id:
        for row in usable:
            row.failed_attempts += 1
            session.add(row)
        return Redemption(Redeemed.WRONG)
    match.used_at = now
    session.add(match)
    professional = session.get(Professional, match.professional_id)
    if professional is None or not professional.active:
        return Redemption(Redeemed.WRONG)
    link(session, professional, user, how="code")
    return Redemption(Redeemed.LINKED, professional)
