"""The app's installations in Slack (a distributed app: one per workspace or Enterprise Grid
org) and the OAuth ``state`` values of installs under way, kept in the project's database.

``bot.installations`` adapts these to slack_sdk's installation and state store interfaces; the
queries and the rules (which installation serves a request, what an uninstall drops) live here.
An installation's removal drops the Slack links made through it: those professionals get
their notifications by mail only from then on (core.notifications.dispatch), in the logboek.

A bot token is stored sealed under the region's key ring (core.sealing, a purpose of its own):
whoever reads the database or a backup without the key gets no working token of any workspace.
:func:`bot_token` is the one place a token is opened; ``verwijsindex keys rotate`` reseals the
tokens under a new key (core.key_rotation). An OAuth ``state`` is kept as a digest only.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlmodel import Session, col, delete, select

from core import audit
from core.clock import as_utc, utcnow
from core.keyring import KeyRing
from core.models import SlackInstallation, SlackOAuthState
from core.sealing import SLACK_TOKEN_PURPOSE, Sealer
from core.slack_links import SlackWorkspace, unlink_workspace

INSTALLER = audit.Actor(kind="system", identifier="slack-installation", channel="slack")


def workspace_key(enterprise_id: str | None, team_id: str | None) -> str:
    """Unique per installation: ``E…:T…``, ``-:T…`` (no Grid), ``E…:-`` (org-wide)."""
    return f"{enterprise_id or '-'}:{team_id or '-'}"


def token_sealer(ring: KeyRing) -> Sealer:
    return Sealer(
        ring,
        SLACK_TOKEN_PURPOSE,
        unreadable="het Slack-token van een installatie is niet te lezen met de sleutel van de "
        "regio",
    )


def bot_token(ring: KeyRing, installation: SlackInstallation) -> str:
    """The installation's bot token, opened: the Bolt authorize and installation store, the
    delivery worker's and proactive linking's clients all get it here."""
    return token_sealer(ring).open(installation.bot_token_sealed).decode()


def save_installation(
    session: Session, ring: KeyRing, installation: SlackInstallation, *, token: str
) -> SlackInstallation:
    """Store a new installation, or replace the one of its workspace (a reinstall brings a new
    token and maybe new scopes). ``token`` is sealed here; ``installation``'s own
    ``workspace_key`` and ``bot_token_sealed`` are not used."""
    if not token:
        raise ValueError("an installation without a bot token")
    team_id = None if installation.is_enterprise_install else installation.team_id
    key = workspace_key(installation.enterprise_id, team_id)
    row = session.exec(
        select(SlackInstallation).where(SlackInstallation.workspace_key == key)
    ).first()
    fields = installation.model_dump(exclude={"id", "workspace_key", "team_id", "bot_token_sealed"})
    fields["bot_token_sealed"] = token_sealer(ring).seal(token.encode())
    if row is None:
        row = SlackInstallation(workspace_key=key, team_id=team_id, **fields)
    else:
        for name, value in fields.items():
            setattr(row, name, value)
    session.add(row)
    audit.record(
        session,
        INSTALLER,
        "slack-installed",
        f"slack-workspace:{key}",
        details={"team_name": installation.team_name, "installer": installation.installer_user_id},
    )
    return row


def find_installation(
    session: Session, *, enterprise_id: str | None, team_id: str | None
) -> SlackInstallation | None:
    """The installation serving a workspace: its own, else its org's org-wide one."""
    keys = [workspace_key(enterprise_id, team_id)]
    if enterprise_id is not None:
        keys.append(workspace_key(enterprise_id, None))
    rows = session.exec(
        select(SlackInstallation).where(col(SlackInstallation.workspace_key).in_(keys))
    ).all()
    by_key = {row.workspace_key: row for row in rows}
    return next((by_key[key] for key in keys if key in by_key), None)


def remove_installation(session: Session, workspace: SlackWorkspace, *, reason: str) -> int | None:
    """The app was uninstalled from ``workspace`` (or its bot token revoked): the installation
    and every link made through it go. Returns how many professionals were unlinked, or None
    when there was no such installation (Slack sends both events; the second finds nothing)."""
    row = find_installation(
        session, enterprise_id=workspace.enterprise_id, team_id=workspace.team_id
    )
    if row is None:
        return None
    gone = SlackWorkspace(row.enterprise_id, row.team_id)
    session.delete(row)
    unlinked = unlink_workspace(session, gone, reason=reason)
    audit.record(
        session,
        INSTALLER,
        "slack-uninstalled",
        f"slack-workspace:{row.workspace_key}",
        details={"reason": reason, "unlinked": unlinked},
    )
    return unlinked


def installations(session: Session) -> list[SlackInstallation]:
    return list(session.exec(select(SlackInstallation).order_by(col(SlackInstallation.id))).all())


# -- OAuth state (RFC 6749 §10.12: the redirect must come back from the install we started) --


def _state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def issue_oauth_state(
    session: Session, state: str, *, lifetime: timedelta, now: datetime | None = None
) -> None:
    now = now or utcnow()
    session.exec(delete(SlackOAuthState).where(col(SlackOAuthState.expires_at) <= now))
    session.add(SlackOAuthState(state_hash=_state_hash(state), expires_at=now + lifetime))


def consume_oauth_state(session: Session, state: str, *, now: datetime | None = None) -> bool:
    """Whether ``state`` was issued and is still valid; it cannot be used again either way."""
    row = session.get(SlackOAuthState, _state_hash(state))
    if row is None:
        return False
    session.delete(row)
    return as_utc(row.expires_at) > (now or utcnow())
