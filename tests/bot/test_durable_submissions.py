"""A signal form is stored — sealed, in the commit that dedupes Slack's retry — before the modal
closes (issue 10, item 10): a service killed between the acknowledgement and the processing
places the signal after its restart, once, and answers by DM; the stored bytes hold no youth's
identity in clear; field errors still come back on the modal within Slack's deadline; storing
past the deadline keeps the modal open rather than promising what was not stored."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, func, select

from bot.context import Bot, build_bot
from bot.dedupe import Done, SlackRequest, store_all
from bot.identity import Linked
from bot.signal_form import signal_modal, submitted_pairs
from bot.signal_placement import FORM_KIND
from bot.signals import BUSY
from bot.stored_submissions import FormVault, StoredForm
from bot.submission_processing import ANSWER_KIND, process_stored
from bot.submission_recovery import recover
from core import audit
from core.actors import find_professional
from core.config import CoreConfig
from core.db import run_in_transaction
from core.identity import IdentityKeys
from core.inbound_claims import MAX_ATTEMPTS, InboundQueue, claim_next
from core.key_rotation import rotate_keys
from core.keyring import KeyRing
from core.models import InboundMessage, InboundStatus, OutboxMessage, Signal
from core.sealing import FORMAT
from tests.bot.conftest import (
    ANNA,
    JOOST,
    RunningSlack,
    SlackSender,
    slack_serve_environment,
    slack_settings,
    user,
)
from tests.bot.fake_slack_api import FakeSlackApi
from tests.bot.forms import form_values, open_signal_form, signal_fields, submit_view
from tests.bot.privacy import identity_needles
from tests.bsns import valid_bsns
from tests.conftest import TEST_KEYRING
from tests.mail_gateway.conftest import free_port, wait_for_port, wait_until

TODAY = date.today()
BIRTH = date(TODAY.year - 10, 5, 1)
BSN = valid_bsns(1, start_prefix=16_180_339)[0]
NAME = "Fenna Testkind"  # as signal_fields fills it in
NEEDLES = identity_needles([BSN], [BIRTH], [NAME])
LEASE_SECONDS = "2"  # a killed process's form is taken up this soon


def _signals(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(Signal)).one())


def _stored(engine: Engine) -> list[InboundMessage]:
    with Session(engine) as session:
        rows = session.exec(select(InboundMessage).order_by(InboundMessage.id)).all()  # type: ignore[arg-type]
        return list(rows)


def assert_sealed(raw: bytes) -> None:
    """The stored form is sealed: no BSN, name or birth date of the youth in its bytes, and it
    opens (with the region's key) to the form as submitted."""
    assert raw[:1] == FORMAT
    for needle in NEEDLES:
        assert needle.encode() not in raw, f"the stored form holds {needle!r} in clear"
    assert ("BSN", BSN) in FormVault(TEST_KEYRING).open(raw).pairs


def _dm_texts(api: FakeSlackApi, user_id: str) -> list[str]:
    return [
        json.dumps(call.args, ensure_ascii=False)
        for call in api.calls_to("chat.postMessage", succeeded=True)
        if call.args.get("channel") == user_id
    ]


# --- the service killed between the acknowledgement and the processing ----------------------


def _serve(tmp_path: Path, env: dict[str, str], module: str, name: str) -> subprocess.Popen[bytes]:
    with (tmp_path / f"{name}.log").open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", module, "serve", "--only", "slack"],
            env=env,
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


@contextmanager
def _running(process: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)


def test_a_service_killed_after_the_acknowledgement_places_the_signal_after_restart_once(
    tmp_path: Path, database_url: str, empty_engine: Engine, slack_api: FakeSlackApi
) -> None:
    port = free_port()
    marker = tmp_path / "held-form"
    env = slack_serve_environment(
        tmp_path,
        database_url,
        slack_api,
        port,
        VERWIJSINDEX_PROCESSING_LEASE_SECONDS=LEASE_SECONDS,
        HELD_FORM_MARKER=str(marker),
    )
    sender = SlackSender(f"http://127.0.0.1:{port}/slack/events", slack_api)
    # The first service stores and acknowledges, then holds the processing: killed there.
    with _running(_serve(tmp_path, env, "tests.bot.held_serve", "held")) as held:
        wait_for_port(port, timeout=60)
        view = open_signal_form(sender, slack_api, ANNA)
        payload = sender.view_submission(view, form_values(view, signal_fields(BSN, BIRTH)), ANNA)
        assert sender.interact(payload).body == ""  # the modal closed: Slack heard "ok"
        wait_until(marker.exists, timeout=10, what="the form to be held after the ack")
        held.send_signal(signal.SIGKILL)
        held.wait(30)
    [row] = _stored(empty_engine)
    assert (row.transport, row.status, row.id) == ("slack", "received", int(marker.read_text()))
    assert_sealed(row.raw)
    assert _signals(empty_engine) == 0
    assert slack_api.calls_to("response_url") == []  # nothing was answered yet

    with _running(_serve(tmp_path, env, "cli", "restarted")) as restarted:
        wait_until(
            lambda: any("is geplaatst" in t for t in _dm_texts(slack_api, user(ANNA))),
            timeout=30,
            what="the confirmation by DM after the restart",
        )
        # A retry of the same submission now finds it stored: nothing twice.
        assert sender.interact(payload, headers={"X-Slack-Retry-Num": "1"}).body == ""
        time.sleep(float(LEASE_SECONDS) + 1.5)  # a lease and a poll: any second attempt
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(30) == 0
    assert _signals(empty_engine) == 1
    [row] = _stored(empty_engine)
    assert row.status == InboundStatus.PROCESSED and row.raw == b""
    [confirmation] = [t for t in _dm_texts(slack_api, user(ANNA)) if "is geplaatst" in t]
    assert "Signaal *S-1* is geplaatst (uw kenmerk DOSSIER-77)" in confirmation
    assert slack_api.calls_to("response_url") == []  # the modal's channel is not answered
    for needle in NEEDLES:
        assert needle not in confirmation


# --- the recovery worker, in the process ------------------------------------------------------


def _linked(engine: Engine, email: str) -> Linked:
    with Session(engine) as session:
        professional = find_professional(session, email)
        assert professional is not None and professional.id is not None
        return Linked(
            user(email),
            professional.id,
            professional.email,
            professional.name,
            professional.institution_id,
        )


def store_as_the_listener_did(
    engine: Engine, config: CoreConfig, email: str, view_id: str, **changes: str
) -> tuple[int, dict[str, Any]]:
    """A form stored by the listener of a process that died before processing it (its hold has
    run out): the row's id, and the view as submitted (for a retry by Slack)."""
    view = signal_modal(config, {}, notes=[], metadata={})
    view = {
        **view,
        "id": view_id,
        "state": {"values": form_values(view, signal_fields(BSN, BIRTH, **changes))},
    }
    form = StoredForm(FORM_KIND, _linked(engine, email), tuple(submitted_pairs(view)))
    request = SlackRequest("view", view_id, user(email))
    sealed = FormVault(config.keys.ring).seal(form)
    [stored] = run_in_transaction(engine, store_all([(request, sealed)], timedelta(0)))
    assert isinstance(stored, Done)
    return stored.value, view


def test_forms_left_waiting_are_processed_once_by_the_recovery_worker_and_answered_by_dm(
    make_slack: Callable[..., RunningSlack],
    slack_api: FakeSlackApi,
    synced_engine: Engine,
    config: CoreConfig,
) -> None:
    _, anna_view = store_as_the_listener_did(synced_engine, config, ANNA, "VLEFT0001")
    store_as_the_listener_did(synced_engine, config, JOOST, "VLEFT0002", kenmerk="CAT-1")
    for row in _stored(synced_engine):
        assert row.status == InboundStatus.RECEIVED
        assert_sealed(row.raw)
    running = make_slack(with_delivery=True, processing_lease_seconds=2)
    wait_until(
        lambda: _dm_texts(slack_api, user(ANNA)) and _dm_texts(slack_api, user(JOOST)),
        what="both answers by DM",
    )
    [placed] = _dm_texts(slack_api, user(ANNA))
    assert "Signaal *S-1* is geplaatst (uw kenmerk DOSSIER-77)" in placed
    [refused] = _dm_texts(slack_api, user(JOOST))
    assert (
        "Het signaal is niet geplaatst. Dat mag niet: leden van team 'CAT' mogen geen signalen "
        "afgeven." in refused
    )
    assert _signals(synced_engine) == 1
    rows = _stored(synced_engine)
    assert [(r.status, r.raw) for r in rows] == [(InboundStatus.PROCESSED, b"")] * 2
    assert rows[1].error == "not-allowed"
    # Slack retries Anna's submission only now: it was stored, so nothing happens twice.
    sender = SlackSender(running.url, slack_api)
    payload = sender.view_submission(
        anna_view, anna_view["state"]["values"], ANNA, view_id="VLEFT0001"
    )
    assert sender.interact(payload, headers={"X-Slack-Retry-Num": "1"}).body == ""
    time.sleep(1.5)  # a poll of the recovery worker
    assert _signals(synced_engine) == 1
    assert len(slack_api.calls_to("chat.postMessage")) == 2
    assert slack_api.calls_to("response_url") == []


def _bot(
    tmp_path: Path, database_url: str, engine: Engine, config: CoreConfig, api_url: str
) -> Bot:
    return build_bot(slack_settings(tmp_path, database_url, api_url), engine, config)


def test_two_processes_taking_up_one_form_place_it_once(
    tmp_path: Path,
    database_url: str,
    synced_engine: Engine,
    config: CoreConfig,
    slack_api: FakeSlackApi,
) -> None:
    inbound_id, _ = store_as_the_listener_did(synced_engine, config, ANNA, "VTWICE001")
    bots = [_bot(tmp_path, database_url, synced_engine, config, slack_api.url) for _ in range(2)]
    vault = FormVault(config.keys.ring)
    together = threading.Barrier(2)
    answers: list[Any] = []

    def take_up(bot: Bot) -> None:
        together.wait()
        answers.append(process_stored(bot, vault, inbound_id, later=True))

    threads = [threading.Thread(target=take_up, args=(bot,)) for bot in bots]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(answer is None for answer in answers) == [False, True]
    assert _signals(synced_engine) == 1
    with Session(synced_engine) as session:
        dms = session.exec(select(OutboxMessage).where(OutboxMessage.kind == ANSWER_KIND)).all()
    assert [(dm.recipient, dm.channel) for dm in dms] == [(user(ANNA), "slack")]
    assert "is geplaatst" in dms[0].context["text"]


def test_a_form_that_keeps_failing_is_given_up_with_an_apology(
    tmp_path: Path,
    database_url: str,
    synced_engine: Engine,
    config: CoreConfig,
    slack_api: FakeSlackApi,
) -> None:
    """Sealed under a key the region does not have: it never opens. After the last attempt it
    fails (kept, sealed, for an administrator) and the sender is told."""
    form = StoredForm(FORM_KIND, _linked(synced_engine, ANNA), (("BSN", BSN),))
    foreign = FormVault(KeyRing.of(b"another region's key, long enough 0123456789"))
    request = SlackRequest("view", "VBROKEN01", user(ANNA))
    store = store_all([(request, foreign.seal(form))], timedelta(0))
    [stored] = run_in_transaction(synced_engine, store)
    assert isinstance(stored, Done)
    with Session(synced_engine) as session:
        row = session.get(InboundMessage, stored.value)
        assert row is not None
        row.attempts = MAX_ATTEMPTS - 1
        session.add(row)
        session.commit()
    bot = _bot(tmp_path, database_url, synced_engine, config, slack_api.url)
    assert claim_next(synced_engine, queue=InboundQueue.MAIL) == []  # not the mail's to take
    [claimed] = claim_next(synced_engine, queue=InboundQueue.SLACK)
    recover(bot, FormVault(config.keys.ring), claimed, timedelta(seconds=2))
    [row] = _stored(synced_engine)
    assert row.status == InboundStatus.FAILED and row.raw != b""
    with Session(synced_engine) as session:
        [dm] = session.exec(select(OutboxMessage).where(OutboxMessage.kind == ANSWER_KIND)).all()
    assert dm.recipient == user(ANNA)
    assert dm.context["text"].startswith("Uw formulier is niet verwerkt. Er ging iets mis")


# --- the answer to Slack ------------------------------------------------------------------------


def test_a_field_error_is_answered_on_the_modal_and_nothing_is_stored(
    sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    view = open_signal_form(sender, slack_api, ANNA)
    payload = sender.view_submission(
        view, form_values(view, signal_fields("123456789", BIRTH)), ANNA
    )
    answer = sender.interact(payload)
    assert answer.json() == {
        "response_action": "errors",
        "errors": {"bsn": "is geen geldig BSN (elfproef klopt niet)"},
    }
    assert answer.seconds < 2
    assert _stored(synced_engine) == []


@contextmanager
def _inbound_table_locked(engine: Engine) -> Iterator[Connection]:
    """No form can be stored meanwhile (SQLite: the write lock; PostgreSQL: the table's)."""
    with engine.connect() as blocker, blocker.begin():
        if engine.dialect.name == "postgresql":
            table = InboundMessage.__table__.name  # type: ignore[attr-defined]
            blocker.execute(text(f'LOCK TABLE "{table}" IN SHARE MODE'))
        else:  # the engine begins every SQLite transaction IMMEDIATE: the lock is held now
            blocker.exec_driver_sql("SELECT 1")
        yield blocker


def test_storing_past_slacks_deadline_keeps_the_modal_open_and_places_once(
    sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    view = open_signal_form(sender, slack_api, ANNA)
    payload = sender.view_submission(view, form_values(view, signal_fields(BSN, BIRTH)), ANNA)
    with _inbound_table_locked(synced_engine):
        answer = sender.interact(payload)
    # Answered within Slack's 3 seconds, and nothing promised that was not stored.
    assert answer.json() == {"response_action": "errors", "errors": BUSY}
    assert answer.seconds < 3
    # Stored once the database was free, and placed and answered after all.
    [placed] = slack_api.wait_for("response_url")
    assert "is geplaatst" in str(placed.args["text"])
    # The user presses the button again: the modal closes, nothing is placed twice.
    assert sender.interact(payload).body == ""
    time.sleep(0.3)
    assert _signals(synced_engine) == 1
    assert len(slack_api.calls_to("response_url")) == 1


def test_a_retried_submission_is_stored_once_and_placed_once(
    sender: SlackSender, slack_api: FakeSlackApi, synced_engine: Engine
) -> None:
    view = open_signal_form(sender, slack_api, ANNA)
    payload = sender.view_submission(view, form_values(view, signal_fields(BSN, BIRTH)), ANNA)
    assert submit_view(sender, slack_api, payload).body == ""
    headers = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    assert sender.interact(payload, headers=headers).body == ""
    time.sleep(0.3)
    assert _signals(synced_engine) == 1
    assert len(slack_api.calls_to("response_url")) == 1
    [row] = _stored(synced_engine)
    # Processed by the listener itself (the first attempt), its sealed form emptied.
    assert (row.status, row.raw, row.attempts) == (InboundStatus.PROCESSED, b"", 1)


def test_keys_rotate_reseals_a_waiting_form_with_the_mail(
    synced_engine: Engine, config: CoreConfig
) -> None:
    """A form waiting to be processed is sealed like stored mail: ``verwijsindex keys rotate``
    moves it to the new key, and it opens with that key alone."""
    inbound_id, _ = store_as_the_listener_did(synced_engine, config, ANNA, "VROTATE01")
    new_key = b"the region's next key, long enough 0123456789"
    rotated = CoreConfig(
        covenant=config.covenant,
        keys=IdentityKeys(KeyRing.of(new_key, [config.keys.ring.current.secret])),
    )
    report, _ = rotate_keys(synced_engine, rotated, actor=audit.SYSTEM)
    assert report.kept_mail == 1
    with Session(synced_engine) as session:
        row = session.get(InboundMessage, inbound_id)
    assert row is not None and row.status == InboundStatus.RECEIVED
    assert ("BSN", BSN) in FormVault(KeyRing.of(new_key)).open(row.raw).pairs
