"""The ``verwijsindex`` console command (CONTRACT §6), driven through typer's CliRunner against
the suite's database (SQLite, or PostgreSQL in the PostgreSQL run), with the bundled example
covenant and its people."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner, Result

from core.cli import app
from core.covenant import bundled_covenant_path
from core.db import create_db_engine
from tests import privacy_guard
from tests.conftest import TEST_SECRET

Cli = Callable[..., Result]

BSN = "111222333"
OTHER_BSN = "123456782"
GGD_PRO = "a.devries@ggd-groningen.example"
GGD_COLLEAGUE = "p.bakker@ggd-groningen.example"
GGD_SENIOR = "m.smit@ggd-groningen.example"
GGD_SECRETARIAT = "i.mulder@ggd-groningen.example"
GGD_ADMIN = "h.visser@ggd-groningen.example"
WIJ_PRO = "s.jansen@wij-groningen.example"
CAT_MEMBER = "j.vandijk@jeugdhulp-noord.example"


@pytest.fixture
def cli(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """Run ``verwijsindex ARGS...`` against a database of this test's own."""
    monkeypatch.setenv("VERWIJSINDEX_DATABASE_URL", database_url)
    monkeypatch.setenv("VERWIJSINDEX_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("VERWIJSINDEX_SECRET_FILE", str(tmp_path / "secret"))
    monkeypatch.delenv("VERWIJSINDEX_COVENANT", raising=False)
    monkeypatch.setenv("COLUMNS", "200")  # rich folds table cells to the width; keep them whole
    monkeypatch.chdir(tmp_path)  # a stray .env, database or maildir lands here, not in the repo
    runner = CliRunner()
    outputs: list[tuple[str, str]] = []
    privacy_guard.watch(lambda: outputs)  # every answer the CLI gives is scanned (DOMAIN)

    def invoke(*args: str) -> Result:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        # A subject-access report (AVG art. 15) is the one output that holds the youth's
        # identity by design: it is what the youth or parent asked to see.
        if "access-report" not in args:
            outputs.append((f"CLI 'verwijsindex {' '.join(args[:2])}'", result.output))
        return result

    return invoke


def ok(result: Result) -> Result:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}"
    return result


def as_json(result: Result) -> Any:
    ok(result)
    return json.loads(result.stdout)


def write_csv(path: Path, *rows: str) -> Path:
    path.write_text("bsn;naam;geboortedatum;gemeente;kenmerk\n" + "".join(r + "\n" for r in rows))
    return path


def register(cli: Cli, tmp_path: Path, institution: str, *rows: str) -> dict[str, Any]:
    csv_file = write_csv(tmp_path / f"{institution}.csv", *rows)
    return as_json(cli("import", "--institution", institution, str(csv_file), "--json"))


def place(cli: Cli, by: str, code: str, *extra: str) -> Result:
    return cli(
        "signal",
        "place",
        "--by",
        by,
        "--bsn",
        BSN,
        "--municipality",
        "Groningen",
        "--code",
        code,
        "--informed",
        "ja",
        *extra,
    )


# -- covenant check -------------------------------------------------------------------------------


def test_covenant_check_accepts_the_bundled_example(cli: Cli) -> None:
    result = ok(cli("covenant", "check", str(bundled_covenant_path())))
    assert "Groningen" in result.stdout

    summary = as_json(cli("covenant", "check", str(bundled_covenant_path()), "--json"))
    assert summary["valid"] is True
    assert summary["region"] == "Groningen"
    assert summary["institutions"] == 7
    assert summary["signal_codes"] == ["laag", "urgent"]
    assert summary["coordination_rules"][-1] == "elders-sociaal-team"


