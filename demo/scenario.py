"""``verwijsindex demo`` (CONTRACT §1): the whole story through the real transports.

On a temporary database and free loopback ports it starts what ``serve`` starts — the SMTP
listener, the processing and delivery workers (outgoing mail to a maildir in the temporary
directory) and the Slack endpoint with its delivery worker, the Web API pointed at a local
stand-in — and then plays:

1. GGD Groningen registers a child by SMTP; 2. WIJ Groningen registers the same child, so GGD
hears of the new involvement; 3. a GGD nurse signals through ``/signaal`` (a signed request to
the Bolt endpoint); 4. a WIJ professional signals too: a match, and the coordination goes to
WIJ by the covenant's rule; 5. WIJ accepts by e-mail reply (``AKKOORD``, quoted as Gmail
quotes in Dutch), and the matched professional confirms contact with the Slack button;
6. the nurse reports an absence with a stand-in, and the police's signal that follows reaches
the stand-in too.

Each step prints what happened and every notification it caused, with kind, channel and
recipient; the end shows a summary of all of them. Nothing of a youth's identity is printed.
"""

from __future__ import annotations

import asyncio
import mailbox
import secrets
import smtplib
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.cli.runtime import sync_covenant_if_changed, upgrade_schema
from core.clock import utcnow
from core.config import CoreConfig, build_config
from core.covenant import bundled_covenant_path
from core.db import service_engine
from core.models import (
    Absence,
    Coordination,
    InboundMessage,
    InboundStatus,
    Match,
    OutboxMessage,
    OutboxStatus,
    Signal,
)
from core.settings import Settings
from demo.slack_requests import SignedSlackRequests
from demo.slack_stand_in import Call, FakeSlackApi

T = TypeVar("T")

MAIL_DOMAIN = "verwijsindex.localhost"
BSN = "111222333"  # a test number (it passes the elfproef); never printed
BIRTH_DATE = "01-05-2016"
STEP_TIMEOUT = 30.0

