"""Handing work over (DOMAIN: Transfer on absence): ``absence declare|end`` for a short absence
with a stand-in, ``transfer`` for moving a professional's active signals to a colleague."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlmodel import Session, col, select

from core.cli.runtime import (
    JsonFlag,
    local_date,
    local_time,
    open_core,
    parse_cli_date,
    print_json,
    say,
    stdout,
    table,
)
from core.cli.signals import ByOption, acting
from core.errors import InvalidInput
from core.models import Professional, TransferRequest, TransferStatus

transfer_app = typer.Typer(
    help=(
        "Move a professional's active signals to a colleague of the same institution. "
        "'verwijsindex transfer --from A --to B --by C [--senior D]' requests it (secretariat, "
        "naming the senior) or carries it out at once (institution-admin or admin)."
    ),
    invoke_without_command=True,
)
absence_app = typer.Typer(
    help="Short absence: a stand-in receives notifications.", no_args_is_help=True
)

FromOption = Annotated[
    str | None, typer.Option("--from", help="E-mail of the professional who leaves.")
]
ToOption = Annotated[str | None, typer.Option("--to", help="E-mail of the colleague.")]
OptionalByOption = Annotated[
    str | None, typer.Option("--by", help="E-mail of who acts (secretariat or coordinator).")
]
SeniorOption = Annotated[
    str | None, typer.Option("--senior", help="E-mail of the senior who instructed it.")
]

STATUS_TEXT = {
    TransferStatus.REQUESTED: "aangevraagd",
    TransferStatus.EXECUTED: "uitgevoerd",
    TransferStatus.REJECTED: "afgewezen",
}


def register(app: typer.Typer) -> None:
    app.add_typer(transfer_app, name="transfer")
    app.add_typer(absence_app, name="absence")


# -- transfer -----------------------------------------------------------------------------------


@transfer_app.callback()
def transfer(
    ctx: typer.Context,
    from_email: FromOption = None,
    to_email: ToOption = None,
    by: OptionalByOption = None,
    senior: SeniorOption = None,
    json_output: JsonFlag = False,
) -> None:
    given = [from_email, to_email, by, senior]
    if ctx.invoked_subcommand is not None:
        if any(given):
            raise typer.BadParameter(
                f"--from/--to/--by/--senior belong to 'transfer' itself or to 'transfer request', "
                f"not to 'transfer {ctx.invoked_subcommand}'"
            )
        return
    if not any(given):
        typer.echo(ctx.get_help())
        raise typer.Exit(0)
    _transfer(from_email, to_email, by, senior, json_output)


@transfer_app.command("request")
def transfer_request(
    from_email: FromOption = None,
    to_email: ToOption = None,
    by: OptionalByOption = None,
    senior: SeniorOption = None,
    json_output: JsonFlag = False,
) -> None:
    """The same as 'verwijsindex transfer --from ... --to ... --by ...'."""
    _transfer(from_email, to_email, by, senior, json_output)


def _transfer(
    from_email: str | None,
    to_email: str | None,
    by: str | None,
    senior: str | None,
    json_output: bool,
) -> None:
    from core.transfer import transfer_signals

    missing = [
        name
        for name, value in (("--from", from_email), ("--to", to_email), ("--by", by))
        if not value
    ]
    if missing:
        raise typer.BadParameter(f"missing option(s): {', '.join(missing)}")
    assert from_email and to_email and by

    with open_core() as core:

        def work(session: Session) -> dict[str, Any]:
            request = transfer_signals(
                from_email,
                to_email,
                by_email=by,
                instructed_by_email=senior,
                session=session,
                config=core.config,
                actor=acting(session, by),
            )
            return transfer_item(session, request)

        item = core.run(work)
    if json_output:
        print_json(item)
        return
    if item["status"] == TransferStatus.EXECUTED:
        say(
            f"Overdracht {item['id']} is uitgevoerd: {item['signals_moved']} signalen van "
            f"{item['from']} naar {item['to']}.",
            "green",
        )
    else:
        say(
            f"Overdracht {item['id']} is aangevraagd. Een instellingscoördinator of functioneel "
            f"beheerder voert hem uit met: verwijsindex transfer execute {item['id']} --by E-MAIL",
            "green",
        )


@transfer_app.command("execute")
def transfer_execute(
    number: Annotated[str, typer.Argument(help="The transfer number, e.g. T-3.")],
    by: ByOption,
    json_output: JsonFlag = False,
) -> None:
    """Carry out a requested transfer (institution-admin or admin)."""
    from core.transfer import execute_transfer

    with open_core() as core:
        item = core.run(
            lambda session: transfer_item(
                session,
                execute_transfer(
                    number, session=session, config=core.config, actor=acting(session, by)
                ),
            )
        )
    if json_output:
        print_json(item)
        return
    say(
        f"Overdracht {item['id']} is uitgevoerd: {item['signals_moved']} signalen van "
        f"{item['from']} naar {item['to']}.",
        "green",
    )


@transfer_app.command("reject")
def transfer_reject(
    number: Annotated[str, typer.Argument(help="The transfer number, e.g. T-3.")],
    by: ByOption,
) -> None:
    """Turn down a requested transfer (institution-admin or admin)."""
    from core.transfer import reject_transfer

    with open_core() as core:
        rejected = core.run(
            lambda session: reject_transfer(
                number, session=session, config=core.config, actor=acting(session, by)
            )
        )
    say(f"Overdracht {rejected.number} is afgewezen.", "green")


@transfer_app.command("list")
def transfer_list(
    status: Annotated[str | None, typer.Option(help="requested, executed or rejected.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 100,
    json_output: JsonFlag = False,
) -> None:
    """Transfer requests, newest first."""
    with open_core(sync=False) as core:
        items = core.run(lambda session: _transfers(session, status, limit))
        tz = core.tz
    if json_output:
        print_json(items)
        return
    if not items:
        say("Geen overdrachten gevonden.")
        return
    result = table(
        "Overdrachten",
        "Nummer",
        "Instelling",
        "Van",
        "Naar",
        "Status",
        "Aangevraagd door",
        "Senior",
        "Aangevraagd",
        "Uitgevoerd",
        "Signalen",
    )
    for item in items:
        result.add_row(
            item["id"],
            item["institution"],
            item["from"],
            item["to"],
            STATUS_TEXT.get(item["status"], item["status"]),
            item["requested_by"],
            item["instructed_by"],
            local_time(item["requested_at"], tz),
            local_time(item["executed_at"], tz),
            str(item["signals_moved"]),
        )
    stdout().print(result)


def _transfers(session: Session, status: str | None, limit: int) -> list[dict[str, Any]]:
    query = select(TransferRequest)
    if status:
        query = query.where(TransferRequest.status == status.strip().lower())
    query = query.order_by(col(TransferRequest.id).desc()).limit(limit)
    return [transfer_item(session, request) for request in session.exec(query).all()]


def transfer_item(session: Session, request: TransferRequest) -> dict[str, Any]:
    def email(professional_id: int | None) -> str | None:
        person = session.get(Professional, professional_id) if professional_id else None
        return person.email if person else None

    return {
        "id": request.number,
        "institution": request.institution_id,
        "from": email(request.from_professional_id),
        "to": email(request.to_professional_id),
        "requested_by": email(request.requested_by_id),
        "instructed_by": email(request.instructed_by_id),
        "status": request.status,
        "requested_at": request.requested_at.isoformat(),
        "executed_by": email(request.executed_by_id),
        "executed_at": request.executed_at.isoformat() if request.executed_at else None,
        "signals_moved": request.signals_moved,
    }


# -- absence ------------------------------------------------------------------------------------


@absence_app.command("declare")
def absence_declare(
    by: ByOption,
    starts_on: Annotated[str, typer.Option("--from", help="First day away (DD-MM-JJJJ).")],
    ends_on: Annotated[str, typer.Option("--to", help="Last day away (DD-MM-JJJJ).")],
    stand_in: Annotated[
        str | None, typer.Option("--stand-in", help="E-mail of the colleague who stands in.")
    ] = None,
    for_email: Annotated[
        str | None,
        typer.Option("--for", help="The absent professional, when --by acts for them."),
    ] = None,
) -> None:
    """Declare an absence; the stand-in receives the notifications meanwhile."""
    from core.absence import declare_absence

    first = parse_cli_date(starts_on, "van")
    last = parse_cli_date(ends_on, "tot")
    if first is None or last is None:
        raise InvalidInput("geef de eerste en de laatste dag van de afwezigheid", field="van")
    absent = (for_email or by).strip().lower()
    with open_core() as core:
        core.run(
            lambda session: declare_absence(
                absent,
                first,
                last,
                stand_in,
                session=session,
                config=core.config,
                actor=acting(session, by),
            )
        )
    stand_in_text = f"; vervanger: {stand_in.strip().lower()}" if stand_in else ""
    say(
        f"Afwezigheid van {absent} vastgelegd: {local_date(first)} t/m {local_date(last)}"
        f"{stand_in_text}.",
        "green",
    )


@absence_app.command("end")
def absence_end(
    by: ByOption,
    for_email: Annotated[
        str | None,
        typer.Option("--for", help="The absent professional, when --by acts for them."),
    ] = None,
) -> None:
    """End the running (or planned) absence: back at work."""
    from core.absence import end_absence

    absent = (for_email or by).strip().lower()
    with open_core() as core:
        core.run(
            lambda session: end_absence(
                absent, session=session, config=core.config, actor=acting(session, by)
            )
        )
    say(f"Afwezigheid van {absent} is beëindigd.", "green")
