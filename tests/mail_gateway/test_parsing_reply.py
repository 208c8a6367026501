"""Reply mails: the answer above each client's quoted history (Dutch and English), and the
keyword on its first line."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest
import quotequail
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import InvalidInput
from core.replies import ReplyAction
from mail_gateway.parsing.mime import read_mail
from mail_gateway.parsing.quoting import library_may_find_quote
from mail_gateway.parsing.reply import (
    argument_text,
    extract_reply,
    parse_reply_command,
    strip_quoted,
)

NOTIFICATION = (
    "Beste coördinator,\n"
    "\n"
    "U bent toegewezen als procescoördinator (C-12).\n"
    "Antwoord met AKKOORD, WEIGER <reden> of OVERDRAGEN <instelling-id>.\n"
)
QUOTED = "".join(f"> {line}\n" if line else ">\n" for line in NOTIFICATION.split("\n")[:-1])
ANSWER = "WEIGER geen capaciteit deze maand\nWij hebben een wachtlijst van 6 weken."

CLIENTS = {
    "gmail-nl": (
        "Op ma 23 nov. 2026 om 10:12 schreef Verwijsindex Groningen <antwoord+t0k3n@vi.nl>:\n\n"
        + QUOTED
    ),
    "gmail-nl-wrapped": (
        "Op ma 23 nov. 2026 om 10:12 schreef Verwijsindex Groningen <\n"
        "antwoord+t0k3n@verwijsindex.nl>:\n\n" + QUOTED
    ),
    "gmail-en": (
        "On Mon, Nov 23, 2026 at 10:12 AM Verwijsindex <antwoord+t0k3n@vi.nl> wrote:\n\n" + QUOTED
    ),
    "gmail-en-wrapped": (
        "On Mon, Nov 23, 2026 at 10:12 AM Verwijsindex Groningen <antwoord+t0k3n@vi.nl>\n"
        "wrote:\n\n" + QUOTED
    ),
    "thunderbird-nl": "Op 23-11-2026 om 10:12 schreef Verwijsindex Groningen:\n" + QUOTED,
    "thunderbird-en": "On 11/23/26 10:12, Verwijsindex Groningen wrote:\n" + QUOTED,
    "apple-nl": (
        "Op 23 nov 2026, om 10:12 heeft Verwijsindex <antwoord+t0k3n@vi.nl> het volgende "
        "geschreven:\n\n" + QUOTED
    ),
    "apple-nl-iphone": (
        "Verstuurd vanaf mijn iPhone\n\n> Op 23 nov 2026, om 10:12 heeft Verwijsindex "
        "<antwoord+t0k3n@vi.nl> het volgende geschreven:\n>\n" + QUOTED
    ),
    "apple-en": (
        "On 23 Nov 2026, at 10:12, Verwijsindex <antwoord+t0k3n@vi.nl> wrote:\n\n" + QUOTED
    ),
    "apple-en-iphone": (
        "Sent from my iPhone\n\n> On 23 Nov 2026, at 10:12, Verwijsindex <a@vi.nl> wrote:\n"
        + QUOTED
    ),
    "outlook-nl": (
        "Met vriendelijke groet,\nJan Jansen\nWIJ Groningen | 050 123 4567\n\n"
        "Van: Verwijsindex Groningen <antwoord+t0k3n@vi.nl>\n"
        "Verzonden: maandag 23 november 2026 10:12\n"
        "Aan: Jan Jansen <jan@wij-groningen.nl>\n"
        "Onderwerp: Procescoördinatie toegewezen (C-12)\n\n" + NOTIFICATION
    ),
    "outlook-nl-mac": (
        "Van: Verwijsindex Groningen <antwoord+t0k3n@vi.nl>\n"
        "Datum: maandag, 23 november 2026 om 10:12\n"
        "Aan: Jan Jansen <jan@wij-groningen.nl>\n"
        "Onderwerp: Procescoördinatie toegewezen (C-12)\n\n" + NOTIFICATION
    ),
    "outlook-nl-oorspronkelijk": (
        "-----Oorspronkelijk bericht-----\nVan: Verwijsindex <antwoord+t0k3n@vi.nl>\n"
        "Verzonden: maandag 23 november 2026 10:12\nAan: Jan\nOnderwerp: C-12\n\n" + NOTIFICATION
    ),
    "outlook-nl-streep": (
        "________________________________\nVan: Verwijsindex <antwoord+t0k3n@vi.nl>\n"
        "Verzonden: maandag 23 november 2026 10:12\nAan: Jan\nOnderwerp: C-12\n\n" + NOTIFICATION
    ),
    "outlook-nl-bold-in-gmail": (
        "*Van:* Verwijsindex <antwoord+t0k3n@vi.nl>\n*Verzonden:* maandag 23 november 2026\n"
        "*Aan:* Jan\n*Onderwerp:* C-12\n\n" + NOTIFICATION
    ),
    "outlook-en": (
        "From: Verwijsindex Groningen <antwoord+t0k3n@vi.nl>\n"
        "Sent: Monday, November 23, 2026 10:12 AM\nTo: Jan Jansen <jan@wij.nl>\n"
        "Subject: Coordination assigned (C-12)\n\n" + NOTIFICATION
    ),
    "outlook-en-original": (
        "-----Original Message-----\nFrom: Verwijsindex\nSent: Monday, November 23, 2026\n"
        "To: Jan\nSubject: C-12\n\n" + NOTIFICATION
    ),
    "signature-dashes": "-- \nJan Jansen\nWIJ Groningen\n\n" + QUOTED,
    "forwarded": "---------- Doorgestuurd bericht ---------\nVan: Verwijsindex\n" + NOTIFICATION,
    "plain-quote": QUOTED,
    "nothing-quoted": "",
}


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_answer_above_each_clients_quoted_history(client: str) -> None:
    text = ANSWER + "\n\n" + CLIENTS[client]
    assert strip_quoted(text) == ANSWER
    assert extract_reply(text) == ANSWER
    assert parse_reply_command(extract_reply(text)) == ReplyAction(
        "decline", ANSWER.removeprefix("WEIGER ")
    )


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_one_word_answer_in_each_client(client: str) -> None:
    text = "Akkoord.\n\n" + CLIENTS[client]
    assert parse_reply_command(strip_quoted(text)) == ReplyAction("accept")


def test_closing_and_name_are_not_part_of_the_answer() -> None:
    text = "AKKOORD\n\nMet vriendelijke groet,\n\nJan Jansen\nProcescoördinator\n"
    assert strip_quoted(text) == "AKKOORD"
    assert strip_quoted("WEIGER vol\nGroeten,\nJan") == "WEIGER vol"


def test_crlf_and_leading_blank_lines() -> None:
    text = "\r\n\r\n  AKKOORD\r\n\r\nOp 23-11-2026 om 10:12 schreef X:\r\n> vraag\r\n"
    assert extract_reply(text) == "AKKOORD"


def test_a_body_line_starting_with_van_is_not_a_quote_header() -> None:
    text = "WEIGER\nVan: de ouders begrepen dat het gezin verhuist\nDus geen capaciteit"
    assert strip_quoted(text) == text


def test_only_quoted_text_leaves_nothing() -> None:
    assert strip_quoted(QUOTED) == ""
    assert extract_reply("Op 23-11-2026 om 10:12 schreef X:\n" + QUOTED) == ""


def test_long_lines_do_not_make_stripping_slow() -> None:
    line = "On " + "x " * 20_000  # the library's patterns are quadratic on such lines
    assert strip_quoted("AKKOORD\n" + line).startswith("AKKOORD")


def _html_reply(html: str) -> bytes:
    message = EmailMessage()
    message["From"] = "jan@wij-groningen.nl"
    message["Subject"] = "RE: Procescoördinatie toegewezen"
    message.set_content(html, subtype="html")
    return message.as_bytes()


def test_html_only_gmail_reply() -> None:
    html = (
        '<div dir="ltr"><b>Akkoord</b>!</div><br><div class="gmail_quote">'
        '<div dir="ltr" class="gmail_attr">Op ma 23 nov. 2026 om 10:12 schreef Verwijsindex '
        "&lt;<a href='mailto:antwoord+t@vi.nl'>antwoord+t@vi.nl</a>&gt;:<br></div>"
        '<blockquote class="gmail_quote"><div>Beste coördinator,<br>Antwoord met AKKOORD.</div>'
        "</blockquote></div>"
    )
    mail = read_mail(_html_reply(html))
    assert parse_reply_command(strip_quoted(mail.text)) == ReplyAction("accept")


def test_html_only_outlook_reply() -> None:
    html = (
        "<html><head><style>p.MsoNormal{margin:0}</style></head><body>"
        '<div class="WordSection1"><p class="MsoNormal">VERLENG&nbsp;6 maanden<o:p></o:p></p>'
        '<p class="MsoNormal"><o:p>&nbsp;</o:p></p>'
        '<div style="border:none;border-top:solid #E1E1E1 1.0pt">'
        '<p class="MsoNormal"><b>Van:</b> Verwijsindex &lt;antwoord+t@vi.nl&gt;<br>'
        "<b>Verzonden:</b> maandag 23 november 2026 10:12<br><b>Aan:</b> Jan<br>"
        "<b>Onderwerp:</b> Signaal verloopt</p></div><p>Het signaal S-4 verloopt.</p>"
        "</div></body></html>"
    )
    mail = read_mail(_html_reply(html))
    assert strip_quoted(mail.text) == "VERLENG 6 maanden"
    assert parse_reply_command(strip_quoted(mail.text)) == ReplyAction("extend", "6")


# --- keywords ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "action"),
    [
        ("AKKOORD", ReplyAction("accept")),
        ("akkoord", ReplyAction("accept")),
        ("Akkoord.", ReplyAction("accept")),
        ("akkoord!", ReplyAction("accept")),
        ("   \xa0Akkoord\xa0 ", ReplyAction("accept")),
        ("*AKKOORD*", ReplyAction("accept")),
        ("\u200bAkkoord", ReplyAction("accept")),
        ("ACCEPT", ReplyAction("accept")),
        ("Accept.", ReplyAction("accept")),
        ("WEIGER geen capaciteit", ReplyAction("decline", "geen capaciteit")),
        ("weiger: Geen Capaciteit.", ReplyAction("decline", "Geen Capaciteit")),
        ("Weigeren - buiten onze regio", ReplyAction("decline", "buiten onze regio")),
        ("WEIGER:geen plek", ReplyAction("decline", "geen plek")),
        ("DECLINE no capacity", ReplyAction("decline", "no capacity")),
        ("OVERDRAGEN ggd-groningen", ReplyAction("hand-over", "ggd-groningen")),
        ("overdragen aan WIJ-Groningen.", ReplyAction("hand-over", "wij-groningen")),
        ("TRANSFER ggd-groningen", ReplyAction("hand-over", "ggd-groningen")),
        ("Transfer to ggd-groningen", ReplyAction("hand-over", "ggd-groningen")),
        ("CONTACT GELEGD", ReplyAction("contacted")),
        ("contact  gelegd.", ReplyAction("contacted")),
        ("Contacted", ReplyAction("contacted")),
        ("VERLENG", ReplyAction("extend", "")),
        ("verleng.", ReplyAction("extend", "")),
        ("VERLENG 6", ReplyAction("extend", "6")),
        ("Verleng 12 maanden", ReplyAction("extend", "12")),
        ("verlengen met 3 mnd", ReplyAction("extend", "3")),
        ("EXTEND", ReplyAction("extend", "")),
        ("extend 24 months", ReplyAction("extend", "24")),
        ("AKKOORD\nen nog een regel", ReplyAction("accept")),
        ("\n\n  Akkoord  \n", ReplyAction("accept")),
    ],
)
def test_keywords(line: str, action: ReplyAction) -> None:
    assert parse_reply_command(line) == action


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("WEIGER", "reden"),
        ("weiger.", "reden"),
        ("DECLINE:", "reden"),
        ("OVERDRAGEN", "instelling"),
        ("VERLENG 0", "maanden"),
        ("VERLENG 25", "maanden"),
        ("VERLENG zes maanden", "maanden"),
        ("EXTEND 3.5", "maanden"),
        ("", "antwoord"),
        ("   \n \xa0 ", "antwoord"),
        ("Ja hoor", "antwoord"),
        ("Akkoord, maar pas na de vakantie", "antwoord"),
        ("niet akkoord", "antwoord"),
        ("weigerachtig", "antwoord"),
    ],
)
def test_refused_answers(line: str, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_reply_command(line)
    assert refused.value.field == field
    assert refused.value.message  # Dutch, shown to the sender


def test_unknown_answer_lists_the_keywords_in_dutch() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_reply_command("Prima, doe maar")
    message = refused.value.message
    for keyword in ("AKKOORD", "WEIGER", "OVERDRAGEN", "CONTACT GELEGD", "VERLENG"):
        assert keyword in message
    assert "de eerste regel is geen antwoord dat wij kennen" in message
    assert "Prima" not in message  # the reader's own words may name the youth


def test_decline_without_reason_asks_for_one_in_dutch() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_reply_command("WEIGER")
    assert "reden" in refused.value.message


# --- whole answers (issue 13.10) and the library fallback (13.11) -----------------------------


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("WEIGER geen plek.", "geen plek"),
        (
            "WEIGER: geen plek.\nDe wachtlijst is zes weken.",
            "geen plek.\nDe wachtlijst is zes weken.",
        ),
        ("WEIGER\nwij hebben geen plek.", "wij hebben geen plek"),
        ("*WEIGER* geen plek\n\n\n\nbel ons gerust", "geen plek\n\nbel ons gerust"),
        ("WEIGER   geen    plek\n  regel  twee  ", "geen plek\nregel twee"),
    ],
)
def test_a_reason_runs_to_the_end_of_the_answer(answer: str, reason: str) -> None:
    assert parse_reply_command(answer) == ReplyAction("decline", reason)


def test_the_reason_stops_at_the_closing_and_the_quote() -> None:
    text = (
        "WEIGER geen plek\nwachtlijst zes weken\n\nGroet, Sanne\nWIJ Groningen\n\n"
        "Op 23-11-2026 om 10:12 schreef Verwijsindex:\n> Antwoord met AKKOORD\n"
    )
    assert parse_reply_command(extract_reply(text)) == ReplyAction(
        "decline", "geen plek\nwachtlijst zes weken"
    )


def test_overdragen_takes_the_institution_from_the_next_line_too() -> None:
    assert parse_reply_command("OVERDRAGEN\nggd-groningen, zij kennen het gezin") == ReplyAction(
        "hand-over", "ggd-groningen"
    )


def test_argument_text_is_the_one_reader_of_a_keywords_text() -> None:
    assert argument_text("AFGEROND hulp loopt\nvia het wijkteam.", "hulp loopt") == (
        "hulp loopt\nvia het wijkteam."
    )
    assert argument_text("AFGEROND", "") == ""
    assert len(argument_text("WEIGER " + "x" * 5000, "x" * 5000)) == 2000


def test_a_bottom_posted_answer_is_read() -> None:
    text = "Op 23-11-2026 om 10:12 schreef X:\n> vraag\n> meer\n\nWEIGER vol\necht\n-- \nJan\n"
    assert strip_quoted(text) == "WEIGER vol\necht"


def test_outlooks_unquoted_original_is_never_an_answer() -> None:
    text = "\nVan: Verwijsindex\nVerzonden: maandag\nAan: Jan\n\nWEIGER <reden>\n"
    assert strip_quoted(text) == ""


@pytest.mark.parametrize(
    "header",
    [
        "Am 23.11.2026 um 10:12 schrieb Verwijsindex <a@vi.nl>:",  # German
        "Le 23 nov. 2026 à 10:12, Verwijsindex <a@vi.nl> a écrit :",  # French
        "Den 23 nov. 2026 kl. 10:12 skrev Verwijsindex <a@vi.nl>:",  # Swedish
    ],
)
def test_quotequail_cuts_what_our_patterns_do_not_know(header: str) -> None:
    assert strip_quoted(f"WEIGER vol\n\n{header}\nBeste coördinator,\nAKKOORD?\n") == ("WEIGER vol")


def test_the_library_sees_a_bounded_prefix_only() -> None:
    answer = "\n".join(f"regel {i}" for i in range(150))
    late = "\nAm 23.11.2026 um 10:12 schrieb X <a@vi.nl>:\nzitat\n"
    assert strip_quoted(answer + late).endswith("zitat")  # past line 100: not the library's
    assert strip_quoted("AKKOORD\n" + "Am " + "x " * 20_000 + "schrieb:").startswith("AKKOORD")


# --- the quick question before quotequail: never "no" where the library finds a quote ---------

_QUOTE_HEADERS = [
    "Am 23.11.2026 um 10:12 schrieb Verwijsindex <a@vi.nl>:",
    "Le 23 nov. 2026 à 10:12, Verwijsindex <a@vi.nl> a écrit :",
    "Den 23 nov. 2026 kl. 10:12 skrev Verwijsindex <a@vi.nl>:",
    "El 23/11/2026, a las 10:12, Verwijsindex escribió:",
    "---------- Forwarded message ----------",
    "Begin forwarded message:",
    "-----Original Message-----",
]


def _library_finds_quote(lines: list[str]) -> bool:
    """As ``quoting._library_end`` asks it (which gives it no empty text)."""
    if not lines:
        return False
    parts = quotequail.quote("\n".join(lines), limit=len(lines) + 1, quote_intro_line=True)
    return len(parts) > 1


def _samples() -> list[list[str]]:
    texts = [text for text in CLIENTS.values()]
    texts += [NOTIFICATION, ANSWER, "BSN: 123456782\nGemeente: Groningen\nKenmerk: K-1\n"]
    for path in sorted((Path(__file__).parent / "fixtures").rglob("*.eml")):
        texts.append(read_mail(path.read_bytes()).text)
    for header in _QUOTE_HEADERS:
        texts += [f"WEIGER vol\n\n{header}\n> oud\n", f"AKKOORD\n{header[:20]}\n{header[20:]}\n"]
    return [text.split("\n") for text in texts]


@pytest.mark.parametrize("lines", _samples())
def test_the_quick_question_agrees_with_quotequail(lines: list[str]) -> None:
    assert library_may_find_quote(lines) == _library_finds_quote(lines)


@settings(max_examples=300)
@given(
    st.lists(
        st.one_of(
            st.sampled_from([*_QUOTE_HEADERS, "", ">", "> Op 1 jan. schreef X:", "Van: X"]),
            st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60),
        ),
        max_size=8,
    )
)
def test_the_quick_question_agrees_with_quotequail_on_any_text(lines: list[str]) -> None:
    lines = [line.replace("\n", " ").replace("\r", " ") for line in lines]
    assert library_may_find_quote(lines) == _library_finds_quote(lines)
