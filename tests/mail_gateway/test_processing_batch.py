"""Registration mails processed together (a run through ``routing.HANDLERS``) come to exactly
what processing them one by one (runs of one, through the same handler) comes to: the same
receipts, line by line, the same registrations and chain notifications; and a run that cannot
be finished writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage
from email.policy import SMTP

import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select

from core.audit import verify_chain
from core.clock import utcnow
from core.models import InboundMessage, InboundStatus, OutboxMessage, Registration
from core.models.care import RegistrationStatus
from mail_gateway.context import Gateway
from mail_gateway.intake import Envelope as IntakeEnvelope
from mail_gateway.intake import Intake, accept_message
from mail_gateway.mailboxes import Destination, Mailbox
from mail_gateway.processing.claims import claim_next
from mail_gateway.processing.handler import Kind
from mail_gateway.processing.inbound import AlreadyDone
from mail_gateway.processing.routing import HANDLERS
from mail_gateway.processing.worker import (
    _process_claimed,
    open_run,
    process_inbound,
    process_run,
)
from tests.bsns import valid_bsns
from tests.core.conftest import BSN_A, BSN_B, BSN_C
from tests.mail_gateway.conftest import MAIL_DOMAIN, RunningGateway, wait_until
from tests.mail_gateway.test_processing import GGD, WIJ, block, mail, send

REGISTRATIE = f"registratie@{MAIL_DOMAIN}"
INSTITUTIONS = {GGD: "ggd-groningen", WIJ: "wij-groningen"}
LEASE = timedelta(minutes=2)

# (sender, body) in the order they arrive; what each receipt must say is in EXPECTED.
SCENARIO = [
    (GGD, block(BSN_A, "GGD-1")),
    (WIJ, block(BSN_A, "WIJ-7")),
    (GGD, block(BSN_B, "GGD-2") + "---\n" + block("123456789", "GGD-3")),
    (GGD, block(BSN_B, "GGD-2") + "Actie: afmelden\n"),  # the youth of the mail before
    (GGD, block(BSN_C, "GGD-4") + "Actie: afmelden\n"),  # never registered
    (GGD, "Zie bijlage.\n"),
    (GGD, block(BSN_C, "GGD-5").replace("Gemeente: Groningen", "Gemeente: Atlantis")),
    (WIJ, block(BSN_A, "WIJ-8")),  # WIJ again: an update, GGD still the other one
    (WIJ, block(BSN_B, "WIJ-9") + "Actie: afmelden\n"),  # known, but WIJ never registered it
]
# Per mail: status, answer kind, accepted (action, own reference, others involved), refused
# (line, field).
EXPECTED = [
    ("processed", "ontvangstbevestiging", [("aanmelden", "GGD-1", [])], []),
    ("processed", "ontvangstbevestiging", [("aanmelden", "WIJ-7", ["GGD Groningen"])], []),
    ("processed", "ontvangstbevestiging", [("aanmelden", "GGD-2", [])], [(6, "BSN")]),
    ("processed", "ontvangstbevestiging", [("afmelden", "", [])], []),
    ("processed", "ontvangstbevestiging", [], [(1, "BSN")]),
    ("failed", "foutmelding", [], []),
    ("processed", "ontvangstbevestiging", [], [(1, "Gemeente")]),
    ("processed", "ontvangstbevestiging", [("aanmelden", "WIJ-8", ["GGD Groningen"])], []),
    ("processed", "ontvangstbevestiging", [], [(1, "Actie")]),
]


@pytest.fixture
def intake(
    make_gateway: Callable[..., Gateway], run_gateway: Callable[..., RunningGateway]
) -> RunningGateway:
    """Only the listener: the messages wait, stored, for the test to process them."""
    return run_gateway(make_gateway(), ["smtp"])


def stored_ids(gateway: Gateway, message_ids: list[str]) -> list[int]:
    with Session(gateway.engine) as session:
        rows = session.exec(
            select(InboundMessage).where(col(InboundMessage.message_id).in_(message_ids))
        ).all()
        by_message_id = {row.message_id: row.id or 0 for row in rows}
    return [by_message_id[message_id] for message_id in message_ids]


def receipt_lines(gateway: Gateway, ids: list[int]) -> list[tuple[object, ...]]:
    with Session(gateway.engine) as session:
        lines = []
        for inbound_id in ids:
            row = session.get(InboundMessage, inbound_id)
            assert row is not None
            [answer] = session.exec(
                select(OutboxMessage).where(OutboxMessage.reference == f"B-{inbound_id}")
            ).all()
            context = answer.context
            accepted = [
                (a["action"], a["own_reference"], [o["name"] for o in a["others_involved"]])
                for a in context["accepted"]
            ]
            refused = [(r["line"], r["field"]) for r in context["refused"]]
            lines.append((str(row.status), answer.kind, accepted, refused))
        return lines


def store(gateway: Gateway, message: EmailMessage) -> str:
    sender = str(message["From"])
    envelope = IntakeEnvelope(
        transport="smtp",
        mail_from=sender,
        rcpt_to=REGISTRATIE,
        destination=Destination(Mailbox.REGISTRATION),
        institution_id=INSTITUTIONS[sender],
    )
    raw = message.as_bytes(policy=SMTP)
    assert accept_message(gateway.engine, gateway.vault, raw, envelope) is Intake.STORED
    return str(message["Message-ID"])


@pytest.mark.parametrize("together", [True, False], ids=["together", "one-by-one"])
def test_a_burst_of_registration_mails_comes_to_the_same_receipts_either_way(
    intake: RunningGateway, together: bool
) -> None:
    gateway = intake.gateway
    ids = stored_ids(gateway, [send(intake, mail(s, REGISTRATIE, b)) for s, b in SCENARIO])
    if together:
        _process_claimed(gateway, ids, LEASE)
    else:
        for inbound_id in ids:
            process_inbound(gateway, inbound_id)

    assert receipt_lines(gateway, ids) == EXPECTED
    with Session(gateway.engine) as session:
        registrations = session.exec(select(Registration).order_by(col(Registration.id))).all()
        assert [(r.institution_id, r.reference, r.status) for r in registrations] == [
            ("ggd-groningen", "GGD-1", RegistrationStatus.ACTIVE),
            ("wij-groningen", "WIJ-8", RegistrationStatus.ACTIVE),
            ("ggd-groningen", "GGD-2", RegistrationStatus.ENDED),
        ]
        [notice] = session.exec(
            select(OutboxMessage).where(OutboxMessage.kind == "nieuwe-betrokkenheid")
        ).all()
        assert notice.recipient == GGD and notice.context["own_reference"] == "GGD-1"
        # The receipt of the deregistration names the registration the aanmelding made.
        receipts = {
            m.reference: m.context
            for m in session.exec(
                select(OutboxMessage).where(OutboxMessage.kind != "nieuwe-betrokkenheid")
            )
        }
        registered = receipts[f"B-{ids[2]}"]["accepted"][0]["reference"]
        assert receipts[f"B-{ids[3]}"]["accepted"][0]["reference"] == registered
        # Processed mail keeps no BSN; the mail not understood is kept for an administrator.
        raws = [session.get(InboundMessage, i).raw for i in ids]  # type: ignore[union-attr]
        assert [raw != b"" for raw in raws] == [i == 5 for i in range(len(ids))]


def test_a_batch_one_of_whose_mails_another_worker_finished_writes_nothing(
    intake: RunningGateway,
) -> None:
    gateway = intake.gateway
    ids = stored_ids(
        gateway,
        [
            send(intake, mail(GGD, REGISTRATIE, block(bsn, f"GGD-{n}")))
            for n, bsn in enumerate((BSN_A, BSN_B, BSN_C))
        ],
    )
    opened = open_run(gateway, ids)
    assert len(opened) == 3
    with gateway.engine.begin() as connection:  # another worker, between opening and finishing
        connection.execute(
            update(InboundMessage.__table__)  # type: ignore[arg-type]
            .where(InboundMessage.__table__.c.id == ids[1])  # type: ignore[attr-defined]
            .values(status=InboundStatus.PROCESSED.value)
        )
    with pytest.raises(AlreadyDone):
        process_run(gateway, opened, utcnow())
    with Session(gateway.engine) as session:
        assert session.exec(select(Registration)).all() == []
        assert session.exec(select(OutboxMessage)).all() == []
    # The worker then takes them one by one: the two still waiting are processed, once.
    _process_claimed(gateway, ids, LEASE)
    with Session(gateway.engine) as session:
        assert sorted(r.reference for r in session.exec(select(Registration))) == ["GGD-0", "GGD-2"]
        assert len(session.exec(select(OutboxMessage)).all()) == 2


def test_two_workers_taking_batches_at_once_process_every_mail_once(
    intake: RunningGateway,
    make_gateway: Callable[..., Gateway],
    run_gateway: Callable[..., RunningGateway],
) -> None:
    """Two processing workers (as two ``serve --only processing`` on one database): the GGD's
    registrations of 30 youths, then the WIJ's of the same youths, taken in batches by both at
    once (on PostgreSQL their transactions run side by side). Each youth ends with two
    registrations and exactly one chain notification, each mail with one receipt."""
    youths = valid_bsns(30, start_prefix=40_000_000)
    mails = [mail(GGD, REGISTRATIE, block(bsn, f"GGD-{n}")) for n, bsn in enumerate(youths)]
    mails += [mail(WIJ, REGISTRATIE, block(bsn, f"WIJ-{n}")) for n, bsn in enumerate(youths)]
    # Stored as the listener stores them (its flow control would hold each answer a second
    # while no worker runs).
    ids = stored_ids(intake.gateway, [store(intake.gateway, message) for message in mails])
    workers = [run_gateway(make_gateway(), ["processing"]) for _ in range(2)]
    for worker in workers:
        worker.wake()

    engine = intake.gateway.engine

    def all_processed() -> bool:
        with Session(engine) as session:
            waiting = session.exec(
                select(InboundMessage).where(InboundMessage.status == InboundStatus.RECEIVED)
            ).all()
            return not waiting

    wait_until(all_processed, timeout=60, what="both workers to process every mail")
    with Session(engine) as session:
        statuses = {session.get(InboundMessage, i).status for i in ids}  # type: ignore[union-attr]
        assert statuses == {InboundStatus.PROCESSED}
        receipts = session.exec(
            select(OutboxMessage).where(OutboxMessage.kind == "ontvangstbevestiging")
        ).all()
        assert sorted(r.reference for r in receipts) == sorted(f"B-{i}" for i in ids)
        assert all(len(r.context["accepted"]) == 1 for r in receipts)
        registrations = session.exec(select(Registration)).all()
        assert len(registrations) == 60
        assert len({(r.youth_id, r.institution_id) for r in registrations}) == 60
        notices = session.exec(
            select(OutboxMessage).where(OutboxMessage.kind == "nieuwe-betrokkenheid")
        ).all()
        assert len(notices) == 30  # one per youth, to whichever institution was first
        # Whoever came second heard who was first.
        seconds = [r for r in receipts if r.context["accepted"][0]["others_involved"]]
        assert len(seconds) == 30
        events, broken = verify_chain(session)
        assert broken is None and events > 60


def test_a_worker_takes_a_run_of_registration_mails_or_one_other_and_hands_the_rest_back(
    intake: RunningGateway,
) -> None:
    """Claimed: two plain registration mails, one with a CSV attachment, one plain again. The
    first two are processed together; the rest go back unclaimed, not counted as attempts, so
    a free worker can take them while this one is busy (a large CSV takes minutes)."""
    gateway = intake.gateway
    with_csv = mail(GGD, REGISTRATIE, "Bijgaand.\n")
    rows = f"bsn;geboortedatum;gemeente;kenmerk\r\n{BSN_C};01-05-2016;Groningen;GGD-C\r\n"
    with_csv.add_attachment(rows.encode(), maintype="text", subtype="csv", filename="a.csv")
    messages = [
        mail(GGD, REGISTRATIE, block(BSN_A, "GGD-A")),
        mail(GGD, REGISTRATIE, block(BSN_B, "GGD-B")),
        with_csv,
        mail(WIJ, REGISTRATIE, block(BSN_A, "WIJ-A")),
    ]
    ids = stored_ids(gateway, [store(gateway, message) for message in messages])

    def states() -> list[tuple[str, bool, int]]:
        with Session(gateway.engine) as session:
            rows = [session.get(InboundMessage, i) for i in ids]
            return [(str(r.status), r.claimed_until is not None, r.attempts) for r in rows if r]

    claimed = claim_next(gateway.engine, lease=LEASE, limit=50)
    assert claimed == ids
    _process_claimed(gateway, claimed, LEASE)
    assert states() == [
        ("processed", False, 1),
        ("processed", False, 1),
        ("received", False, 0),
        ("received", False, 0),
    ]
    # Next round: the CSV mail alone; then the last one.
    _process_claimed(gateway, claim_next(gateway.engine, lease=LEASE, limit=50), LEASE)
    assert [s[0] for s in states()] == ["processed", "processed", "processed", "received"]
    _process_claimed(gateway, claim_next(gateway.engine, lease=LEASE, limit=50), LEASE)
    assert [s[0] for s in states()] == ["processed"] * 4
    with Session(gateway.engine) as session:
        assert len(session.exec(select(Registration)).all()) == 4


def test_while_a_worker_works_on_a_large_csv_the_mail_it_handed_back_stays_free(
    intake: RunningGateway,
) -> None:
    """The claim on the CSV mail in hand is renewed (every third of the lease) while it is
    imported; the plain mails claimed with it were handed back and are never claimed again by
    that renewal."""
    gateway = intake.gateway
    large = mail(GGD, REGISTRATIE, "Bijgaand.\n")
    rows = ["bsn;geboortedatum;gemeente;kenmerk"]
    rows += [f"{bsn};01-05-2016;Groningen;K-{n}" for n, bsn in enumerate(valid_bsns(3000))]
    large.add_attachment(
        "\r\n".join(rows).encode(), maintype="text", subtype="csv", filename="a.csv"
    )
    messages = [large] + [mail(GGD, REGISTRATIE, block(bsn)) for bsn in (BSN_A, BSN_B)]
    ids = stored_ids(gateway, [store(gateway, message) for message in messages])
    lease = timedelta(seconds=0.15)  # renewed every 0.05 s; the import takes far longer
    claimed = claim_next(gateway.engine, lease=lease, limit=50)
    assert claimed == ids

    _process_claimed(gateway, claimed, lease)
    with Session(gateway.engine) as session:
        rows_now = [session.get(InboundMessage, i) for i in ids]
        states = [(str(r.status), r.claimed_until, r.attempts) for r in rows_now if r]
    assert states[0][0] == "processed"
    assert states[1:] == [("received", None, 0), ("received", None, 0)]


def test_a_run_that_fails_is_processed_again_one_by_one_through_the_same_handler(
    intake: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registration handler breaks on one mail of three (as a bug would): the run is rolled
    back and each mail is processed alone by that same handler; the two good ones get their
    receipts, the bad one stays waiting for its next attempt."""
    gateway = intake.gateway
    messages = [
        mail(GGD, REGISTRATIE, block(bsn, f"GGD-{n}"))
        for n, bsn in enumerate((BSN_A, BSN_B, BSN_C))
    ]
    ids = stored_ids(gateway, [store(gateway, message) for message in messages])
    handler = HANDLERS[Kind.REGISTRATIONS]
    runs: list[list[int]] = []
    real_handle = handler.handle

    def breaks_on_the_second(session, gateway, items, *rest):  # type: ignore[no-untyped-def]
        runs.append([item.stored.id for item in items])
        if ids[1] in runs[-1]:
            raise RuntimeError("a bug in the handler")
        return real_handle(session, gateway, items, *rest)

    monkeypatch.setattr(handler, "handle", breaks_on_the_second)
    _process_claimed(gateway, claim_next(gateway.engine, lease=LEASE, limit=50), LEASE)

    assert runs == [ids, [ids[0]], [ids[1]], [ids[2]]]
    with Session(gateway.engine) as session:
        statuses = [session.get(InboundMessage, i).status for i in ids]  # type: ignore[union-attr]
        assert statuses == ["processed", "received", "processed"]
        assert sorted(r.reference for r in session.exec(select(Registration))) == ["GGD-0", "GGD-2"]
        receipts = session.exec(select(OutboxMessage)).all()
        assert sorted(r.reference for r in receipts) == [f"B-{ids[0]}", f"B-{ids[2]}"]