def test_covenant_check_names_the_broken_key_and_exits_2(cli: Cli, tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text(
        bundled_covenant_path()
        .read_text(encoding="utf-8")
        .replace("default_signal_term_months = 12", "default_signal_term_months = 30"),
        encoding="utf-8",
    )
    result = cli("covenant", "check", str(broken))
    assert result.exit_code == 2
    assert "region.default_signal_term_months" in result.stderr
    assert result.stdout == ""

    as_data = cli("covenant", "check", str(broken), "--json")
    assert as_data.exit_code == 2
    problems = json.loads(as_data.stdout)["problems"]
    assert [p["path"] for p in problems] == ["region.default_signal_term_months"]


def test_a_broken_covenant_stops_every_command(cli: Cli, tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[region]\nname = 'X'\n", encoding="utf-8")
    result = cli("--covenant", str(broken), "youth", "show", "--bsn", BSN)
    assert result.exit_code == 2
    assert "signal_codes" in result.stderr


# -- the acceptance scenario ----------------------------------------------------------------------


def test_registrations_signals_match_and_coordination(cli: Cli, tmp_path: Path) -> None:
    ggd = register(cli, tmp_path, "ggd-groningen", f"{BSN};Testkind;01-05-2016;Groningen;GGD-1")
    assert ggd["accepted"] == 1 and ggd["refused"] == [] and ggd["new_involvements"] == 1
    wij = register(cli, tmp_path, "wij-groningen", f"{BSN};Testkind;2016-05-01;Groningen;WIJ-7")
    assert wij["accepted"] == 1 and wij["notifications"] == 1

    overview = as_json(cli("youth", "show", "--bsn", BSN, "--json"))
    involvements = {(i["institution"], i["reference"]) for i in overview["involvements"]}
    assert involvements == {("ggd-groningen", "GGD-1"), ("wij-groningen", "WIJ-7")}
    assert all(i["since"] for i in overview["involvements"])
    assert overview["signals"] == [] and overview["matches"] == []

    outbox = as_json(cli("outbox", "list", "--json"))
    chain = [m for m in outbox if m["kind"] == "nieuwe-betrokkenheid"]
    assert [(m["recipient_role"], m["recipient"]) for m in chain] == [
        ("institution", "verwijsindex@ggd-groningen.example")
    ]
    assert {
        "id",
        "channel",
        "reference",
        "status",
        "attempts",
        "created_at",
        "sent_at",
        "last_error",
        "idempotency_key",
    } <= set(chain[0])
    assert as_json(cli("outbox", "list", "--kind", "match", "--json")) == []

    first = as_json(place(cli, GGD_PRO, "laag", "--json"))
    assert first["signal"].startswith("S-") and first["match"] is None
    assert first["informed_party"] == "ouders"  # a 10-year-old: the parents are informed
    second = ok(place(cli, WIJ_PRO, "urgent", "--term-months", "6"))
    assert "is geplaatst" in second.stdout and "M-" in second.stdout

    overview = as_json(cli("youth", "show", "--bsn", BSN, "--json"))
    signals = {s["professional"]: s for s in overview["signals"]}
    assert set(signals) == {GGD_PRO, WIJ_PRO}
    assert signals[GGD_PRO]["code"] == "laag" and signals[WIJ_PRO]["code"] == "urgent"
    assert all(s["status"] == "active" and s["ends_on"] for s in signals.values())
    [match] = overview["matches"]
    assert sorted(match["signals"]) == sorted(s["id"] for s in signals.values())
    assert match["family"] is False
    coordination = overview["coordination"]
    assert coordination["institution"] == "wij-groningen"  # rule stad-groningen-wij
    assert coordination["status"] and coordination["due"]

    human = ok(cli("youth", "show", "--bsn", BSN))
    assert "WIJ Groningen" in human.stdout and "urgent" in human.stdout

    outbox_kinds = {m["kind"] for m in as_json(cli("outbox", "list", "--json"))}
    assert {"signaal", "match", "coordinatie-toegewezen"} <= outbox_kinds
    assert "outbox" in ok(cli("outbox", "list", "--status", "pending")).stdout.lower()


def test_audit_verify_detects_an_edited_event(cli: Cli, tmp_path: Path, database_url: str) -> None:
    register(cli, tmp_path, "ggd-groningen", f"{BSN};Testkind;01-05-2016;Groningen;GGD-1")
    ok(place(cli, GGD_PRO, "laag"))
    result = ok(cli("audit", "verify"))
    assert result.stdout.startswith("OK: ") and "chain intact" in result.stdout
    report = as_json(cli("audit", "verify", "--json"))
    assert report["intact"] is True and report["events"] >= 3

    engine = create_db_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE auditevent SET action='x' WHERE id=2"))
    finally:
        engine.dispose()
    broken = cli("audit", "verify")
    assert broken.exit_code == 1
    assert "event 2" in broken.output and "changed" in broken.output
    as_data = cli("audit", "verify", "--json")
    assert as_data.exit_code == 1
    assert json.loads(as_data.stdout)["break"]["event_id"] == 2


def _tamper(database_url: str, work: Callable[[Any], None]) -> None:
    """Change the database as someone with access to it, but without the secret key."""
    engine = create_db_engine(database_url)
    try:
        with engine.begin() as connection:
            work(connection)
    finally:
        engine.dispose()


def _events(connection: Any) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from core.models import AuditEvent

    table: Any = AuditEvent.__table__  # type: ignore[attr-defined]
    query = select(table).order_by(table.c.id)
    return [dict(row) for row in connection.execute(query).mappings()]


def _delete_the_second_event(connection: Any) -> None:
    connection.execute(text("DELETE FROM auditevent WHERE id = 2"))


def _rehash_after_an_edit(connection: Any) -> None:
    """Edit event 2, then recompute every link and the head with SHA-256, as the chain was made
    before it was keyed (that passed ``audit verify`` then)."""
    from core.audit import GENESIS_HASH, unkeyed_event_hash

    prev = GENESIS_HASH
    for row in _events(connection):
        if row["id"] == 2:
            row["action"] = "x"
        row["hash"] = unkeyed_event_hash(prev, row)
        connection.execute(
            text("UPDATE auditevent SET action = :a, prev_hash = :p, hash = :h WHERE id = :id"),
            {"a": row["action"], "p": prev, "h": row["hash"], "id": row["id"]},
        )
        prev = row["hash"]
    connection.execute(text("UPDATE audithead SET last_hash = :h"), {"h": prev})


def _cut_the_tail_and_rewrite_the_head(connection: Any) -> None:
    events = _events(connection)
    keep = events[1]
    connection.execute(text("DELETE FROM auditevent WHERE id > :id"), {"id": keep["id"]})
    connection.execute(
        text("UPDATE audithead SET last_event_id = :id, last_hash = :h, event_count = 2"),
        {"id": keep["id"], "h": keep["hash"]},
    )


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (_delete_the_second_event, "prev_hash does not match"),
        (_rehash_after_an_edit, "contents were changed"),
        (_cut_the_tail_and_rewrite_the_head, "the head was rewritten"),
    ],
    ids=["deleted-event", "rehashed-chain", "cut-tail-rewritten-head"],
)
def test_audit_verify_detects_tampering_without_the_key(
    cli: Cli, tmp_path: Path, database_url: str, tamper: Callable[[Any], None], reason: str
) -> None:
    register(cli, tmp_path, "ggd-groningen", f"{BSN};Testkind;01-05-2016;Groningen;GGD-1")
    ok(place(cli, GGD_PRO, "laag"))
    ok(cli("audit", "verify"))

    _tamper(database_url, tamper)
    broken = cli("audit", "verify")
    assert broken.exit_code == 1 and broken.stdout.startswith("BROKEN: ")
    assert reason in broken.stdout
    report = json.loads(cli("audit", "verify", "--json").stdout)
    assert report["intact"] is False and reason in report["break"]["reason"]


