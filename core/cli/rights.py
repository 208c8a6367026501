"""``rights-request add|list|execute|reject``: requests to correct, delete or object (AVG art.
16, 17, 21), recorded and decided by the region's functional administrator (``--by``, role
``admin``), who is checked and logged in the core. ``youth deceased`` (core.cli.youths) purges a
youth on notice of death.

A youth is named by the reference the overview and the inzage show (``--youth J-12``) or by the
identity options of ``youth show``; the requester only by role.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlmodel import Session

from core.actors import professionals_by_id
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
from core.cli.signals import (
    BirthDateOption,
    BsnOption,
    ByOption,
    SexOption,
    SurnameOption,
    acting,
    youth_identity,
)
from core.clock import local_date as local_day
from core.clock import utcnow
from core.errors import InvalidInput
from core.models import RequesterRole, RightsRequest, RightsRequestKind, RightsRequestStatus
from core.rights_requests import (
    KIND_LABELS,
    REQUESTER_LABELS,
    STATUS_LABELS,
    Correction,
    YouthSelector,
    execute_request,
    list_requests,
    record_request,
    reject_request,
    request_item,
)

rights_app = typer.Typer(
    help=(
        "Requests of a youth or parent to correct, delete or object to their data (AVG art. "
        "16, 17, 21): recorded and decided by the region's admin within 4 weeks."
    ),
    no_args_is_help=True,
)

YouthOption = Annotated[
    str | None,
    typer.Option("--youth", help="The youth's reference, e.g. J-12 (or use --bsn, ...)."),
]


def register(app: typer.Typer) -> None:
    app.add_typer(rights_app, name="rights-request")


def youth_selector(
    youth: str | None,
    *,
    bsn: str | None,
    surname: str | None,
    birth_date: str | None,
    sex: Any,
) -> YouthSelector:
    """``--youth J-12``, or the youth's identity as ``youth show`` takes it; not both."""
    if youth and (bsn or surname or birth_date or sex):
        raise InvalidInput(
            "geef --youth óf de identiteit (--bsn, ...), niet allebei", field="--youth"
        )
    if youth:
        return youth
    return youth_identity(None, None, bsn=bsn, birth_date=birth_date, surname=surname, sex=sex)


