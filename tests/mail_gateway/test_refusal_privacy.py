"""No refusal repeats a youth's identity (issue 9, item 8): every identity field, in every
malformed shape, in a mail body, a CSV row and a reply, gets a refusal that names the line and
the field but never the value. First the parsers, case by case; then the same shapes in one
mail and one CSV through the real gateway on loopback, whose receipt is scanned as sent.
"""

from __future__ import annotations

import io
import smtplib
from collections.abc import Callable

import pytest

from core.errors import InvalidInput
from core.fields import parse_registration
from core.identity import check_reference_text
from core.registration import RegisterYouth, check_reference
from mail_gateway.context import Gateway
from mail_gateway.parsing.blocks import parse_registration_blocks, parse_signal_blocks
from mail_gateway.parsing.csv_attachment import read_csv_rows
from mail_gateway.parsing.reply import parse_reply_command
from tests.core.conftest import BSN_A, BSN_PARENT
from tests.mail_gateway.conftest import RunningGateway
from tests.mail_gateway.relay_sink import RelaySink
from tests.mail_gateway.test_bad_input import GGD, answer_to, registration
from tests.privacy_guard import mail_texts

# Each identity field with a value that identifies (the test youth's), as users label it.
IDENTITY = {
    "BSN": BSN_A,
    "BSN ouder": BSN_PARENT,
    "Naam": "Testkind Geheimnaam",
    "Voornaam": "Geheimvoornaam",
    "Achternaam": "Geheimnaam",
    "Geboortedatum": "01-05-2016",
    "Adres": "Geheimstraat 12",
}
BASE = {"BSN": "123456782", "Geboortedatum": "02-06-2015", "Gemeente": "Groningen"}


def _shapes(label: str, value: str) -> dict[str, str]:
    """Malformed ways of writing ``label: value``, as lines of a block."""
    return {
        "no-colon": f"{label} {value}",
        "dash": f"{label} - {value}",
        "semicolon": f"{label}; {value}",
        "unknown-label": f"{label}x: {value}",
        "label-in-value": f"Iets: {label} {value}",
        "bad-value": f"{label}: {value}x",
        "own-line": f"{label}:\n{value}",
        "alone": value,
        "duplicate": f"{label}: {value}\n{label}: {value}9",
        "over-long": f"{label}: " + " ".join([value] * 120),
        "bidi": f"{label}: {value}\u202e",
        "kenmerk": f"Kenmerk: K-{value}",
    }


def _block(label: str, shape: str) -> str:
    """A block whose other fields are right, with ``shape`` inside it (not at its edge, where a
    line that is no field is taken for a greeting or a signature)."""
    base = {k: v for k, v in BASE.items() if k != label}
    if not shape.startswith("Kenmerk:"):
        base["Kenmerk"] = "K-1"
    return "".join(f"{k}: {v}\n" for k, v in base.items()) + shape + "\nGemeente: Groningen\n"


def _applies(label: str, shape: str) -> bool:
    if label in ("Naam", "Achternaam", "Voornaam", "Adres"):
        # Any text is a name; a surname is read only without a BSN; and a kenmerk holding a name
        # is the institution's own choice (sent only to itself), one holding a BSN is refused.
        return shape not in ("bad-value", "kenmerk") and (label, shape) != ("Achternaam", "bidi")
    return True


def _cases() -> list[tuple[str, str, str]]:
    return [
        (label, value, shape)
        for label, value in IDENTITY.items()
        for name, shape in _shapes(label, value).items()
        if _applies(label, name)
    ]


CASES = [pytest.param(*case, id=f"{case[0]}-{case[2][:30]}") for case in _cases()]


def _forms(value: str) -> list[str]:
    forms = [value, *value.split()]
    if value.isdigit():
        forms += [f"{value[:3]} {value[3:6]} {value[6:]}", value.lstrip("0")]
    return [f for f in forms if len(f) >= 5]


def _assert_not_in(value: str, text: str) -> None:
    for form in _forms(value):
        assert form not in text, f"{form!r} repeated in {text!r}"


@pytest.mark.parametrize(("label", "value", "shape"), CASES)
def test_a_malformed_identity_line_is_refused_without_its_value(
    label: str, value: str, shape: str
) -> None:
    body = _block(label, shape)
    if label == "BSN ouder" and shape == f"Kenmerk: K-{value}":
        body += f"BSN ouder: {value}\n"
    for parse in (parse_registration_blocks, parse_signal_blocks):
        (result,) = parse(body)
        if result.refusal is not None:
            refusal = f"{result.refusal.field} {result.refusal.reason}"
        else:  # read as written: the core's checks refuse it (a kenmerk holding a BSN)
            with pytest.raises(InvalidInput) as refused:
                command = result.command
                check_reference_text(command.reference, command.identity, command.parent_bsns)
            refusal = f"{refused.value.field} {refused.value.message}"
        _assert_not_in(value, refusal)


def test_an_unknown_label_with_digits_is_not_repeated() -> None:
    (result,) = parse_registration_blocks(_block("Kenmerk", f"Kind {BSN_A}: ja"))
    assert result.refusal is not None
    assert result.refusal.reason == "regel 5: deze regel is geen veld dat wij kennen"


