"""``signal place|withdraw|extend|informed``: administrative signalling from the console, on
behalf of a covenant professional (``--by``), who is checked and logged exactly as on Slack or
by e-mail."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated

import typer
from sqlmodel import Session

from core.actors import professional_actor, require_professional
from core.audit import Actor
from core.cli.runtime import (
    JsonFlag,
    iso,
    local_date,
    open_core,
    parse_cli_date,
    print_json,
    say,
    stdout,
    table,
)
from core.config import CoreConfig
from core.errors import InvalidInput
from core.identity import YouthIdentity, normalize_bsn
from core.informing import record_informed
from core.signals import PlaceSignal, SignalOutcome, extend_signal, place_signal, withdraw_signal
from core.youths import birth_date_of, find_youth

signal_app = typer.Typer(
    help="Place, withdraw or extend a signal, or record informing.", no_args_is_help=True
)

# With a BSN the identity key is the BSN alone (core.identity), so looking a youth up needs no
# birth date; this stands in for it and is never stored.
LOOKUP_ONLY_BIRTH_DATE = date(2000, 1, 1)


class Informed(StrEnum):
    ja = "ja"
    nee = "nee"
    uitgesteld = "uitgesteld"


class Sex(StrEnum):
    M = "M"
    V = "V"
    X = "X"


class WithdrawReason(StrEnum):
    onterecht = "onterecht"
    risico_weg = "risico-weg"


BsnOption = Annotated[str | None, typer.Option("--bsn", help="The youth's BSN (elfproef).")]
SurnameOption = Annotated[
    str | None, typer.Option("--surname", help="Without BSN: the youth's surname.")
]
BirthDateOption = Annotated[
    str | None, typer.Option("--birth-date", help="DD-MM-JJJJ or JJJJ-MM-DD.")
]
SexOption = Annotated[
    Sex | None, typer.Option("--sex", case_sensitive=False, help="Without BSN: M, V or X.")
]
ByOption = Annotated[str, typer.Option("--by", help="E-mail of the acting professional.")]


def register(app: typer.Typer) -> None:
    app.add_typer(signal_app, name="signal")


def acting(session: Session, email: str) -> Actor:
    return professional_actor(require_professional(session, email, field="--by"), "cli")


def youth_identity(
    session: Session | None,
    config: CoreConfig | None,
    *,
    bsn: str | None,
    birth_date: str | None,
    surname: str | None,
    sex: Sex | None,
    name: str | None = None,
) -> YouthIdentity:
    """The youth as given on the command line.

    With a BSN and no birth date, a youth already in the index is found by BSN alone and keeps
    its known birth date (when ``session`` is given); a new youth needs the birth date.
    """
    born = parse_cli_date(birth_date, "Geboortedatum")
    if bsn:
        number = normalize_bsn(bsn)
        if born is None and session is not None and config is not None:
            known = find_youth(
                session, config, YouthIdentity(bsn=number, birth_date=LOOKUP_ONLY_BIRTH_DATE)
            )
            if known is None:
                raise InvalidInput(
                    "ontbreekt: deze jongere staat nog niet in de verwijsindex",
                    field="Geboortedatum",
                )
            born = birth_date_of(config, known)
        return YouthIdentity(
            bsn=number, birth_date=born or LOOKUP_ONLY_BIRTH_DATE, name=_clean(name)
        )
    if not surname or sex is None or born is None:
        raise InvalidInput(
            "geef --bsn, of zonder BSN --surname, --birth-date en --sex", field="BSN"
        )
    return YouthIdentity(
        birth_date=born, surname=surname.strip(), sex=sex.value, name=_clean(name) or surname
    )


def _clean(text: str | None) -> str | None:
    return (text or "").strip() or None


@signal_app.command("place")
def signal_place(
    by: ByOption,
    municipality: Annotated[str, typer.Option(help="The youth's municipality (covenant name).")],
    code: Annotated[str, typer.Option(help="A covenant signal code, e.g. laag or urgent.")],
    informed: Annotated[
        Informed,
        typer.Option(
            case_sensitive=False, help="Were youth/parents informed? ja, nee, uitgesteld."
        ),
    ],
    bsn: BsnOption = None,
    birth_date: BirthDateOption = None,
    surname: SurnameOption = None,
    sex: SexOption = None,
    name: Annotated[
        str | None, typer.Option(help="The youth's name (kept encrypted, for inzage).")
    ] = None,
    postpone_reason: Annotated[
        str | None,
        typer.Option(
            help="Why not (yet) informed: required with --informed nee or uitgesteld "
            "(e.g. safety)."
        ),
    ] = None,
    reference: Annotated[str | None, typer.Option(help="Your own client reference.")] = None,
    ends_on: Annotated[
        str | None, typer.Option(help="End date (at most 2 years from today).")
    ] = None,
    term_months: Annotated[
        int | None, typer.Option(help="Or the term in months (default: the region's).")
    ] = None,
    leaflet: Annotated[
        bool, typer.Option("--leaflet/--no-leaflet", help="Was the leaflet handed over?")
    ] = False,
    parent_bsn: Annotated[
        list[str] | None, typer.Option(help="A parent's BSN (repeatable): family matching.")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Place a signal on behalf of a professional."""
    end = parse_cli_date(ends_on, "Einddatum")

    with open_core() as core:

        def place(session: Session) -> SignalOutcome:
            actor = acting(session, by)  # who acts is settled before what they ask
            request = PlaceSignal(
                identity=youth_identity(
                    session,
                    core.config,
                    bsn=bsn,
                    birth_date=birth_date,
                    surname=surname,
                    sex=sex,
                    name=name,
                ),
                municipality=municipality,
                code=code.strip().lower(),
                informed=informed.value,
                reference=reference,
                ends_on=end,
                term_months=term_months,
                postpone_reason=postpone_reason,
                leaflet_given=leaflet,
                parent_bsns=tuple(parent_bsn or ()),
            )
            return place_signal(request, session=session, config=core.config, actor=actor)

        outcome = core.run(place)
    if json_output:
        print_json(
            {
                "signal": outcome.number,
                "ends_on": iso(outcome.ends_on),
                "informed_party": outcome.informed_party,
                "match": outcome.match_number,
                "coordination": outcome.coordination_number,
            }
        )
        return
    say(f"Signaal {outcome.number} is geplaatst.", "green")
    result = table(None, "", "")
    result.show_header = False
    result.add_row("Einddatum", local_date(outcome.ends_on))
    result.add_row("Te informeren", outcome.informed_party)
    result.add_row("Match", outcome.match_number or "geen")
    result.add_row("Procescoördinatie", outcome.coordination_number or "geen")
    stdout().print(result)