def test_every_kind_of_message_has_its_one_handler(intake: RunningGateway) -> None:
    """One decision per message, one table: the kind decides the handler, the run stops at the
    first message of another kind, a CSV mail runs alone."""
    gateway = intake.gateway

    def with_csv() -> EmailMessage:
        message = mail(GGD, REGISTRATIE, "Bijgaand.\n")
        message.add_attachment(b"bsn;kenmerk\r\n", maintype="text", subtype="csv", filename="a.csv")
        return message

    messages = [
        mail(GGD, REGISTRATIE, block(BSN_A, "GGD-A")),
        mail(GGD, REGISTRATIE, block(BSN_B, "GGD-B")),
        with_csv(),
        with_csv(),
        mail(GGD, REGISTRATIE, block(BSN_A), Auto_Submitted="auto-generated"),
    ]
    ids = stored_ids(gateway, [store(gateway, message) for message in messages])

    assert set(HANDLERS) == set(Kind)
    kinds = [[item.kind for item in open_run(gateway, ids[i:])] for i in range(len(ids))]
    assert kinds == [
        [Kind.REGISTRATIONS, Kind.REGISTRATIONS],
        [Kind.REGISTRATIONS],
        [Kind.REGISTRATION_FILE],
        [Kind.REGISTRATION_FILE],
        [Kind.IGNORED],
    ]
