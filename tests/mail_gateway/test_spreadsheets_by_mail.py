"""Registration files by mail (issue 13.8, 13.12), through the real SMTP listener and the
processing worker: an ``.xlsx`` workbook is imported like a CSV; an ``.xls`` or a PDF gets an
answer naming the file and saying to send CSV or xlsx; a refused block or row is named by the
sender's own Kenmerk."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from core.models import InboundStatus, Registration
from core.rendering import TemplateRenderer
from tests.core.conftest import BSN_A, BSN_B
from tests.core.test_import_files import ZERO_BSN, workbook
from tests.mail_gateway.conftest import MAIL_DOMAIN, RunningGateway
from tests.mail_gateway.test_processing import (  # noqa: F401  (gateway: the fixture)
    GGD,
    block,
    gateway,
    mail,
    outcome,
    send,
)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def test_an_xlsx_attachment_is_imported(gateway: RunningGateway) -> None:  # noqa: F811
    message = mail(GGD, f"registratie@{MAIL_DOMAIN}", "Bijgaand de aanmeldingen van deze week.\n")
    data = workbook(
        ["BSN", "Naam", "Geboortedatum", "Gemeente", "Kenmerk"],
        [int(BSN_A), "Een", datetime(2016, 5, 1), "Groningen", "GGD-X1"],
        [int(ZERO_BSN), "Twee", datetime(2015, 2, 3), "Groningen", "GGD-X2"],
        ["123456789", "Fout", "01-05-2016", "Groningen", "GGD-X3"],
    )
    maintype, subtype = XLSX.split("/")
    message.add_attachment(data, maintype=maintype, subtype=subtype, filename="week48.xlsx")
    row, receipt = outcome(gateway, send(gateway, message))
    assert row.status == InboundStatus.PROCESSED
    assert receipt is not None and receipt.kind == "ontvangstbevestiging"
    [summary] = receipt.context["summaries"]
    assert summary["filename"] == "week48.xlsx"
    assert (summary["accepted"], summary["refused"]) == (2, 1)
    [refused] = receipt.context["refused"]
    assert (refused["line"], refused["field"], refused["own_reference"]) == (4, "BSN", "GGD-X3")
    with Session(gateway.gateway.engine) as session:
        references = sorted(r.reference for r in session.exec(select(Registration)).all())
    assert references == ["GGD-X1", "GGD-X2"]


def test_an_xlsx_sent_as_octet_stream_is_recognised_by_its_name(
    gateway: RunningGateway,  # noqa: F811
) -> None:
    message = mail(GGD, f"registratie@{MAIL_DOMAIN}", "Zie bijlage\n")
    data = workbook(
        ["bsn", "geboortedatum", "gemeente", "kenmerk"],
        [int(BSN_B), "14-03-2012", "Groningen", "K-9"],
    )
    message.add_attachment(
        data, maintype="application", subtype="octet-stream", filename="lijst.XLSX"
    )
    _, receipt = outcome(gateway, send(gateway, message))
    assert receipt is not None and receipt.context["summaries"][0]["accepted"] == 1


def test_an_xls_gets_an_answer_naming_it_and_what_to_send(
    gateway: RunningGateway,  # noqa: F811
) -> None:
    message = mail(GGD, f"registratie@{MAIL_DOMAIN}", "Bijgaand de lijst.\n")
    message.add_attachment(
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600,
        maintype="application",
        subtype="vnd.ms-excel",
        filename="aanmeldingen-2026.xls",
    )
    row, answer = outcome(gateway, send(gateway, message))
    assert answer is not None and answer.kind == "foutmelding"
    assert row.status == InboundStatus.FAILED  # kept for the administrator
    [about_file, *_] = answer.context["problems"]
    assert "'aanmeldingen-2026.xls'" in about_file
    assert "CSV" in about_file and ".xlsx" in about_file


def test_a_pdf_beside_registration_blocks_is_named_and_the_blocks_are_registered(
    gateway: RunningGateway,  # noqa: F811
) -> None:
    message = mail(GGD, f"registratie@{MAIL_DOMAIN}", block(reference="GGD-P1"))
    message.add_attachment(
        b"%PDF-1.7\n", maintype="application", subtype="pdf", filename="brief.pdf"
    )
    message.add_attachment(b"\x89PNG\r\n", maintype="image", subtype="png", filename="image001.png")
    _, receipt = outcome(gateway, send(gateway, message))
    assert receipt is not None and receipt.kind == "ontvangstbevestiging"
    assert [a["own_reference"] for a in receipt.context["accepted"]] == ["GGD-P1"]
    [refused] = receipt.context["refused"]  # the PDF; the signature's picture is no file of ours
    assert refused["field"] == "bijlage" and "'brief.pdf'" in refused["reason"]


def test_a_refused_block_is_named_by_its_kenmerk(gateway: RunningGateway) -> None:  # noqa: F811
    body = block(BSN_A, "GGD-1") + "---\n" + block("123456789", "GGD-2") + "---\n"
    body += block(BSN_B, "111222333")  # a kenmerk holding a BSN: refused, and never repeated
    _, receipt = outcome(gateway, send(gateway, mail(GGD, f"registratie@{MAIL_DOMAIN}", body)))
    assert receipt is not None
    refused = {r["line"]: r for r in receipt.context["refused"]}
    assert refused[6]["own_reference"] == "GGD-2" and refused[6]["field"] == "BSN"
    assert refused[11]["field"] == "Kenmerk" and refused[11]["own_reference"] == ""
    assert "111222333" not in str(receipt.context)
    rendered = TemplateRenderer().render_email(receipt.kind, dict(receipt.context))
    for part in (rendered.text, rendered.html):
        assert "Regel 6 (uw kenmerk GGD-2), veld BSN: is geen geldig BSN" in part


def test_an_unreadable_workbook_is_named_in_the_receipt(gateway: RunningGateway) -> None:  # noqa: F811
    message = mail(GGD, f"registratie@{MAIL_DOMAIN}", "Zie bijlage\n")
    maintype, subtype = XLSX.split("/")
    message.add_attachment(
        b"PK\x03\x04 kapot", maintype=maintype, subtype=subtype, filename="w.xlsx"
    )
    _, receipt = outcome(gateway, send(gateway, message))
    assert receipt is not None
    [refused] = receipt.context["refused"]
    assert refused["field"] == "bestand"
    assert refused["reason"].startswith("bijlage 'w.xlsx': het bestand is geen leesbaar xlsx")
