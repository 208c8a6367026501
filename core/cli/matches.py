"""``match consent``: consent after a match (core.consent) from the console, on behalf of a
covenant professional (``--by``), who is checked and logged exactly as on Slack or by e-mail."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from core.cli.runtime import JsonFlag, iso, open_core, print_json, say
from core.cli.signals import ByOption, acting
from core.consent import IN_DUTCH, record_consent
from core.models import ConsentStatus

match_app = typer.Typer(help="Record what happens after a match.", no_args_is_help=True)


class ConsentWord(StrEnum):
    gevraagd = "gevraagd"
    gegeven = "gegeven"
    geweigerd = "geweigerd"
    asked = "asked"
    given = "given"
    refused = "refused"


def register(app: typer.Typer) -> None:
    app.add_typer(match_app, name="match")


@match_app.command("consent")
def match_consent(
    number: Annotated[str, typer.Argument(help="The match number, e.g. M-3.")],
    status: Annotated[
        ConsentWord,
        typer.Argument(
            case_sensitive=False,
            help="gevraagd|gegeven|geweigerd (or asked|given|refused): consent of the youth "
            "or parents to exchange information, for the acting professional's institution.",
        ),
    ],
    by: ByOption,
    json_output: JsonFlag = False,
) -> None:
    """Record consent asked, given or refused after a match (the fact only)."""
    with open_core() as core:
        outcome = core.run(
            lambda session: record_consent(
                number, status.value, session=session, config=core.config, actor=acting(session, by)
            )
        )
    if json_output:
        print_json(
            {
                "match": outcome.match_number,
                "institution": outcome.institution,
                "status": outcome.status,
                "recorded_at": iso(outcome.recorded_at),
                "changed": outcome.changed,
            }
        )
        return
    word = IN_DUTCH[ConsentStatus(outcome.status)]
    if not outcome.changed:
        say(f"Bij {outcome.match_number} stond voor {outcome.institution} al: toestemming {word}.")
        return
    say(
        f"Vastgelegd: toestemming {word} voor {outcome.institution} bij {outcome.match_number}.",
        "green",
    )
