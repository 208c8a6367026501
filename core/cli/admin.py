"""Running the index: ``db upgrade``, ``covenant check``, ``sweep``, ``outbox list|retry`` and
``audit verify|anchor|list``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text
from sqlmodel import Session, col, select

from core.cli.runtime import (
    EXIT_CONFIGURATION,
    EXIT_REFUSED,
    JsonFlag,
    load_cli_settings,
    local_time,
    open_core,
    operator_actor,
    parse_moment,
    print_json,
    say,
    stdout,
    table,
    upgrade_schema,
)
from core.clock import utcnow
from core.covenant import Covenant, CovenantError, load_covenant
from core.covenant_plan import CovenantPlan, as_json, describe, load_state, plan_covenant_change
from core.models import AuditEvent, Institution, OutboxMessage

db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
covenant_app = typer.Typer(help="The covenant (convenant) file.", no_args_is_help=True)
outbox_app = typer.Typer(
    help="Notifications waiting for, or done with, delivery.", no_args_is_help=True
)
audit_app = typer.Typer(help="The logboek (MAC-chained audit log).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
    app.add_typer(covenant_app, name="covenant")
    app.command("sweep")(sweep_command)
    app.add_typer(outbox_app, name="outbox")
    app.add_typer(audit_app, name="audit")


# -- db -----------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create the tables, or migrate them to the newest revision (Alembic head)."""
    settings = load_cli_settings()
    revision = upgrade_schema(settings)
    say(f"Database is bijgewerkt tot revisie {revision or 'head'}.", "green")


# -- covenant -----------------------------------------------------------------------------------


@covenant_app.command("hash-password")
def covenant_hash_password(
    password: Annotated[
        str,
        typer.Option(
            prompt="Wachtwoord voor de koppeling",
            hide_input=True,
            confirmation_prompt=True,
            help="Asked for when not given; never echoed.",
        ),
    ],
) -> None:
    """Print the hash to put in an institution's ``smtp_auth_hash`` (SMTP AUTH for its client
    system); the covenant never holds the password itself."""
    from core.passwords import hash_password

    typer.echo(hash_password(password))


@covenant_app.command("check")
def covenant_check(
    file: Annotated[Path, typer.Argument(help="The covenant TOML file.")],
    json_output: JsonFlag = False,
    against_db: Annotated[
        bool,
        typer.Option(
            "--against-db",
            help="Also list what taking this file into use would do to the database's index.",
        ),
    ] = False,
) -> None:
    """Validate a covenant file: a summary when it is usable, every problem (exit 2) when not:
    wrong values and broken references at once, each with its key path and item.
    With ``--against-db``: what the change would do (nothing is changed)."""
    try:
        covenant = load_covenant(file)
    except CovenantError as exc:
        if not json_output:
            raise  # the root command prints every problem and exits 2
        print_json(
            {
                "valid": False,
                "source": str(file),
                "problems": [
                    {
                        "path": p.path,
                        "item": p.item,
                        "message": p.message,
                        "line": p.line,
                        "column": p.column,
                    }
                    for p in exc.problems
                ],
            }
        )
        raise typer.Exit(EXIT_CONFIGURATION) from None
    summary = covenant_summary(covenant)
    changes = covenant_changes(covenant) if against_db else None
    if json_output:
        extra = {"against_db": as_json(changes[0])} if changes else {}
        print_json({"valid": True, "source": str(file), **summary, **extra})
        return
    say(f"{file}: het convenant is in orde.", "green")
    overview = table(None, "", "")
    overview.show_header = False
    overview.add_row("Regio", summary["region"])
    overview.add_row("Gemeenten", str(summary["municipalities"]))
    overview.add_row("Instellingen", str(summary["institutions"]))
    overview.add_row("Teams", str(summary["teams"]))
    overview.add_row("Hulpverleners", str(summary["professionals"]))
    overview.add_row("Signaalcodes", ", ".join(summary["signal_codes"]))
    overview.add_row("Beslisregels", ", ".join(summary["coordination_rules"]))
    stdout().print(overview)
    if changes is not None:
        plan, lines = changes
        if plan.changes_nothing:
            say(
                "Tegen de database: deze wijziging verandert niets aan lopende signalen, "
                "registraties of coördinaties."
            )
        else:
            say("Tegen de database: wat deze wijziging zou doen (er is niets gewijzigd):", "yellow")
            for line in lines:
                say(line)