GGD_MAILBOX = "verwijsindex@ggd-groningen.example"
WIJ_MAILBOX = "verwijsindex@wij-groningen.example"
NURSE = "a.devries@ggd-groningen.example"
COLLEAGUE = "p.bakker@ggd-groningen.example"
WIJ_PROFESSIONAL = "s.jansen@wij-groningen.example"
POLICE_OFFICER = "i.wiersma@politie-nn.example"
SLACK_USERS = {
    NURSE: ("UDEVRIES1", "Anna de Vries"),
    COLLEAGUE: ("UBAKKER01", "Pieter Bakker"),
    WIJ_PROFESSIONAL: ("UJANSEN01", "Sanne Jansen"),
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(check: Callable[[], T | None], what: str, timeout: float = STEP_TIMEOUT) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise TimeoutError(f"demo: {what} did not happen within {timeout:.0f} s")


@dataclass
class Service:
    """What ``serve`` runs, in a background thread with its own event loop."""

    settings: Settings
    engine: Engine
    config: CoreConfig
    _stop: asyncio.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _errors: list[BaseException] = field(default_factory=list)

    def start(self) -> None:
        started = threading.Event()

        async def main() -> None:
            from bot.service import run_slack
            from mail_gateway.context import build_gateway
            from mail_gateway.service import run_roles

            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            gateway = build_gateway(self.settings, self.engine, self.config)
            roles = ["smtp", "processing", "delivery"]
            tasks = [
                asyncio.create_task(run_roles(gateway, roles, self._stop)),
                asyncio.create_task(run_slack(self.settings, self.engine, self.config, self._stop)),
            ]
            started.set()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            self._errors += [r for r in results if isinstance(r, BaseException)]

        def run() -> None:
            try:
                asyncio.run(main())
            except BaseException as error:
                self._errors.append(error)
                started.set()

        self._thread = threading.Thread(target=run, name="demo-service", daemon=True)
        self._thread.start()
        started.wait(STEP_TIMEOUT)
        for port in (self.settings.smtp_port, self.settings.slack_port):
            wait_until(partial(_listening, port), f"a listener on port {port}")

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(STEP_TIMEOUT)
        if self._errors:
            raise RuntimeError("demo: the service failed") from self._errors[0]


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


class Demo:
    def __init__(self, workdir: Path, console: Console) -> None:
        self.console = console
        self.maildir = workdir / "verzonden"
        self.slack_api = FakeSlackApi().start()
        for email, (user_id, name) in SLACK_USERS.items():
            self.slack_api.add_user(user_id, email, name=name)
        signing_secret = secrets.token_hex(16)
        self.settings = Settings(
            _env_file=None,
            database_url=f"sqlite:///{workdir / 'demo.db'}",
            covenant=bundled_covenant_path(),
            secret_key=secrets.token_urlsafe(32),
            mail_domain=MAIL_DOMAIN,
            smtp_host="127.0.0.1",
            smtp_port=free_port(),
            relay_url=f"maildir:{self.maildir}",
            slack_host="127.0.0.1",
            slack_port=free_port(),
            slack_api_url=self.slack_api.url,
            slack_signing_secret=signing_secret,
            slack_bot_token="xoxb-demo-" + secrets.token_hex(8),
            secret_file=workdir / ".verwijsindex-secret",
        )
        upgrade_schema(self.settings)
        self.config = build_config(self.settings)
        self.engine = service_engine(self.settings)
        sync_covenant_if_changed(self.engine, self.config)
        self.service = Service(self.settings, self.engine, self.config)
        self.slack = SignedSlackRequests(
            f"http://127.0.0.1:{self.settings.slack_port}/slack/events",
            signing_secret,
            self.slack_api.response_url(""),
        )
        self.shown_outbox = 0
        self.shown_slack_calls = 0

    # -- reading what happened -------------------------------------------------------------------

    def _rows(self, model: type[T], *where: Any) -> list[T]:
        with Session(self.engine) as session:
            return list(session.exec(select(model).where(*where)).all())

    def settled(self) -> bool:
        """Nothing left to process or to deliver."""
        waiting_mail = self._rows(InboundMessage, InboundMessage.status == InboundStatus.RECEIVED)
        waiting_notifications = self._rows(
            OutboxMessage,
            col(OutboxMessage.status).in_([OutboxStatus.PENDING, OutboxStatus.SENDING]),
        )
        return not waiting_mail and not waiting_notifications

    def show_new_notifications(self) -> None:
        wait_until(self.settled, "processing and delivery")
        rows = self._rows(OutboxMessage, col(OutboxMessage.id) > self.shown_outbox)
        for row in sorted(rows, key=lambda r: r.id or 0):
            self.console.print(
                f"   [cyan]{row.kind:<26}[/] {row.channel:<6} → {self._recipient(row)}"
                f"  [dim]({row.reference}, {row.status})[/]"
            )
            self.shown_outbox = max(self.shown_outbox, row.id or 0)
        if not rows:
            self.console.print("   [dim](geen meldingen)[/]")

    def _recipient(self, row: OutboxMessage) -> str:
        if row.channel == "slack":
            names = {user_id: email for email, (user_id, _) in SLACK_USERS.items()}
            return f"Slack DM {names.get(row.recipient, row.recipient)}"
        return row.recipient

    def slack_calls(self, method: str) -> list[Call]:
        return self.slack_api.calls_to(method, succeeded=True)

    def mails(self, kind: str, to: str) -> list[Any]:
        if not self.maildir.exists():
            return []
        # Read as a mail client does: headers unfolded and decoded (RFC 2047), not raw.
        folder = mailbox.Maildir(self.maildir, create=False)
        read = [message_from_bytes(stored.as_bytes(), policy=policy.default) for stored in folder]
        return [
            message
            for message in read
            if message["X-Verwijsindex-Type"] == kind and to in (message["To"] or "")
        ]

    def step(self, number: int, title: str) -> None:
        self.console.print(f"\n[bold]{number}. {title}[/]")

    def say(self, text: str) -> None:
        self.console.print(f"   {text}")

    # -- the professionals' side ---------------------------------------------------------------

    def send_mail(self, message: EmailMessage) -> None:
        with smtplib.SMTP("127.0.0.1", self.settings.smtp_port, timeout=10) as smtp:
            smtp.send_message(message)

    def register_by_mail(self, sender: str, reference: str) -> None:
        message = EmailMessage()
        message["From"] = sender
        message["To"] = f"registratie@{MAIL_DOMAIN}"
        message["Subject"] = "Aanmelding verwijsindex"
        message["Message-ID"] = make_msgid(domain=sender.split("@")[1])
        message.set_content(
            f"BSN: {BSN}\nGeboortedatum: {BIRTH_DATE}\nGemeente: Groningen\nKenmerk: {reference}\n"
        )
        self.send_mail(message)

    def signal_in_slack(self, email: str, reference: str) -> Signal:
        user_id = SLACK_USERS[email][0]
        opened = len(self.slack_calls("views.open"))
        # Only fields that identify no one go after the command; the youth's BSN and birth date
        # are typed into the form itself (the only Slack path that takes them).
        text = f"gemeente=Groningen code=laag geinformeerd=ja folder=ja kenmerk={reference}"
        answer = self.slack.command(user_id, "/signaal", text)
        self.say(f"/signaal → HTTP {answer.status}; het formulier opent (views.open)")
        wait_until(lambda: len(self.slack_calls("views.open")) > opened, "the /signaal form")
        view = self.slack_calls("views.open")[-1].args["view"]
        before = {s.id for s in self._rows(Signal)}
        typed = {"bsn": BSN, "geboortedatum": BIRTH_DATE}
        answer = self.slack.submit_as_filled_in(user_id, view, typed=typed)
        errors = answer.json().get("errors")
        if answer.status != 200 or errors:
            raise RuntimeError(f"demo: the signal form was refused: {answer.status} {errors}")
        signal = wait_until(
            lambda: next((s for s in self._rows(Signal) if s.id not in before), None),
            "the signal",
        )
        self.say(f"formulier verstuurd → HTTP {answer.status}; signaal {signal.number} staat")
        return signal

    def direct_messages_to(self, email: str) -> list[dict[str, Any]]:
        user_id = SLACK_USERS[email][0]
        return [
            {**call.args, **call.response}
            for call in self.slack_calls("chat.postMessage")
            if call.args.get("channel") in (user_id, f"D{user_id}")
        ]

    # -- the story ---------------------------------------------------------------------------------

    def run(self) -> None:
        self.service.start()
        try:
            self._story()
        finally:
            self.service.stop()
            self.slack_api.stop()
            self.engine.dispose()
        self._summary()

    def _story(self) -> None:
        self.step(1, "GGD Groningen meldt een kind aan (e-mail naar registratie@, via SMTP)")
        self.register_by_mail(GGD_MAILBOX, "GGD-2026-0042")
        self.show_new_notifications()

        self.step(
            2, "WIJ Groningen meldt hetzelfde kind aan: GGD hoort van de nieuwe betrokkenheid"
        )
        self.register_by_mail(WIJ_MAILBOX, "WIJ-88121")
        self.show_new_notifications()
        receipt = wait_until(lambda: self.mails("ontvangstbevestiging", WIJ_MAILBOX), "receipt")
        names_ggd = "GGD Groningen" in _text_of(receipt[-1])
        self.say(f"ontvangstbevestiging aan WIJ noemt GGD Groningen als betrokkene: {names_ggd}")

        self.step(3, f"{NURSE} (GGD, JGZ) signaleert via Slack: /signaal")
        self.signal_in_slack(NURSE, "JGZ-3110")
        self.show_new_notifications()

        self.step(4, f"{WIJ_PROFESSIONAL} (WIJ) signaleert ook: een match")
        self.signal_in_slack(WIJ_PROFESSIONAL, "WIJ-88121")
        self.show_new_notifications()
        match = wait_until(lambda: self._rows(Match), "the match")[0]
        coordination = wait_until(lambda: self._rows(Coordination), "the coordination")[0]
        self.say(
            f"match M-{match.id}; procescoördinatie C-{coordination.id} voor "
            f"{coordination.institution_id} volgens regel '{coordination.rule_name}'"
        )

        self.step(5, "WIJ Groningen neemt de coördinatie aan door te antwoorden: AKKOORD")
        assignment = wait_until(
            lambda: self.mails("coordinatie-toegewezen", WIJ_MAILBOX), "the assignment mail"
        )[-1]
        self.send_mail(_akkoord_reply(assignment))
        self.say(f"antwoord naar {assignment['Reply-To']}")
        wait_until(
            lambda: self._rows(Coordination, Coordination.status == "accepted"),
            "the acceptance",
        )
        self.show_new_notifications()
        match_dm = wait_until(lambda: self.direct_messages_to(WIJ_PROFESSIONAL), "the match DM")
        pressed = self.slack.press_button(
            SLACK_USERS[WIJ_PROFESSIONAL][0], match_dm[0], "antwoord_contact"
        )
        if pressed is not None:
            updated = wait_until(lambda: self.slack_calls("chat.update"), "the updated message")
            self.say(
                f"{WIJ_PROFESSIONAL} drukt op 'Contact gelegd' → HTTP {pressed.status}; "
                f"het bericht wordt bijgewerkt ({len(updated)}× chat.update)"
            )
        self.show_new_notifications()

        self.step(6, f"{NURSE} is twee weken afwezig; {COLLEAGUE} vervangt haar")
        today = self.config.today()
        until = today + timedelta(days=14)
        stand_in = f"<@{SLACK_USERS[COLLEAGUE][0]}|p.bakker>"  # a mention, as Slack escapes it
        answer = self.slack.command(
            SLACK_USERS[NURSE][0],
            "/verwijsindex",
            f"afwezig {today:%d-%m-%Y} {until:%d-%m-%Y} {stand_in}",
        )
        wait_until(lambda: self._rows(Absence), "the absence")
        self.say(f"/verwijsindex afwezig → HTTP {answer.status}; vervanging geregeld")
        self.show_new_notifications()
        self.say(f"{POLICE_OFFICER} (politie) signaleert per e-mail naar signaal@")
        self.send_mail(_signal_mail(POLICE_OFFICER))
        self.show_new_notifications()
        to_stand_in = self.direct_messages_to(COLLEAGUE)
        self.say(f"Slack-berichten aan de vervanger {COLLEAGUE}: {len(to_stand_in)}")

    def _summary(self) -> None:
        rows = self._rows(OutboxMessage)
        table = Table(title="Alle meldingen van deze demo")
        for column in ("#", "soort", "kanaal", "aan", "over", "status"):
            table.add_column(column)
        for row in sorted(rows, key=lambda r: r.id or 0):
            table.add_row(
                str(row.id), row.kind, row.channel, self._recipient(row), row.reference, row.status
            )
        self.console.print()
        self.console.print(table)
        sent = sum(1 for row in rows if row.status == OutboxStatus.SENT)
        self.console.print(
            f"{len(rows)} meldingen, {sent} verstuurd; e-mail in {self.maildir}, "
            f"{len(self.slack_calls('chat.postMessage'))} Slack-berichten."
        )


def _text_of(message: Any) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True) or b""
            return payload.decode(part.get_content_charset() or "utf-8", "replace")
    return ""


