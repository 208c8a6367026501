"""Mirror the covenant into the database: institutions, teams, professionals, municipalities.

Parties that left the covenant are deactivated, never deleted: their past signals and the
logboek still refer to them. Given the core's ``config``, the sync also applies what an
institution's leaving means (core.covenant_plan, core.institution_departure): its signals and
registrations end, its coordinations are reassigned, the others are told.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import event
from sqlmodel import Session, select

from core import audit
from core.clock import utcnow
from core.config import CoreConfig
from core.covenant.schema import Covenant
from core.covenant_plan import load_state, plan_covenant_change
from core.institution_departure import depart
from core.models import Institution, Municipality, Professional, Team
from core.sender_directory import forget_sender_directories


@dataclass(frozen=True)
class SyncReport:
    municipalities: int
    institutions: int
    teams: int
    professionals: int
    deactivated: int


def sync_covenant(
    session: Session,
    covenant: Covenant,
    *,
    actor: audit.Actor | None = None,
    config: CoreConfig | None = None,
    now: datetime | None = None,
) -> SyncReport:
    now = now or utcnow()
    actor = actor or audit.Actor(kind="system", identifier="covenant-sync", channel="system")
    plan = None
    if config is not None:
        if config.covenant is not covenant:  # reassignments follow the new covenant's rules
            config = dataclasses.replace(config, covenant=covenant)
        plan = plan_covenant_change(
            load_state(session, config, covenant, now, every_coordination=False), covenant
        )
    deactivated = 0
    seen_municipalities = set()
    for m in covenant.municipalities:
        municipality = session.get(Municipality, m.name) or Municipality(
            name=m.name, contact_email=m.contact_email
        )
        municipality.contact_name = m.contact_name
        municipality.contact_email = m.contact_email
        municipality.active = True
        session.add(municipality)
        seen_municipalities.add(m.name)
    for municipality in session.exec(select(Municipality)).all():
        if municipality.name not in seen_municipalities and municipality.active:
            municipality.active = False
            deactivated += 1

    teams_by_key: dict[tuple[str, str], Team] = {
        (t.institution_id, t.name): t for t in session.exec(select(Team)).all()
    }
    seen_institutions, seen_teams = set(), set()
    for inst in covenant.institutions:
        institution = session.get(Institution, inst.id) or Institution(
            id=inst.id, name=inst.name, kind=inst.kind, notification_email=inst.notification_email
        )
        institution.name = inst.name
        institution.kind = inst.kind
        institution.notification_email = inst.notification_email
        institution.allowed_senders = list(inst.allowed_senders)
        institution.municipalities = list(inst.municipalities)
        institution.may_coordinate = inst.may_coordinate
        institution.slack_channel = inst.slack_channel
        institution.smtp_auth_hash = inst.smtp_auth_hash
        institution.active = True
        session.add(institution)
        seen_institutions.add(inst.id)
        session.flush()
        for team in inst.teams:
            team_row = teams_by_key.get((inst.id, team.name)) or Team(
                institution_id=inst.id, name=team.name
            )
            team_row.may_signal = team.may_signal
            team_row.active = True
            session.add(team_row)
            teams_by_key[(inst.id, team.name)] = team_row
            seen_teams.add((inst.id, team.name))
    for institution in session.exec(select(Institution)).all():
        if institution.id not in seen_institutions and institution.active:
            institution.active = False
            deactivated += 1
    for key, team_row in teams_by_key.items():
        if key not in seen_teams and team_row.active:
            team_row.active = False
            deactivated += 1
    session.flush()

    seen_emails = set()
    for person in covenant.professionals:
        email = person.email.lower()
        team_row = teams_by_key[(person.institution, person.team)]
        professional = session.exec(
            select(Professional).where(Professional.email == email)
        ).first() or Professional(
            email=email,
            name=person.name,
            institution_id=person.institution,
            team_id=team_row.id or 0,
        )
        professional.name = person.name
        professional.phone = person.phone
        professional.institution_id = person.institution
        professional.team_id = team_row.id or 0
        professional.roles = list(person.roles)
        professional.active = True
        session.add(professional)
        seen_emails.add(email)
    for professional in session.exec(select(Professional)).all():
        if professional.email not in seen_emails and professional.active:
            professional.active = False
            deactivated += 1
    session.flush()
    report = SyncReport(
        municipalities=len(seen_municipalities),
        institutions=len(seen_institutions),
        teams=len(seen_teams),
        professionals=len(seen_emails),
        deactivated=deactivated,
    )
    audit.record(
        session,
        actor,
        "covenant-synced",
        "covenant",
        details={"region": covenant.region.name, **report.__dict__},
    )
    if plan is not None and config is not None:
        for departure in plan.institutions:
            depart(session, config, departure, actor=actor, now=now)
    # The senders the SMTP listener keeps in memory: forgotten now, and again once this commits
    # (a check in between may have loaded the rows as they were before).
    forget_sender_directories()
    event.listen(session, "after_commit", lambda _session: forget_sender_directories(), once=True)
    return report