def test_audit_verify_with_an_anchor_detects_a_rollback(
    cli: Cli, tmp_path: Path, database_url: str
) -> None:
    register(cli, tmp_path, "ggd-groningen", f"{BSN};Testkind;01-05-2016;Groningen;GGD-1")
    older: dict[str, Any] = {}
    _tamper(
        database_url,
        lambda c: older.update(c.execute(text("SELECT * FROM audithead")).mappings().one()),
    )
    ok(place(cli, GGD_PRO, "laag"))
    anchor_file = tmp_path / "anker.json"
    printed = ok(cli("audit", "anchor", "--output", str(anchor_file))).stdout
    anchor = json.loads(anchor_file.read_text())
    assert json.loads(printed) == anchor
    assert anchor["event_id"] > older["last_event_id"] and anchor["key_id"] and anchor["mac"]
    held = ok(cli("audit", "verify", "--anchor", str(anchor_file)))
    assert f"anchor at event {anchor['event_id']} held" in held.stdout

    def roll_back(connection: Any) -> None:  # to the copy taken before the signal
        connection.execute(
            text("DELETE FROM auditevent WHERE id > :id"), {"id": older["last_event_id"]}
        )
        connection.execute(
            text(
                "UPDATE audithead SET last_event_id = :last_event_id, last_hash = :last_hash,"
                " event_count = :event_count, key_id = :key_id, mac = :mac"
            ),
            older,
        )

    _tamper(database_url, roll_back)
    assert ok(cli("audit", "verify")).stdout.startswith("OK: ")  # consistent in itself
    rolled_back = cli("audit", "verify", "--anchor", str(anchor_file))
    assert rolled_back.exit_code == 1 and "rolled back to an older copy" in rolled_back.stdout
    report = json.loads(cli("audit", "verify", "--anchor", str(anchor_file), "--json").stdout)
    assert report["intact"] is False and report["break"]["event_id"] == anchor["event_id"]

    anchor_file.write_text(json.dumps({**anchor, "event_id": older["last_event_id"]}))
    forged = cli("audit", "verify", "--anchor", str(anchor_file))
    assert forged.exit_code == 1 and "anchor itself was changed" in forged.stdout


