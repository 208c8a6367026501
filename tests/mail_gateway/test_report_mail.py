"""The monthly report mail (issue 11.9, core.report_mail) through the real delivery worker and
an aiosmtpd relay on loopback: sent by the sweep from the first working day of the month, once
per municipality however often (or wherever) the sweep runs; text, HTML with its charts as
inline PNGs that open, and the figures as a CSV attachment; no youth's identity anywhere."""

from __future__ import annotations

import csv
import io
import struct
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core import report_mail
from core.db import run_in_transaction
from core.models import OutboxStatus
from core.outbox import MailPart, mail_parts_context
from core.report import ReportPeriod, follow_up_report, report_csv
from core.report_charts import DPI, HEIGHT_INCHES, WIDTH_INCHES
from core.report_mail import KIND, first_working_day, send_monthly_reports
from core.scheduler import sweep
from tests.core.conftest import CoreDriver
from tests.core.conftest import core as core  # the core driver fixture
from tests.core.test_privacy import _scan
from tests.core.test_report import play_march
from tests.mail_gateway.relay_sink import RelaySink
from tests.mail_gateway.test_delivery import delivery_for, enqueue_notification, outbox_rows

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GRONINGEN_CONTACT = "regie.verwijsindex@gemeente-groningen.example"
APRIL_FIRST = datetime(2026, 4, 1, 7, 0, tzinfo=UTC)  # a Wednesday, 09:00 in Groningen


@pytest.fixture
def sink() -> Iterator[RelaySink]:
    with RelaySink() as relay:
        yield relay


def reports(core: CoreDriver) -> list[str]:
    return sorted(row.recipient for row in core.outbox(KIND))


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which must come first (PNG spec §5.3, §11.2.2)."""
    assert data[:8] == PNG_SIGNATURE
    length, chunk = struct.unpack(">I4s", data[8:16])
    assert (length, chunk) == (13, b"IHDR")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# --- when, and how often ------------------------------------------------------------------


def test_the_first_working_day_follows_the_calendar(core: CoreDriver) -> None:
    config = core.config
    assert first_working_day(date(2026, 11, 20), config) == date(2026, 11, 2)  # 1st: Sunday
    assert first_working_day(date(2026, 1, 5), config) == date(2026, 1, 2)  # New Year
    assert first_working_day(date(2026, 4, 30), config) == date(2026, 4, 1)


def test_the_sweep_sends_each_municipality_one_report_from_the_first_working_day(
    core: CoreDriver,
) -> None:
    sunday = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    sweep(core.engine, core.config, now=sunday)
    assert reports(core) == [], "not before the first working day"
    monday = sunday + timedelta(days=1)
    sweep(core.engine, core.config, now=monday)
    contacts = reports(core)
    assert len(contacts) == len(core.config.covenant.municipalities) == 4
    assert GRONINGEN_CONTACT in contacts
    sweep(core.engine, core.config, now=monday + timedelta(hours=1))
    sweep(core.engine, core.config, now=monday + timedelta(days=9))  # a service down on the 2nd
    assert reports(core) == contacts, "a second sweep sends nothing more"
    rows = core.outbox(KIND)
    assert {row.reference for row in rows} == {"MR-2026-10"}
    assert {row.channel for row in rows} == {"email"}


def test_two_instances_sweeping_at_once_add_one_report_each(core: CoreDriver) -> None:
    """A second ``serve`` process sweeps while the first has written its reports but not yet
    committed: it waits for the first (PostgreSQL: the unique key; SQLite: the write lock),
    then adds nothing."""
    monday = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    added: list[int] = []

    def second_instance() -> None:
        added.append(
            run_in_transaction(core.engine, lambda s: send_monthly_reports(s, core.config, monday))
        )

    with Session(core.engine) as first:
        assert send_monthly_reports(first, core.config, monday) == 4
        first.flush()
        other = threading.Thread(target=second_instance)
        other.start()
        other.join(timeout=1.0)
        assert other.is_alive(), "the second instance waits for the first"
        first.commit()
    other.join(timeout=60)
    assert added == [0]
    assert len(reports(core)) == 4


def test_an_instance_that_looked_before_the_other_wrote_adds_nothing(
    core: CoreDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second saw no report yet (its look came first), made its own, and the outbox keeps
    the first's."""
    monday = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    with Session(core.engine) as first:
        assert send_monthly_reports(first, core.config, monday) == 4
        first.commit()
    monkeypatch.setattr(report_mail, "already_notified", lambda *args: False)
    with Session(core.engine) as second:
        assert send_monthly_reports(second, core.config, monday + timedelta(minutes=1)) == 0
        second.commit()
    assert len(reports(core)) == 4


# --- the mail itself ----------------------------------------------------------------------