@rights_app.command("add")
def request_add(
    by: ByOption,
    kind: Annotated[str, typer.Option("--kind", help="correctie, verwijdering or verzet.")],
    requester: Annotated[
        str,
        typer.Option(
            "--requester", help="ouder, jeugdige or 'wettelijk vertegenwoordiger' (a role)."
        ),
    ],
    received: Annotated[
        str | None, typer.Option("--received", help="Date received (default: today).")
    ] = None,
    youth: YouthOption = None,
    bsn: BsnOption = None,
    surname: SurnameOption = None,
    birth_date: BirthDateOption = None,
    sex: SexOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Record a request as it came in; it is to be decided within 4 weeks of receipt."""
    selector = youth_selector(youth, bsn=bsn, surname=surname, birth_date=birth_date, sex=sex)
    received_on = parse_cli_date(received, "ontvangen")
    with open_core() as core:

        def work(session: Session) -> dict[str, Any]:
            request = record_request(
                selector,
                kind,
                requester,
                received_on,
                session=session,
                config=core.config,
                actor=acting(session, by),
            )
            return _item(session, request, core.config.tz)

        item = core.run(work)
    if json_output:
        print_json(item)
        return
    say(
        f"Verzoek {item['id']} ({item['kind']}) is vastgelegd voor jongere {item['youth']}; "
        f"beslissen uiterlijk {local_date(item['deadline_on'])}.",
        "green",
    )


@rights_app.command("list")
def request_list(
    by: ByOption,
    status: Annotated[str | None, typer.Option(help="open, executed, rejected or lapsed.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 100,
    json_output: JsonFlag = False,
) -> None:
    """Rights requests, newest first, with their deadlines."""
    with open_core() as core:
        items = core.run(
            lambda session: list_requests(
                session=session,
                config=core.config,
                actor=acting(session, by),
                status=status,
                limit=limit,
            )
        )
        tz = core.tz
    if json_output:
        print_json(items)
        return
    if not items:
        say("Geen verzoeken gevonden.")
        return
    result = table(
        "Verzoeken (correctie, verwijdering, verzet)",
        "Nummer",
        "Soort",
        "Jongere",
        "Verzoeker",
        "Ontvangen",
        "Uiterlijk",
        "Status",
        "Besloten",
        "Toelichting",
    )
    for item in items:
        status_text = STATUS_LABELS[RightsRequestStatus(item["status"])]
        if item["overdue"]:
            status_text += " (termijn verstreken)"
        result.add_row(
            item["id"],
            KIND_LABELS[RightsRequestKind(item["kind"])],
            item["youth"] or "(verwijderd)",
            REQUESTER_LABELS[RequesterRole(item["requester"])],
            local_date(item["received_on"]),
            local_date(item["deadline_on"]),
            status_text,
            local_time(item["decided_at"], tz),
            item["outcome_note"] or "",
        )
    stdout().print(result)


def parse_correction(text: str) -> Correction:
    """``S-12.code=urgent``: the record, the field, the value it should have."""
    target, equals, value = text.partition("=")
    record, dot, field = target.partition(".")
    if not equals or not dot or not record.strip() or not field.strip():
        raise InvalidInput(
            "gebruik NUMMER.VELD=WAARDE, bijvoorbeeld S-12.code=urgent of R-40.gemeente=Groningen",
            field="--set",
        )
    return Correction(record=record.strip(), field=field.strip(), value=value.strip())


@rights_app.command("execute")
def request_execute(
    number: Annotated[str, typer.Argument(help="The request number, e.g. V-3.")],
    by: ByOption,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="A correction, NUMBER.FIELD=VALUE (repeatable): S-12.code=urgent, "
            "S-12.einddatum=01-03-2027, S-12.geinformeerd=nee, R-40.gemeente=Groningen.",
        ),
    ] = None,
    remove: Annotated[
        list[str] | None,
        typer.Option("--remove", help="A signal or registration to remove (repeatable): S-12."),
    ] = None,
    note: Annotated[str | None, typer.Option("--note", help="What was decided, briefly.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Grant a request: correct (--set) or remove (--remove) the youth's records."""
    corrections = [parse_correction(text) for text in set_ or []]
    with open_core() as core:

        def work(session: Session) -> dict[str, Any]:
            request = execute_request(
                number,
                corrections=corrections,
                removals=list(remove or []),
                note=note,
                session=session,
                config=core.config,
                actor=acting(session, by),
            )
            return _item(session, request, core.config.tz)

        item = core.run(work)
    if json_output:
        print_json(item)
        return
    say(f"Verzoek {item['id']} is uitgevoerd.", "green")
    changes = table(None, "Gegeven", "Wat", "Was", "Wordt")
    for change in item["changes"]:
        if change["action"] == "removed":
            changes.add_row(change["record"], "verwijderd", "", "")
        else:
            changes.add_row(change["record"], change["field"], change["from"], change["to"])
    stdout().print(changes)
    if item["youth"] is None:
        say("Er is niets meer over de jongere vastgelegd: de jongere is uit de index verwijderd.")


@rights_app.command("reject")
def request_reject(
    number: Annotated[str, typer.Argument(help="The request number, e.g. V-3.")],
    by: ByOption,
    reason: Annotated[
        str, typer.Option("--reason", help="Why, as the requester will be told (AVG art. 12(4)).")
    ],
) -> None:
    """Refuse a request, with the reason the requester is given."""
    with open_core() as core:
        rejected = core.run(
            lambda session: (
                reject_request(number, reason, session=session, actor=acting(session, by)).number
            )
        )
    say(f"Verzoek {rejected} is afgewezen.", "green")


def _item(session: Session, request: RightsRequest, tz: Any) -> dict[str, Any]:
    people = professionals_by_id(session, [request.recorded_by_id, request.decided_by_id])
    return request_item(request, people, local_day(utcnow(), tz))
