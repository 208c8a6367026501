"""The region's keys: ``keys status`` (what is still under an old key) and ``keys rotate``
(move it to the current key; core.key_rotation)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from core.cli.registrations import progress_bar
from core.cli.runtime import (
    EXIT_REFUSED,
    JsonFlag,
    open_core,
    operator_actor,
    print_json,
    say,
    stdout,
    table,
)
from core.key_rotation import DEFAULT_BATCH_SIZE, KeyStatus, key_status, rotate_keys

keys_app = typer.Typer(
    help="The region's secret keys: rotation after VERWIJSINDEX_SECRET_KEY was replaced.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")


@keys_app.command("status")
def keys_status(json_output: JsonFlag = False) -> None:
    """What is still under a key other than VERWIJSINDEX_SECRET_KEY (exit 1 while anything
    movable is left, or an old key is missing)."""
    with open_core(sync=False, check_key=False) as core:
        status = core.run(lambda session: key_status(session, core.config))
    _report(status, json_output)
    if status.movable or status.unknown_keys:
        raise typer.Exit(EXIT_REFUSED)


@keys_app.command("rotate")
def keys_rotate(
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Rows per transaction.")
    ] = DEFAULT_BATCH_SIZE,
    by: Annotated[
        str | None, typer.Option("--by", help="Who rotates (logboek); default the OS user.")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Move youths, parent links, kept mail and Slack bot tokens to the current key, in batches
    (resumable: run it again after an interruption)."""
    with open_core(sync=False, check_key=False) as core:
        before = core.run(lambda session: key_status(session, core.config))
        with progress_bar(enabled=not json_output) as progress:
            task = progress.add_task("Sleutel vervangen", total=before.movable)
            _, status = rotate_keys(
                core.engine,
                core.config,
                actor=operator_actor(by),
                batch_size=batch_size,
                progress=lambda moved: progress.advance(task, moved),
            )
            progress.update(task, completed=before.movable)
    _report(status, json_output)


def status_json(status: KeyStatus) -> dict[str, Any]:
    return {
        "current_key": status.current,
        "old_keys": list(status.old_keys),
        "missing_keys": list(status.unknown_keys),
        "youths": status.youths,
        "parent_links": status.parent_links,
        "kept_mail": status.kept_mail,
        "slack_tokens": status.slack_tokens,
        "unmovable_youths": status.unmovable_youths,
        "unmovable_parent_links": status.unmovable_parent_links,
        "remaining": status.remaining,
        "logboek": status.logboek,
        "old_keys_can_be_dropped": status.remaining == 0 and not status.logboek,
        "old_keys_needed_for_audit_verify": sorted(status.logboek),
    }


def _report(status: KeyStatus, json_output: bool) -> None:
    if json_output:
        print_json(status_json(status))
        return
    if status.remaining == 0:
        if not status.logboek:
            say(
                f"Alles staat onder de huidige sleutel {status.current}: de oude sleutels kunnen "
                "uit VERWIJSINDEX_PREVIOUS_SECRET_KEYS.",
                "green",
            )
            return
        say(
            "Alle identiteitsgegevens en bewaarde berichten staan onder de huidige sleutel "
            f"{status.current}.",
            "green",
        )
        _report_logboek(status)
        return
    overview = table(
        f"Nog onder een oude sleutel (huidige: {status.current})", "Sleutel", "Wat", "Aantal"
    )
    for key_id in status.old_keys:
        missing = " (ontbreekt!)" if key_id in status.unknown_keys else ""
        for label, counts in (
            ("jongeren", status.youths),
            ("ouderkoppelingen", status.parent_links),
            ("bewaarde berichten", status.kept_mail),
            ("Slack-installaties", status.slack_tokens),
        ):
            if counts.get(key_id):
                overview.add_row(key_id + missing, label, str(counts[key_id]))
    stdout().print(overview)
    if status.unknown_keys:
        say(
            "Sleutel(s) " + ", ".join(status.unknown_keys) + " ontbreken: zet ze in "
            "VERWIJSINDEX_PREVIOUS_SECRET_KEYS en draai 'verwijsindex keys rotate'.",
            "red",
        )
    elif status.movable:
        say("Draai 'verwijsindex keys rotate' om dit naar de huidige sleutel te brengen.", "yellow")
    unmovable = status.unmovable_youths + status.unmovable_parent_links
    if unmovable:
        say(
            f"{status.unmovable_youths} jongeren zonder BSN en {status.unmovable_parent_links} "
            "ouderkoppelingen van vóór revisie 0003 hebben geen versleutelde bron voor hun "
            "digest: een nieuw signaal voor zo'n jongere, of een aanmelding die de ouder noemt, "
            "brengt ze over; zonder de oude sleutel worden ze niet meer gevonden.",
            "yellow",
        )
    if status.logboek:
        _report_logboek(status)


def _report_logboek(status: KeyStatus) -> None:
    """The logboek keeps the key it was written with (core.key_rotation.KeyStatus.logboek)."""
    events = ", ".join(f"{key_id}: {count}" for key_id, count in sorted(status.logboek.items()))
    missing = [key_id for key_id in status.logboek if key_id in status.unknown_keys]
    say(
        f"Het logboek blijft onder de sleutel waarmee het is geschreven ({events} "
        "gebeurtenissen): houd die sleutel in VERWIJSINDEX_PREVIOUS_SECRET_KEYS zolang "
        "'verwijsindex audit verify' die gebeurtenissen moet controleren; hij wordt alleen nog "
        "gelezen.",
        "red" if missing else "yellow",
    )
