"""Which Slack identity is which covenant professional (CONTRACT §5): the one home of the link.

A Slack identity is ``(enterprise_id, team_id, user_id)``: the Enterprise Grid org and the
workspace whose installation of the app knows the user (for a Slack Connect user, the workspace
they reached the bot through), and the user. It is stored on the professional
(``Professional.slack_*``), so the core routes their notifications to Slack as well
(``core.notifications.recipients``) and delivery picks the installation's token.

One Slack identity links at most one professional, and a professional has at most one Slack
identity: a new link drops any other, each change in the logboek. The transports decide *that*
a user is someone (by the e-mail address Slack reports, or a one-time code: core.slack_codes);
the writing happens here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlmodel import Session, col, select

from core import audit
from core.models import Professional

LINKER = audit.Actor(kind="system", identifier="slack-identity", channel="slack")


@dataclass(frozen=True)
class SlackUser:
    """A Slack identity as the app meets it in a request."""

    enterprise_id: str | None
    team_id: str | None
    user_id: str


@dataclass(frozen=True)
class SlackWorkspace:
    """Where an installation of the app lives: a workspace, or an Enterprise Grid org."""

    enterprise_id: str | None
    team_id: str | None


def linked_professional(session: Session, user: SlackUser) -> Professional | None:
    """The active professional linked to exactly this identity, if any."""
    return session.exec(
        select(Professional).where(
            Professional.slack_user_id == user.user_id,
            Professional.slack_team_id == user.team_id,
            Professional.slack_enterprise_id == user.enterprise_id,
            col(Professional.active),
        )
    ).first()


def link(session: Session, professional: Professional, user: SlackUser, *, how: str) -> None:
    """Link ``professional`` to ``user`` (``how``: ``email`` or ``code``), unlinking anyone else
    the identity pointed to: their notifications would reach the wrong person."""
    unlink_user(session, user, keep=professional.id)
    before = (
        professional.slack_enterprise_id,
        professional.slack_team_id,
        professional.slack_user_id,
    )
    if before == (user.enterprise_id, user.team_id, user.user_id):
        return
    professional.slack_enterprise_id = user.enterprise_id
    professional.slack_team_id = user.team_id
    professional.slack_user_id = user.user_id
    session.add(professional)
    audit.record(
        session,
        LINKER,
        "slack-linked",
        f"professional:{professional.id}",
        details={
            "slack_user": user.user_id,
            "slack_team": user.team_id,
            "slack_enterprise": user.enterprise_id,
            "previous": before[2],
            "by": how,
        },
    )


def unlink_user(session: Session, user: SlackUser, *, keep: int | None = None) -> None:
    """No professional (but ``keep``) stays linked to the Slack user (an address moved to
    another account, the account was deactivated). A Slack user id names one person across
    workspaces (Slack Connect shares it), so the user id decides."""
    for professional in session.exec(
        select(Professional).where(Professional.slack_user_id == user.user_id)
    ).all():
        if professional.id != keep:
            _drop(session, professional, reason="identity")


def unlink_workspace(session: Session, workspace: SlackWorkspace, *, reason: str) -> int:
    """Drop every link made through an installation that is gone (uninstalled, token
    revoked): from now on those professionals are reached by mail only. An org-wide
    installation (no team) takes every workspace of its org with it. Returns how many."""
    query = select(Professional).where(col(Professional.slack_user_id).is_not(None))
    if workspace.enterprise_id is not None:
        query = query.where(Professional.slack_enterprise_id == workspace.enterprise_id)
    else:
        query = query.where(col(Professional.slack_enterprise_id).is_(None))
    if workspace.team_id is not None:
        query = query.where(Professional.slack_team_id == workspace.team_id)
    dropped = session.exec(query).all()
    for professional in dropped:
        _drop(session, professional, reason=reason)
    return len(dropped)


def _drop(session: Session, professional: Professional, *, reason: str) -> None:
    user = professional.slack_user_id
    team = professional.slack_team_id
    professional.slack_user_id = None
    professional.slack_team_id = None
    professional.slack_enterprise_id = None
    session.add(professional)
    audit.record(
        session,
        LINKER,
        "slack-unlinked",
        f"professional:{professional.id}",
        details={"slack_user": user, "slack_team": team, "reason": reason},
    )


def workspace_of(
    session: Session, *, professional_id: int | None, institution_id: str | None
) -> SlackWorkspace | None:
    """The workspace a Slack notification goes out through: the recipient professional's
    linked one; for an institution's channel, the workspace most of its linked professionals
    are in (an organisation's channel is in its own workspace)."""
    if professional_id is not None:
        professional = session.get(Professional, professional_id)
        if professional is None or professional.slack_user_id is None:
            return None
        return SlackWorkspace(professional.slack_enterprise_id, professional.slack_team_id)
    if institution_id is None:
        return None
    rows = session.exec(
        select(Professional.slack_enterprise_id, Professional.slack_team_id).where(
            Professional.institution_id == institution_id,
            col(Professional.slack_user_id).is_not(None),
            col(Professional.active),
        )
    ).all()
    if not rows:
        return None
    (enterprise_id, team_id), _ = Counter(tuple(row) for row in rows).most_common(1)[0]
    return SlackWorkspace(enterprise_id, team_id)


# -- proactive linking (bot.proactive_linking: users.lookupByEmail per installation) ----------


@dataclass(frozen=True)
class Unlinked:
    professional_id: int
    email: str


def unlinked_professionals(session: Session) -> list[Unlinked]:
    """Active professionals with no Slack identity: who a lookup by address may find."""
    rows = session.exec(
        select(Professional.id, Professional.email)
        .where(col(Professional.active), col(Professional.slack_user_id).is_(None))
        .order_by(col(Professional.id))
    ).all()
    return [Unlinked(professional_id or 0, email) for professional_id, email in rows]


def link_found(session: Session, professional_id: int, user: SlackUser) -> bool:
    """Link a professional Slack found by their covenant address, unless they were linked
    meanwhile (by using the bot, or a code) or left: that link is theirs to keep. Nor is a
    Slack account someone else is linked to taken over in the background: when its user next
    uses the bot, bot.identity decides."""
    professional = session.get(Professional, professional_id)
    if professional is None or not professional.active or professional.slack_user_id:
        return False
    taken = session.exec(
        select(Professional.id).where(Professional.slack_user_id == user.user_id)
    ).first()
    if taken is not None:
        return False
    link(session, professional, user, how="lookup")
    return True