CSV_HEADER = "bsn;naam;geboortedatum;gemeente;kenmerk;bsn_ouder"
CSV_ROWS = {
    "bad BSN": (f"{BSN_A}x;;02-06-2015;Groningen;K-1;", BSN_A),
    "BSN failing the elfproef": ("111222334;;02-06-2015;Groningen;K-1;", "111222334"),
    "bad birth date": ("123456782;;01-05-2016x;Groningen;K-1;", "01-05-2016"),
    "impossible birth date": ("123456782;;31-02-2016;Groningen;K-1;", "31-02-2016"),
    "bad parent BSN": (f"123456782;;02-06-2015;Groningen;K-1;{BSN_PARENT}1", BSN_PARENT),
    "name with a bidi control": ("123456782;Geheim\u202enaam;02-06-2015;Groningen;K-1;", "Geheim"),
    "bidi in the kenmerk": ("123456782;;02-06-2015;Groningen;K-\u202e1;", "K-\u202e1"),
    "BSN in the kenmerk": (f"{BSN_A};;02-06-2015;Groningen;dossier {BSN_A};", BSN_A),
    "too many values": (f"{BSN_A};Geheimnaam;01-05-2016;Groningen;K-1;;;extra", "Geheimnaam"),
}


def _csv_refusals(text: str) -> list[str]:
    """Each CSV row's refusal: of the reader, or of the core's checks of a registration."""
    refusals = []
    for row in read_csv_rows(io.StringIO(text)):
        if row.refusal is not None:
            refusals.append(f"{row.refusal.field} {row.refusal.reason}")
            continue
        try:
            request = parse_registration({k: v for k, v in row.fields.items() if v})
            assert isinstance(request, RegisterYouth)
            check_reference(request.reference, request)
        except InvalidInput as error:
            refusals.append(f"{error.field} {error.message}")
    return refusals


@pytest.mark.parametrize(("row", "value"), CSV_ROWS.values(), ids=list(CSV_ROWS))
def test_a_bad_csv_row_is_refused_without_its_value(row: str, value: str) -> None:
    [refusal] = _csv_refusals(f"{CSV_HEADER}\n{row}\n")
    _assert_not_in(value, refusal)


def test_a_csv_without_header_does_not_repeat_its_first_row() -> None:
    first = f"{BSN_A};Testkind Geheimnaam;01-05-2016;Groningen;K-1"
    with pytest.raises(InvalidInput) as refused:
        list(read_csv_rows(io.StringIO(first + "\n")))
    assert refused.value.field == "kopregel" and "geen kopregel" in refused.value.message
    for value in (BSN_A, "Geheimnaam", "01-05-2016"):
        _assert_not_in(value, refused.value.message)


def test_an_unknown_column_is_named_only_when_it_cannot_be_data() -> None:
    with pytest.raises(InvalidInput) as refused:
        list(read_csv_rows(io.StringIO(f"bsn;geboortedatun;{BSN_A};gemeente\n")))
    assert "'geboortedatun'" in refused.value.message
    assert "(kolomnaam weggelaten)" in refused.value.message
    _assert_not_in(BSN_A, refused.value.message)


@pytest.mark.parametrize(
    "answer",
    [f"Jongere {BSN_A} is al bekend", "Testkind Geheimnaam zit bij ons", "01-05-2016 geboren"],
)
def test_an_unknown_answer_is_not_repeated(answer: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_reply_command(answer)
    for value in (BSN_A, "Geheimnaam", "01-05-2016"):
        _assert_not_in(value, refused.value.message)


# -- the same through the real gateway ---------------------------------------------------------


@pytest.fixture
def service(
    make_gateway: Callable[..., Gateway],
    run_gateway: Callable[..., RunningGateway],
    sink: RelaySink,
) -> RunningGateway:
    return run_gateway(make_gateway(relay_url=sink.url))


def test_the_receipt_of_every_malformed_shape_carries_no_identity(
    service: RunningGateway, sink: RelaySink
) -> None:
    blocks = [_block(label, shape) for label, _, shape in _cases()]
    blocks.append(_block("Kenmerk", "Kenmerk: GGD-\u202e2400"))  # read, then refused by the core
    body = registration("---\n".join(blocks))
    csv_body = CSV_HEADER + "\n" + "\n".join(row for row, _ in CSV_ROWS.values()) + "\n"
    attached = registration("Zie de bijlage.")
    attached.add_attachment(csv_body.encode(), maintype="text", subtype="csv", filename="r.csv")
    with smtplib.SMTP("127.0.0.1", service.smtp_port) as client:
        client.send_message(body, from_addr=GGD)
        client.send_message(attached, from_addr=GGD)
    for mail, refused in ((body, len(blocks)), (attached, len(CSV_ROWS))):
        receipt = answer_to(sink, str(mail["Message-ID"]))
        text = "\n".join(mail_texts(receipt.message))
        assert f"{refused} niet verwerkt" in text
        assert "veld Kenmerk: bevat onzichtbare of stuurtekens (U+202E)" in text
        for value in [*IDENTITY.values(), *(value for _, value in CSV_ROWS.values())]:
            _assert_not_in(value, text)