def _akkoord_reply(assignment: Any) -> EmailMessage:
    reply = EmailMessage()
    reply["From"] = WIJ_MAILBOX
    reply["To"] = assignment["Reply-To"]
    reply["Subject"] = "Re: " + (assignment["Subject"] or "")
    reply["Message-ID"] = make_msgid(domain="wij-groningen.example")
    reply["In-Reply-To"] = assignment["Message-ID"]
    reply["References"] = assignment["Message-ID"]
    quoted = "\n".join("> " + line for line in _text_of(assignment).splitlines())
    reply.set_content(
        "AKKOORD\n\nMet vriendelijke groet,\nWIJ Groningen\n\n"
        f"Op ma 23 nov 2026 om 10:15 schreef Verwijsindex <{assignment['From']}>:\n{quoted}\n"
    )
    return reply


def _signal_mail(sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = f"signaal@{MAIL_DOMAIN}"
    message["Subject"] = "Signaal"
    message["Message-ID"] = make_msgid(domain=sender.split("@")[1])
    message.set_content(
        f"BSN: {BSN}\nGeboortedatum: {BIRTH_DATE}\nGemeente: Groningen\nCode: laag\n"
        "Geïnformeerd: ja\nKenmerk: PNN-2026-555\n"
    )
    return message


@contextmanager
def _workdir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="verwijsindex-demo-") as path:
        yield Path(path)


def run_demo(console: Console | None = None, workdir: Path | None = None) -> None:
    # Wide enough for a notification per line, also when the output is not a terminal.
    console = console or Console(width=max(Console().width, 120))
    started = utcnow()
    with _workdir(workdir) as path:
        console.print(f"[bold]verwijsindex demo[/] — tijdelijke database en poorten in {path}")
        Demo(path, console).run()
    console.print(f"Klaar in {(utcnow() - started).total_seconds():.1f} s.")