def test_audit_list_shows_the_views_of_a_youth(cli: Cli, tmp_path: Path) -> None:
    register(cli, tmp_path, "ggd-groningen", f"{BSN};Testkind;01-05-2016;Groningen;GGD-1")
    ok(cli("youth", "show", "--bsn", BSN, "--by", "beheer@regio.example"))
    events = as_json(cli("audit", "list", "--action", "youth-viewed", "--json"))
    assert [(e["actor"], e["channel"]) for e in events] == [
        ("operator:beheer@regio.example", "cli")
    ]
    assert "youth-viewed" in ok(cli("audit", "list")).stdout


# -- refusals -------------------------------------------------------------------------------------


def test_a_member_of_a_team_that_may_not_signal_is_refused(cli: Cli) -> None:
    result = place(cli, CAT_MEMBER, "laag", "--birth-date", "01-05-2016")
    assert result.exit_code == 1
    assert "mogen geen signalen afgeven" in result.stderr
    assert result.stdout == ""


def test_refusals_name_the_field(cli: Cli, tmp_path: Path) -> None:
    unknown = place(cli, "niemand@elders.example", "laag", "--birth-date", "01-05-2016")
    assert unknown.exit_code == 1 and "geen (actieve) hulpverlener" in unknown.stderr

    no_birth_date = place(cli, GGD_PRO, "laag")  # a youth the index does not know yet
    assert no_birth_date.exit_code == 1 and "Geboortedatum" in no_birth_date.stderr

    bad_date = place(cli, GGD_PRO, "laag", "--birth-date", "31-02-2016")
    assert bad_date.exit_code == 1 and "geen bestaande datum" in bad_date.stderr

    bad_code = place(cli, GGD_PRO, "hoog", "--birth-date", "01-05-2016")
    assert bad_code.exit_code == 1 and "onbekende signaalcode" in bad_code.stderr

    postponed = cli(
        "signal",
        "place",
        "--by",
        GGD_PRO,
        "--bsn",
        BSN,
        "--birth-date",
        "01-05-2016",
        "--municipality",
        "Groningen",
        "--code",
        "laag",
        "--informed",
        "uitgesteld",
    )
    assert postponed.exit_code == 1 and "Reden uitstel" in postponed.stderr

    bad_bsn = cli("youth", "show", "--bsn", "123456789")
    assert bad_bsn.exit_code == 1 and "elfproef" in bad_bsn.stderr

    unknown_youth = cli("youth", "show", "--bsn", OTHER_BSN, "--json")
    assert unknown_youth.exit_code == 1 and unknown_youth.stdout == ""
    assert "staat niet in de verwijsindex" in unknown_youth.stderr

    wrong_choice = place(cli, GGD_PRO, "laag", "--informed", "misschien")
    assert wrong_choice.exit_code == 2