@signal_app.command("withdraw")
def signal_withdraw(
    number: Annotated[str, typer.Argument(help="The signal number, e.g. S-12.")],
    reason: Annotated[
        WithdrawReason,
        typer.Option(
            case_sensitive=False,
            help="onterecht (the signal is deleted) or risico-weg (it is archived).",
        ),
    ],
    by: ByOption,
) -> None:
    """Withdraw a signal (its reporter, a stand-in, or the institution's coordinator)."""
    with open_core() as core:
        withdrawn = core.run(
            lambda session: withdraw_signal(
                number,
                reason.value,
                session=session,
                config=core.config,
                actor=acting(session, by),
            )
        )
    outcome = "verwijderd" if reason is WithdrawReason.onterecht else "gearchiveerd"
    say(f"Signaal {withdrawn} is ingetrokken ({reason.value}) en {outcome}.", "green")


@signal_app.command("extend")
def signal_extend(
    number: Annotated[str, typer.Argument(help="The signal number, e.g. S-12.")],
    by: ByOption,
    months: Annotated[
        int | None, typer.Option(help="Months to add (default: the region's term).")
    ] = None,
) -> None:
    """Extend a signal; never past 2 years from placing."""
    with open_core() as core:
        new_end = core.run(
            lambda session: extend_signal(
                number, months, session=session, config=core.config, actor=acting(session, by)
            )
        )
    say(f"Signaal {number.upper()} loopt nu tot {local_date(new_end)}.", "green")


@signal_app.command("informed")
def signal_informed(
    number: Annotated[str, typer.Argument(help="The signal number, e.g. S-12.")],
    by: ByOption,
    json_output: JsonFlag = False,
) -> None:
    """Record that the youth and/or parents have now been informed of a signal."""
    with open_core() as core:
        outcome = core.run(
            lambda session: record_informed(
                number, session=session, config=core.config, actor=acting(session, by)
            )
        )
    if json_output:
        print_json(
            {
                "signal": outcome.number,
                "informed_at": iso(outcome.informed_at),
                "informed_party": outcome.informed_party,
                "changed": not outcome.already,
            }
        )
        return
    if outcome.already:
        say(f"Signaal {outcome.number} stond al als geïnformeerd vastgelegd.")
        return
    say(
        f"Vastgelegd: bij signaal {outcome.number} is geïnformeerd ({outcome.informed_party}).",
        "green",
    )