def covenant_changes(covenant: Covenant) -> tuple[CovenantPlan, list[str]]:
    """What taking ``covenant`` into use would do to the configured database (read only)."""
    with open_core(sync=False) as core, Session(core.engine) as session:
        state = load_state(session, core.config, covenant, utcnow(), every_coordination=True)
        plan = plan_covenant_change(state, covenant)
        names = {i.id: i.name for i in session.exec(select(Institution)).all()}
        names.update((i.id, i.name) for i in covenant.institutions)
        session.rollback()
    return plan, describe(plan, names)


def covenant_summary(covenant: Covenant) -> dict[str, Any]:
    return {
        "region": covenant.region.name,
        "municipalities": len(covenant.municipalities),
        "institutions": len(covenant.institutions),
        "teams": sum(len(institution.teams) for institution in covenant.institutions),
        "professionals": len(covenant.professionals),
        "signal_codes": [code.code for code in covenant.signal_codes],
        "coordination_rules": [rule.name for rule in covenant.coordination_rules],
    }


# -- sweep --------------------------------------------------------------------------------------


def sweep_command(
    now: Annotated[
        str | None,
        typer.Option(help="Pretend it is this moment (ISO 8601; without offset: local time)."),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Run the time-driven jobs once: deadlines, expiry warnings, archiving, purging."""
    from core.scheduler import count_label, sweep

    with open_core() as core:
        counts = sweep(core.engine, core.config, parse_moment(now, core.tz))
    if json_output:
        print_json(counts)
        return
    result = table("Sweep", "Taak", "Aantal")
    for name, count in counts.items():
        result.add_row(count_label(name), str(count))
    stdout().print(result)


# -- outbox -------------------------------------------------------------------------------------


@outbox_app.command("list")
def outbox_list(
    status: Annotated[str | None, typer.Option(help="pending, sending, sent or failed.")] = None,
    kind: Annotated[str | None, typer.Option(help="E.g. nieuwe-betrokkenheid, match.")] = None,
    channel: Annotated[str | None, typer.Option(help="email or slack.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 100,
    json_output: JsonFlag = False,
) -> None:
    """Notifications in the outbox, newest first."""
    from core.outbox import list_outbox

    with open_core(sync=False) as core:
        rows = core.run(
            lambda session: [
                outbox_item(row)
                for row in list_outbox(
                    session, status=status, kind=kind, channel=channel, limit=limit
                )
            ]
        )
        tz = core.tz
    if json_output:
        print_json(rows)
        return
    if not rows:
        say("De outbox is leeg (voor deze selectie).")
        return
    result = table(
        "Outbox",
        "Id",
        "Soort",
        "Kanaal",
        "Ontvanger",
        "Rol",
        "Ref",
        "Status",
        "Pogingen",
        "Aangemaakt",
        "Verstuurd / fout",
        prose=("Verstuurd / fout",),
    )
    for row in rows:
        result.add_row(
            str(row["id"]),
            row["kind"],
            row["channel"],
            row["recipient"],
            row["recipient_role"],
            row["reference"],
            _status_text(row["status"]),
            str(row["attempts"]),
            local_time(row["created_at"], tz),
            local_time(row["sent_at"], tz) if row["sent_at"] else (row["last_error"] or ""),
        )
    stdout().print(result)


def outbox_item(row: OutboxMessage) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "channel": row.channel,
        "recipient": row.recipient,
        "recipient_role": row.recipient_role,
        "reference": row.reference,
        "status": row.status,
        "attempts": row.attempts,
        "created_at": row.created_at.isoformat(),
        "sent_at": row.sent_at.isoformat() if row.sent_at else None,
        "last_error": row.last_error,
        "idempotency_key": row.idempotency_key,
    }


def _status_text(status: str) -> Text:
    style = {"sent": "green", "failed": "bold red", "sending": "yellow"}.get(status, "")
    return Text(status, style=style)


@outbox_app.command("retry")
def outbox_retry(
    notification_id: Annotated[int, typer.Argument(metavar="ID", help="The outbox row's id.")],
    by: Annotated[str | None, typer.Option(help="Your e-mail, for the logboek.")] = None,
) -> None:
    """Put a failed notification (dead letter) back in the queue."""
    from core.outbox import retry_failed

    with open_core(sync=False) as core:
        retry_failed(core.engine, notification_id, actor=operator_actor(by))
    say(f"Bericht {notification_id} staat weer in de wachtrij.", "green")


# -- audit --------------------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify(
    anchor: Annotated[
        Path | None,
        typer.Option(
            "--anchor",
            exists=True,
            dir_okay=False,
            help="An anchor from 'audit anchor' (or the daily mail): the log must still hold it.",
        ),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Check the MAC chain of the logboek (and, with --anchor, that it was not rolled back to
    before that checkpoint); exit 1 at the first event that was changed."""
    from core.audit import Anchor, check_anchor, verify_chain

    checkpoint = None if anchor is None else Anchor.parse(anchor.read_text(encoding="utf-8"))
    with open_core(sync=False) as core:
        count, chain_break = core.run(verify_chain)
        if chain_break is None and checkpoint is not None:
            chain_break = core.run(lambda session: check_anchor(session, checkpoint))
    if json_output:
        print_json(
            {
                "events": count,
                "intact": chain_break is None,
                "anchor": None if checkpoint is None else checkpoint.event_id,
                "break": None
                if chain_break is None
                else {
                    "event_id": chain_break.event_id,
                    "reason": chain_break.reason,
                },
            }
        )
    elif chain_break is None:
        anchored = "" if checkpoint is None else f", anchor at event {checkpoint.event_id} held"
        say(f"OK: {count} events, chain intact{anchored}", "green")
    else:
        say(
            f"BROKEN: the chain breaks at event {chain_break.event_id}: {chain_break.reason} "
            f"({count} events checked)",
            "bold red",
        )
    if chain_break is not None:
        raise typer.Exit(EXIT_REFUSED)


@audit_app.command("anchor")
def audit_anchor(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", dir_okay=False, help="Write the anchor to this file as well."
        ),
    ] = None,
) -> None:
    """Print a signed checkpoint of the logboek (event, its MAC, time) to keep outside the
    database; 'audit verify --anchor FILE' later shows the log was not rolled back past it."""
    from core.audit import ChainBreak, make_anchor

    with open_core(sync=False) as core:
        anchor = core.run(make_anchor)
    if isinstance(anchor, ChainBreak):
        say(f"BROKEN: no anchor: {anchor.reason} (event {anchor.event_id})", "bold red")
        raise typer.Exit(EXIT_REFUSED)
    line = anchor.to_json()
    if output is not None:
        output.write_text(line + "\n", encoding="utf-8")
    typer.echo(line)