def delivered_report(core: CoreDriver, sink: RelaySink, tmp_path: Path) -> EmailMessage:
    play_march(core)
    sweep(core.engine, core.config, now=APRIL_FIRST)
    delivery = delivery_for(core.engine, tmp_path, sink.url)
    while delivery.deliver_batch(now=APRIL_FIRST + timedelta(days=1)).claimed:
        pass
    [row] = [
        r
        for r in outbox_rows(core.engine, kind=KIND)
        if r.reference == "MR-2026-03" and r.recipient == GRONINGEN_CONTACT
    ]
    assert row.status == OutboxStatus.SENT, row.last_error
    [received] = [
        r
        for r in sink.messages()
        if r.message["X-Verwijsindex-Ref"] == "MR-2026-03" and r.recipients == [row.recipient]
    ]
    _scan(received.raw.decode("ascii"), "the raw report mail")
    return received.message


def test_the_report_mail_has_text_html_inline_charts_and_a_csv_attachment(
    core: CoreDriver, sink: RelaySink, tmp_path: Path
) -> None:
    message = delivered_report(core, sink, tmp_path)
    assert message.get_content_type() == "multipart/mixed"
    related, attachment = message.iter_parts()
    assert related.get_content_type() == "multipart/related"
    assert related.get_param("type") == "multipart/alternative"
    alternative, *images = related.iter_parts()
    text, html = (part.get_content() for part in alternative.iter_parts())
    assert len(images) == 3
    for image in images:
        data = image.get_content()
        assert image.get_content_type() == "image/png"
        assert image.get_content_disposition() == "inline"
        width, height = png_size(data)
        assert (width, height) == (int(WIDTH_INCHES * DPI), int(HEIGHT_INCHES * DPI))
        with Image.open(io.BytesIO(data)) as opened:
            opened.verify()  # the whole file decodes
            assert opened.format == "PNG" and opened.size == (width, height)
        assert f'src="cid:{image["Content-ID"].strip("<>")}"' in html
    assert message["X-Verwijsindex-Type"] == KIND
    assert message["Subject"] == "Maandrapport verwijsindex maart 2026: gemeente Groningen"
    assert attachment.get_content_disposition() == "attachment"
    assert attachment.get_filename() == "verwijsindex-groningen-2026-03.csv"
    rows = list(csv.DictReader(io.StringIO(attachment.get_content()), delimiter=";"))
    with Session(core.engine) as session:
        report = follow_up_report(
            session,
            core.config,
            municipality="Groningen",
            period=ReportPeriod.month_of(date(2026, 3, 1)),
        )
    assert attachment.get_content() == report_csv(report)  # base64 keeps it byte for byte
    cells = {(r["onderdeel"], r["regel"], r["kolom"]): r["waarde"] for r in rows}
    assert cells[("Signalen", "totaal", "geplaatst")] == "30"
    assert cells[("Matches", "contact bevestigd door alle partners", "waarde")] == "50 %"
    for part in (text, html):
        assert "maart 2026" in part and "gemeente Groningen" in part
        assert "minder dan 5" in part
        _scan(part, "the report mail")
    assert "  totaal: geplaatst 30, beëindigd <5, ingetrokken 5" in text
    assert "  maart 2026: 30 / 10" in text
    assert ">30</td>" in html and ">50 %</td>" in html


def test_the_report_mail_names_no_youth_or_reference_to_one(
    core: CoreDriver, sink: RelaySink, tmp_path: Path
) -> None:
    message = delivered_report(core, sink, tmp_path)
    texts = [part.get_content() for part in message.walk() if part.get_content_maintype() == "text"]
    assert len(texts) == 3  # text, HTML, CSV
    for content in texts:
        for reference in ("S-", "M-", "C-", "R-"):
            assert f" {reference}1" not in content, (
                "aggregates only: no signal, match or coordination"
            )


# --- files on any notification ------------------------------------------------------------


def test_a_part_cannot_add_a_header_and_a_malformed_part_is_a_dead_letter(
    engine: Engine, sink: RelaySink, tmp_path: Path
) -> None:
    hostile = MailPart("cijfers\r\nBcc: x@aanvaller.example.csv", "text/csv", b"a;b\r\n1;2\r\n")
    enqueue_notification(engine, 1, **mail_parts_context([hostile]))
    enqueue_notification(engine, 2, mail_parts=[{"filename": "x.png", "data": "!!"}])
    enqueue_notification(
        engine,
        3,
        **mail_parts_context([MailPart("x.png", "image/png", b"x", content_id="a>\r\nBcc: y@z")]),
    )
    delivery_for(engine, tmp_path, sink.url).deliver_batch()
    [received] = sink.messages()
    assert received.message["Bcc"] is None
    [attachment] = [p for p in received.message.walk() if p.get_filename()]
    assert attachment.get_filename() == "cijfers__Bcc__x_aanvaller.example.csv"
    assert attachment.get_content() == "a;b\r\n1;2\r\n"
    rows = {row.reference: row for row in outbox_rows(engine)}
    assert rows["B-1"].status == OutboxStatus.SENT
    assert rows["B-2"].status == OutboxStatus.FAILED  # never going to decode
    assert rows["B-3"].status == OutboxStatus.FAILED
