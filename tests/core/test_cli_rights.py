"""``verwijsindex rights-request add|list|execute|reject`` and ``youth deceased`` (issue 11.11)
through the console, the transport of this item: the region's admin records and decides, anyone
else is refused with exit 1, bad input names its field, and the deadline reminder the sweep
writes is delivered through a real SMTP relay on loopback."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from core.audit import use_keyring
from core.clock import utcnow
from core.db import create_db_engine
from core.rights_requests import KIND
from tests.conftest import TEST_KEYRING
from tests.core import test_cli
from tests.core.test_cli import BSN, GGD_ADMIN, GGD_PRO, WIJ_PRO, Cli, as_json, ok, place, register
from tests.mail_gateway.relay_sink import RelaySink
from tests.mail_gateway.test_delivery import delivery_for

cli = test_cli.cli  # the console fixture: ``verwijsindex ARGS...`` on this test's database
ADMIN = "f.dijkstra@ggd-groningen.example"
ADMIN_MAILBOX = "beheer@verwijsindex-groningen.example"


def _matched(cli: Cli, tmp_path: Path) -> dict[str, str]:
    register(cli, tmp_path, "ggd-groningen", f"{BSN};Testkind;01-05-2016;Groningen;GGD-1")
    register(cli, tmp_path, "wij-groningen", f"{BSN};Testkind;01-05-2016;Groningen;WIJ-1")
    ggd = as_json(place(cli, GGD_PRO, "laag", "--json"))["signal"]
    wij = as_json(place(cli, WIJ_PRO, "laag", "--json"))["signal"]
    return {"ggd": ggd, "wij": wij}


def _add(cli: Cli, kind: str, *extra: str) -> dict[str, str]:
    return as_json(
        cli(
            "rights-request",
            "add",
            "--by",
            ADMIN,
            "--kind",
            kind,
            "--requester",
            "ouder",
            "--bsn",
            BSN,
            *extra,
            "--json",
        )
    )


def test_an_objection_from_receipt_to_removal(cli: Cli, tmp_path: Path, database_url: str) -> None:
    signals = _matched(cli, tmp_path)
    received = (utcnow() - timedelta(days=30)).date()
    request = _add(cli, "verzet", "--received", received.strftime("%d-%m-%Y"))
    assert request["id"] == "V-1" and request["youth"].startswith("J-")
    assert request["deadline_on"] == (received + timedelta(weeks=4)).isoformat()
    assert request["requester"] == "ouder" and request["overdue"] is True

    human = ok(cli("rights-request", "list", "--by", ADMIN))
    assert "V-1" in human.stdout and "termijn verstreken" in human.stdout

    # The sweep reminds the region's admins; the mail goes through a real relay.
    counts = as_json(cli("sweep", "--json"))
    assert counts["rights_request_deadlines"] == 2  # the admin and the region's mailbox
    assert as_json(cli("sweep", "--json"))["rights_request_deadlines"] == 0
    engine = create_db_engine(database_url)
    use_keyring(engine, TEST_KEYRING)
    try:
        with RelaySink() as sink:
            delivery = delivery_for(engine, tmp_path, sink.url)
            while delivery.deliver_batch().claimed:
                pass
            reminders = sink.messages(KIND)
    finally:
        engine.dispose()
    assert sorted(r.recipients[0] for r in reminders) == sorted([ADMIN, ADMIN_MAILBOX])
    text = reminders[0].message.get_body(("plain",)).get_content()
    assert "V-1" in text and "is verstreken" in text and BSN not in text

    executed = as_json(
        cli(
            "rights-request",
            "execute",
            "V-1",
            "--by",
            ADMIN,
            "--remove",
            signals["wij"],
            "--note",
            "verzet gegrond",
            "--json",
        )
    )
    assert executed["status"] == "executed" and executed["decided_by"] == ADMIN
    assert executed["changes"] == [{"record": signals["wij"], "action": "removed"}]
    overview = as_json(cli("youth", "show", "--bsn", BSN, "--json"))
    assert [s["id"] for s in overview["signals"]] == [signals["ggd"]], "deleted, not archived"
    again = cli("rights-request", "execute", "V-1", "--by", ADMIN, "--remove", signals["ggd"])
    assert again.exit_code == 1 and "al uitgevoerd" in again.stderr


def test_a_correction_and_a_rejection(cli: Cli, tmp_path: Path) -> None:
    signals = _matched(cli, tmp_path)
    _add(cli, "correctie")
    bad = cli("rights-request", "execute", "V-1", "--by", ADMIN, "--set", "S-1 code urgent")
    assert bad.exit_code == 1 and "--set" in bad.stderr and "NUMMER.VELD=WAARDE" in bad.stderr
    unknown = cli("rights-request", "execute", "V-1", "--by", ADMIN, "--set", "S-1.naam=x")
    assert unknown.exit_code == 1 and "wijzigen" in unknown.stderr
    executed = as_json(
        cli(
            "rights-request",
            "execute",
            "V-1",
            "--by",
            ADMIN,
            "--set",
            f"{signals['ggd']}.code=urgent",
            "--set",
            f"{signals['ggd']}.geinformeerd=uitgesteld",
            "--set",
            f"{signals['ggd']}.reden uitstel=veiligheid",
            "--json",
        )
    )
    assert {(c["field"], c["to"]) for c in executed["changes"]} == {
        ("code", "urgent"),
        ("geïnformeerd", "uitgesteld"),
    }
    overview = as_json(cli("youth", "show", "--bsn", BSN, "--json"))
    assert {s["id"]: s["code"] for s in overview["signals"]}[signals["ggd"]] == "urgent"

    _add(cli, "verwijdering")
    ok(cli("rights-request", "reject", "V-2", "--by", ADMIN, "--reason", "wettelijke plicht"))
    [rejected] = as_json(
        cli("rights-request", "list", "--by", ADMIN, "--status", "rejected", "--json")
    )
    assert (rejected["id"], rejected["outcome_note"]) == ("V-2", "wettelijke plicht")


def test_only_the_regions_admin_and_fields_named(cli: Cli, tmp_path: Path) -> None:
    _matched(cli, tmp_path)
    refused = cli(
        "rights-request",
        "add",
        "--by",
        GGD_ADMIN,
        "--kind",
        "verzet",
        "--requester",
        "ouder",
        "--bsn",
        BSN,
    )
    assert refused.exit_code == 1 and "functioneel beheerder" in refused.stderr
    wrong_kind = cli(
        "rights-request",
        "add",
        "--by",
        ADMIN,
        "--kind",
        "klacht",
        "--requester",
        "ouder",
        "--bsn",
        BSN,
    )
    assert wrong_kind.exit_code == 1 and "soort" in wrong_kind.stderr
    both = cli(
        "rights-request",
        "add",
        "--by",
        ADMIN,
        "--kind",
        "verzet",
        "--requester",
        "ouder",
        "--bsn",
        BSN,
        "--youth",
        "J-1",
    )
    assert both.exit_code == 1 and "--youth" in both.stderr
    listing = cli("rights-request", "list", "--by", GGD_PRO)
    assert listing.exit_code == 1


def test_youth_deceased_purges_everything(cli: Cli, tmp_path: Path) -> None:
    _matched(cli, tmp_path)
    refused = cli("youth", "deceased", "--by", GGD_ADMIN, "--bsn", BSN)
    assert refused.exit_code == 1
    outcome = as_json(cli("youth", "deceased", "--by", ADMIN, "--bsn", BSN, "--json"))
    assert (outcome["signals"], outcome["registrations"]) == (2, 2)
    gone = cli("youth", "show", "--bsn", BSN)
    assert gone.exit_code == 1 and "staat niet in de verwijsindex" in gone.stderr
    human = cli("youth", "deceased", "--by", ADMIN, "--youth", outcome["youth"])
    assert human.exit_code == 1 and "staat niet in de verwijsindex" in human.stderr
    events = as_json(cli("audit", "list", "--json"))
    actions = [e["action"] for e in events]
    assert "youth-deceased" in actions and "youth-purged" in actions