@audit_app.command("list")
def audit_list(
    subject: Annotated[
        str | None, typer.Option(help="E.g. youth:12, professional:3, outbox:40.")
    ] = None,
    action: Annotated[str | None, typer.Option(help="E.g. signal-placed, youth-viewed.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 50,
    json_output: JsonFlag = False,
) -> None:
    """Events in the logboek, newest first."""
    with open_core(sync=False) as core:
        events = core.run(lambda session: _audit_events(session, subject, action, limit))
        tz = core.tz
    if json_output:
        print_json(events)
        return
    if not events:
        say("Geen gebeurtenissen gevonden.")
        return
    result = table(
        "Logboek",
        "Id",
        "Tijd",
        "Actor",
        "Actie",
        "Onderwerp",
        "Kanaal",
        "Details",
        prose=("Details",),
    )
    for event in events:
        details = ", ".join(f"{key}={value}" for key, value in event["details"].items())
        result.add_row(
            str(event["id"]),
            local_time(event["occurred_at"], tz),
            event["actor"],
            event["action"],
            event["subject"],
            event["channel"],
            details,
        )
    stdout().print(result)


def _audit_events(
    session: Session, subject: str | None, action: str | None, limit: int
) -> list[dict[str, Any]]:
    query = select(AuditEvent)
    if subject:
        query = query.where(AuditEvent.subject == subject.strip())
    if action:
        query = query.where(AuditEvent.action == action.strip())
    query = query.order_by(col(AuditEvent.id).desc()).limit(limit)
    return [
        {
            "id": event.id,
            "occurred_at": event.occurred_at.isoformat(),
            "actor": event.actor,
            "action": event.action,
            "subject": event.subject,
            "channel": event.channel,
            "details": event.details,
        }
        for event in session.exec(query).all()
    ]
