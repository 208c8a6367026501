"""The covenant's parties, mirrored from the covenant file into the database (see covenant.sync)."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel


class Role(StrEnum):
    PROFESSIONAL = "professional"
    SENIOR = "senior"
    SECRETARIAT = "secretariat"
    INSTITUTION_ADMIN = "institution-admin"
    ADMIN = "admin"


class Municipality(SQLModel, table=True):
    name: str = Field(primary_key=True, max_length=100)
    contact_name: str | None = Field(default=None, max_length=200)
    contact_email: str = Field(max_length=320)
    active: bool = True


class Institution(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=40, index=True)
    notification_email: str = Field(max_length=320)
    allowed_senders: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    municipalities: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    may_coordinate: bool = False
    slack_channel: str | None = Field(default=None, max_length=40)
    smtp_auth_hash: str | None = Field(default=None, max_length=300)
    active: bool = True


class Team(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("institution_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    institution_id: str = Field(foreign_key="institution.id", max_length=64)
    name: str = Field(max_length=200)
    may_signal: bool = False
    active: bool = True


class Professional(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)
    name: str = Field(max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    institution_id: str = Field(foreign_key="institution.id", max_length=64, index=True)
    team_id: int = Field(foreign_key="team.id")
    roles: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    slack_user_id: str | None = Field(default=None, max_length=40, index=True)
    active: bool = True
    # The linked Slack identity is (enterprise, team, user): the Enterprise Grid org and the
    # workspace whose installation of the app knows the user (bot.identity), so a DM goes out
    # with that installation's token (bot.delivery; with SLACK_BOT_TOKEN the one token).
    slack_enterprise_id: str | None = Field(default=None, max_length=40)
    slack_team_id: str | None = Field(default=None, max_length=40, index=True)

    def has_role(self, *roles: Role) -> bool:
        return any(role.value in self.roles for role in roles)
