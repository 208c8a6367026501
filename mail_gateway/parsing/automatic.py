"""Mail that must never be answered, and out-of-office replies (RFC 3834: "Recommendations for
Automatic Responses to Electronic Mail"). Answering automatic mail is how mail loops start: two
auto-responders can keep each other busy for ever.

:func:`automatic_reason` names why a mail gets no answer (a receipt or error message) at all;
:func:`is_out_of_office` recognises the absence notices that arrive in answer to our
notifications, so they are kept, not read as an answer.
"""

from __future__ import annotations

import re

from mail_gateway.parsing.mime import ParsedMail

_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
_DAEMONS = frozenset({"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"})
_REPORT_TYPE = re.compile(r"""report-type\s*=\s*["']?([\w-]+)""", re.IGNORECASE)
_OUT_OF_OFFICE_SUBJECT = re.compile(
    r"^\s*(automatisch antwoord|automatisch bericht|automatische reactie|afwezig|"
    r"niet aanwezig|out of (the )?office|automatic reply|auto[- ]?reply|autoreply|"
    r"auto[- ]?response|abwesenheitsnotiz|absence|r[ée]ponse automatique)\b",
    re.IGNORECASE,
)
_NO = frozenset({"no", "false", "0"})


def automatic_reason(mail: ParsedMail, *, envelope_sender: str | None = None) -> str | None:
    """Why this mail gets no answer, or None when it may be answered. ``envelope_sender`` is
    the SMTP ``MAIL FROM`` (``''`` or ``'<>'`` for the null sender); None when unknown."""
    # RFC 3834 §5: any Auto-Submitted value other than "no" marks automatic mail; §2: responders
    # must not answer it.
    if mail.auto_submitted and mail.auto_submitted != "no":
        return "auto-submitted"
    # RFC 3834 §2: "Precedence: bulk / junk / list" is mass mail; no automatic answer to it.
    precedence = mail.header("precedence").strip().lower()
    if precedence in _PRECEDENCE:
        return f"precedence-{precedence}"
    # RFC 3834 §2 and RFC 5321 §4.5.5: mail from the null sender (bounces, reports) is never
    # answered; an answer would have nowhere to go but a loop.
    if envelope_sender is not None and not envelope_sender.strip().strip("<>").strip():
        return "null-sender"
    if is_delivery_report(mail):
        return "delivery-status-notification"
    # Mail from a mailing list (RFC 2369 List-* / RFC 2919 List-Id) is not answered: the answer
    # would go to every member, or to a list robot.
    if mail.header("list-id") or mail.header("list-unsubscribe"):
        return "list"
    return None


def is_delivery_report(mail: ParsedMail) -> bool:
    """A delivery status notification (RFC 3464: ``multipart/report;
    report-type=delivery-status``), a read receipt (RFC 8098, ``disposition-notification``),
    or a bounce from a server that does not use either (From MAILER-DAEMON, Exim's
    ``X-Failed-Recipients``)."""
    if mail.content_type == "multipart/report":
        return True  # delivery-status, disposition-notification or another report: all automatic
    report = _REPORT_TYPE.search(mail.header("content-type"))
    if report and report.group(1).lower() in ("delivery-status", "disposition-notification"):
        return True
    if mail.header("x-failed-recipients"):
        return True
    local_part = (mail.from_address or "").split("@")[0]
    return local_part in _DAEMONS


def is_out_of_office(mail: ParsedMail) -> bool:
    """An absence notice ("Automatisch antwoord: ...", "Out of Office: ...")."""
    # RFC 3834 §5.2: "auto-replied" is what a responder such as a vacation notice sets.
    if mail.auto_submitted.startswith("auto-replied"):
        return True
    # Headers set by responders that predate RFC 3834 or ignore it.
    for name in ("x-autoreply", "x-autorespond", "x-auto-response"):
        present = bool(mail.header_all(name))
        if present and mail.header(name).strip().lower() not in _NO:
            return True
    if mail.header("precedence").strip().lower() == "auto_reply":
        return True
    # Exchange marks mail its inbox rules (the out-of-office assistant) generated.
    if mail.header_all("x-ms-exchange-inbox-rules-loop"):
        return True
    if mail.header("x-ms-exchange-generated-message-source").lower().startswith("mailbox rules"):
        return True
    return bool(_OUT_OF_OFFICE_SUBJECT.match(mail.subject))