def test_a_bad_setting_is_a_configuration_error(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERWIJSINDEX_SECRET_KEY", "too-short")
    result = cli("youth", "show", "--bsn", BSN)
    assert result.exit_code == 2
    assert "VERWIJSINDEX_SECRET_KEY" in result.stderr


# -- import ---------------------------------------------------------------------------------------


def test_import_reports_refused_rows_with_line_and_field(cli: Cli, tmp_path: Path) -> None:
    csv_file = write_csv(
        tmp_path / "batch.csv",
        f"{BSN};Een;01-05-2016;Groningen;K-1",
        "123456789;Twee;01-05-2016;Groningen;K-2",  # fails the elfproef
        f"{OTHER_BSN};Drie;01-05-2016;Atlantis;K-3",  # not a covenant municipality
    )
    human = cli("import", "--institution", "ggd-groningen", str(csv_file))
    # Refused rows: exit 1 and how many, so a nightly script notices; the others went in.
    assert human.exit_code == 1, human.stdout + human.stderr
    assert "2 regels geweigerd" in human.stderr
    assert "Geweigerde regels" in human.stdout
    assert "BSN" in human.stdout and "Gemeente" in human.stdout

    again = cli("import", "--institution", "ggd-groningen", str(csv_file), "--json")
    assert again.exit_code == 1
    report = json.loads(again.stdout)  # still only JSON on stdout
    assert report["accepted"] == 1  # the same row again: an update, not a new involvement
    assert report["new_involvements"] == 0
    assert [(r["line"], r["field"]) for r in report["refused"]] == [(3, "BSN"), (4, "Gemeente")]


def test_an_import_without_refusals_exits_0(cli: Cli, tmp_path: Path) -> None:
    csv_file = write_csv(tmp_path / "batch.csv", f"{BSN};Een;01-05-2016;Groningen;K-1")
    result = ok(cli("import", "--institution", "ggd-groningen", str(csv_file)))
    assert "geweigerd" not in result.stderr


def test_version_names_the_installed_release(cli: Cli) -> None:
    result = ok(cli("--version"))
    assert result.stdout.startswith("verwijsindex ")
    assert result.stdout.split()[1][0].isdigit(), result.stdout


def test_import_for_an_unknown_institution_is_refused(cli: Cli, tmp_path: Path) -> None:
    csv_file = write_csv(tmp_path / "batch.csv", f"{BSN};Een;01-05-2016;Groningen;K-1")
    result = cli("import", "--institution", "onbekend", str(csv_file))
    assert result.exit_code == 1 and "Fout" in result.stderr


# -- withdraw, extend, youths without BSN, inzage -------------------------------------------------


def test_extend_and_withdraw(cli: Cli, tmp_path: Path) -> None:
    placed = as_json(
        place(cli, GGD_PRO, "laag", "--birth-date", "2016-05-01", "--term-months", "3", "--json")
    )
    number = placed["signal"]
    extended = ok(cli("signal", "extend", number, "--months", "2", "--by", GGD_PRO))
    assert f"{number} loopt nu tot" in extended.stdout

    stranger = cli("signal", "withdraw", number, "--reason", "risico-weg", "--by", WIJ_PRO)
    assert stranger.exit_code == 1 and "alleen de melder" in stranger.stderr

    ok(cli("signal", "withdraw", number, "--reason", "onterecht", "--by", GGD_PRO))
    assert as_json(cli("youth", "show", "--bsn", BSN, "--json"))["signals"] == []
    again = cli("signal", "withdraw", number, "--reason", "onterecht", "--by", GGD_PRO)
    assert again.exit_code == 1 and "bestaat niet" in again.stderr


def test_youth_without_bsn(cli: Cli) -> None:
    ok(
        cli(
            "signal",
            "place",
            "--by",
            WIJ_PRO,
            "--surname",
            "Zonder-Bsn",
            "--sex",
            "v",
            "--birth-date",
            "12-12-2012",
            "--municipality",
            "groningen",
            "--code",
            "urgent",
            "--informed",
            "uitgesteld",
            "--postpone-reason",
            "veiligheid",
            "--no-leaflet",
        )
    )
    overview = as_json(
        cli(
            "youth",
            "show",
            "--surname",
            "zonder-bsn",
            "--birth-date",
            "2012-12-12",
            "--sex",
            "V",
            "--json",
        )
    )
    assert [s["professional"] for s in overview["signals"]] == [WIJ_PRO]
    missing = cli("youth", "show", "--surname", "Zonder-Bsn", "--json")
    assert missing.exit_code == 1 and "--surname, --birth-date en --sex" in missing.stderr


def test_access_report(cli: Cli, tmp_path: Path) -> None:
    register(cli, tmp_path, "ggd-groningen", f"{BSN};Testkind;01-05-2016;Groningen;GGD-1")
    ok(place(cli, WIJ_PRO, "urgent"))
    report = as_json(cli("access-report", "--bsn", BSN, "--json"))
    assert report["region"] == "Groningen"
    assert [(line["kind"], line["institution"]) for line in report["lines"]] == [
        ("registratie", "GGD Groningen"),
        ("signaal", "WIJ Groningen"),
    ]
    human = ok(cli("access-report", "--bsn", BSN))
    assert "Inzageoverzicht" in human.stdout and "WIJ Groningen" in human.stdout
    assert WIJ_PRO not in human.stdout  # institutions, never the professionals' names


# -- transfer and absence -------------------------------------------------------------------------


def test_transfer_requested_by_the_secretariat_and_executed_by_the_coordinator(
    cli: Cli,
) -> None:
    ok(place(cli, GGD_PRO, "laag", "--birth-date", "01-05-2016"))
    no_senior = cli("transfer", "--from", GGD_PRO, "--to", GGD_COLLEAGUE, "--by", GGD_SECRETARIAT)
    assert no_senior.exit_code == 1 and "senior" in no_senior.stderr

    requested = as_json(
        cli(
            "transfer",
            "--from",
            GGD_PRO,
            "--to",
            GGD_COLLEAGUE,
            "--by",
            GGD_SECRETARIAT,
            "--senior",
            GGD_SENIOR,
            "--json",
        )
    )
    assert requested["status"] == "requested" and requested["instructed_by"] == GGD_SENIOR
    [listed] = as_json(cli("transfer", "list", "--json"))
    assert listed["id"] == requested["id"] and listed["from"] == GGD_PRO

    refused = cli("transfer", "execute", requested["id"], "--by", GGD_SECRETARIAT)
    assert refused.exit_code == 1
    done = ok(cli("transfer", "execute", requested["id"], "--by", GGD_ADMIN))
    assert "1 signalen" in done.stdout
    overview = as_json(cli("youth", "show", "--bsn", BSN, "--json"))
    assert [s["professional"] for s in overview["signals"]] == [GGD_COLLEAGUE]
    assert (
        as_json(cli("transfer", "list", "--status", "executed", "--json"))[0]["executed_by"]
        == GGD_ADMIN
    )


def test_transfer_rejected_by_the_coordinator(cli: Cli) -> None:
    requested = as_json(
        cli(
            "transfer", "--from", GGD_PRO, "--to", GGD_COLLEAGUE, "--by", GGD_SECRETARIAT,
            "--senior", GGD_SENIOR, "--json",
        )
    )  # fmt: skip
    assert cli("transfer", "reject", requested["id"], "--by", GGD_SECRETARIAT).exit_code == 1
    done = ok(cli("transfer", "reject", requested["id"], "--by", GGD_ADMIN))
    assert f"Overdracht {requested['id']} is afgewezen." in done.stdout
    [rejected] = as_json(cli("transfer", "list", "--status", "rejected", "--json"))
    assert rejected["id"] == requested["id"] and rejected["executed_by"] == GGD_ADMIN
    assert cli("transfer", "execute", requested["id"], "--by", GGD_ADMIN).exit_code == 1


def test_transfer_in_one_step_by_the_institution_coordinator(cli: Cli) -> None:
    ok(place(cli, GGD_PRO, "laag", "--birth-date", "01-05-2016"))
    result = ok(
        cli("transfer", "request", "--from", GGD_PRO, "--to", GGD_COLLEAGUE, "--by", GGD_ADMIN)
    )
    assert "is uitgevoerd" in result.stdout
    assert "Geen overdrachten" not in ok(cli("transfer", "list")).stdout
    usage = cli("transfer", "--from", GGD_PRO)
    assert usage.exit_code == 2 and "--to" in usage.output


def test_absence_declare_and_end(cli: Cli) -> None:
    declared = ok(
        cli(
            "absence",
            "declare",
            "--by",
            GGD_PRO,
            "--from",
            "01-01-2099",
            "--to",
            "2099-01-14",
            "--stand-in",
            GGD_COLLEAGUE,
        )
    )
    assert "01-01-2099 t/m 14-01-2099" in declared.stdout
    for_someone_else = cli("absence", "end", "--by", WIJ_PRO, "--for", GGD_PRO)
    assert for_someone_else.exit_code == 1
    ok(cli("absence", "end", "--by", GGD_ADMIN, "--for", GGD_PRO))
    nothing_left = cli("absence", "end", "--by", GGD_PRO)
    assert nothing_left.exit_code == 1 and "geen lopende" in nothing_left.stderr


# -- operations -----------------------------------------------------------------------------------


def test_db_upgrade_sweep_and_outbox_retry(cli: Cli, tmp_path: Path) -> None:
    ok(cli("db", "upgrade"))
    ok(cli("db", "upgrade"))  # idempotent
    counts = as_json(cli("sweep", "--now", "2026-03-02T09:00", "--json"))
    assert counts and all(isinstance(value, int) for value in counts.values())
    assert "Sweep" in ok(cli("sweep")).stdout
    bad_moment = cli("sweep", "--now", "gisteren")
    assert bad_moment.exit_code == 2

    register(cli, tmp_path, "ggd-groningen", f"{BSN};Testkind;01-05-2016;Groningen;GGD-1")
    register(cli, tmp_path, "wij-groningen", f"{BSN};Testkind;01-05-2016;Groningen;WIJ-7")
    listed = as_json(cli("outbox", "list", "--status", "pending", "--json"))
    # Each sweep day mails the logboek's anchor to the region's administrator (core.audit_anchor),
    # and from a month's first working day on its report to each municipality (core.report_mail).
    assert counts["audit_anchor"] == 1
    assert counts["monthly_reports"] == 4  # 2 March 2026 is one
    scheduled = ("logboek-anker", "maandrapport")
    [pending] = [message for message in listed if message["kind"] not in scheduled]
    not_failed = cli("outbox", "retry", str(pending["id"]))
    assert not_failed.exit_code == 1 and "alleen mislukte berichten" in not_failed.stderr
    missing = cli("outbox", "retry", "999999")
    assert missing.exit_code == 1 and "bestaat niet" in missing.stderr


def test_database_url_option_overrides_the_setting(
    cli: Cli, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VERWIJSINDEX_DATABASE_URL", "sqlite:////nonexistent/dir/x.db")
    ok(cli("--database-url", database_url, "db", "upgrade"))
    assert as_json(cli("--database-url", database_url, "outbox", "list", "--json")) == []


def test_keys_rotate_moves_everything_and_status_says_when_the_old_key_can_go(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(cli, tmp_path, "ggd-groningen", f"{BSN};Testkind;01-05-2016;Groningen;GGD-1")
    register(cli, tmp_path, "wij-groningen", f"{OTHER_BSN};;14-03-2012;Groningen;WIJ-1")
    assert as_json(cli("keys", "status", "--json"))["old_keys_can_be_dropped"] is True
    old_id = as_json(cli("keys", "status", "--json"))["current_key"]

    new_secret = "n" * 40
    monkeypatch.setenv("VERWIJSINDEX_SECRET_KEY", new_secret)  # the old key not kept: refused
    missing = cli("keys", "status", "--json")
    assert missing.exit_code == 1 and json.loads(missing.stdout)["missing_keys"] == [old_id]
    assert cli("keys", "rotate").exit_code == 1

    monkeypatch.setenv("VERWIJSINDEX_PREVIOUS_SECRET_KEYS", TEST_SECRET)
    waiting = cli("keys", "status")
    assert waiting.exit_code == 1 and "keys rotate" in waiting.stdout
    found = as_json(cli("youth", "show", "--bsn", BSN, "--json"))  # found under the old key
    assert [i["institution"] for i in found["involvements"]] == ["ggd-groningen"]

    rotated = as_json(cli("keys", "rotate", "--batch-size", "1", "--json"))
    assert rotated["remaining"] == 0
    # The logboek keeps the key it was MACed with: the old key is still needed, only to read.
    assert rotated["old_keys_can_be_dropped"] is False
    assert rotated["old_keys_needed_for_audit_verify"] == [old_id]
    assert "alleen nog gelezen" in ok(cli("keys", "status")).stdout
    ok(cli("audit", "verify"))

    monkeypatch.delenv("VERWIJSINDEX_PREVIOUS_SECRET_KEYS")  # the old key dropped all the same
    found = as_json(cli("youth", "show", "--bsn", BSN, "--json"))
    assert [i["institution"] for i in found["involvements"]] == ["ggd-groningen"]
    unverifiable = cli("audit", "verify")
    assert unverifiable.exit_code != 0 and old_id in unverifiable.stdout + unverifiable.stderr
