"""Batch registrations by CSV (CONTRACT §4): reading the file, per-row refusals, afmelden, the
chain notification, batching, derived coordination, idempotency and the logboek. (The rule
itself is one planner for a file and a single command alike: tests/core/test_registration_plan.py
tests it without a database.)"""

from __future__ import annotations

import io
import os
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text as sql
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from core import registration_apply
from core.audit import use_keyring, verify_chain
from core.bulk_import import ImportReport, ImportRow, import_registrations, read_registration_csv
from core.covenant.sync import sync_covenant
from core.db import create_db_engine, transaction
from core.errors import InvalidInput, NotAllowed
from core.fields import parse_parent_bsns
from core.models import (
    AuditEvent,
    Coordination,
    OutboxMessage,
    Registration,
    Youth,
    YouthParent,
    metadata,
)
from core.registration import RegisterYouth, register_youth
from core.signals import PlaceSignal, place_signal
from tests.conftest import TEST_KEYRING, _fresh_schema_engine, _require_postgres
from tests.core.conftest import BSN_A, BSN_B, BSN_C, BSN_PARENT, MONDAY, CoreDriver, youth

HEADER = "bsn;naam;geboortedatum;gemeente;kenmerk;hulpverlener;bsn_ouder;einddatum;actie"
BSN_D = "100000010"  # elfproef
BSN_E = "100000022"
BSN_BAD = "123456789"  # fails the elfproef


def _valid_bsns(count: int, start: int = 300_000_000) -> list[str]:
    found: list[str] = []
    number = start
    while len(found) < count:
        digits = f"{number:09d}"
        total = sum(int(d) * w for d, w in zip(digits[:8], range(9, 1, -1), strict=True))
        if (total - int(digits[8])) % 11 == 0:
            found.append(digits)
        number += 1
    return found


def _rows(text: str) -> list[ImportRow]:
    return list(read_registration_csv(io.StringIO(text)))


def _import(
    core: CoreDriver, institution: str, text: str, *, batch_size: int = 2000, now: Any = MONDAY
) -> ImportReport:
    return import_registrations(
        core.engine,
        core.config,
        institution,
        read_registration_csv(io.StringIO(text)),
        actor=core.institution(institution),
        batch_size=batch_size,
        now=now,
    )


def _register(core: CoreDriver, institution: str, bsn: str, reference: str) -> None:
    actor = core.institution(institution)
    core.run(
        lambda s: register_youth(
            RegisterYouth(youth(bsn), "Groningen", reference),
            session=s,
            config=core.config,
            actor=actor,
            now=MONDAY,
        )
    )


def _place(driver: CoreDriver, actor: Any, bsn: str) -> None:
    driver.run(
        lambda s: place_signal(
            PlaceSignal(youth(bsn), "Groningen", "laag", "ja"),
            session=s,
            config=driver.config,
            actor=actor,
            now=MONDAY,
        )
    )


def _registrations(engine: Engine) -> list[tuple[Any, ...]]:
    """Registrations with their youth's identity key (PostgreSQL burns youth ids on conflict)."""
    with Session(engine) as session:
        keys = dict(session.exec(select(Youth.id, Youth.identity_key)).all())
        return [
            (r.id, keys[r.youth_id], r.institution_id, r.reference, r.status, r.professional_id)
            for r in session.exec(select(Registration).order_by(Registration.id)).all()  # type: ignore[arg-type]
        ]


def _outbox_rows(engine: Engine, kind: str | None = None) -> list[tuple[Any, ...]]:
    with Session(engine) as session:
        rows = session.exec(select(OutboxMessage).order_by(OutboxMessage.id)).all()  # type: ignore[arg-type]
    return sorted(
        (
            r.idempotency_key,
            r.kind,
            r.channel,
            r.recipient,
            r.recipient_role,
            r.professional_id,
            r.institution_id,
            r.reference,
            repr(sorted(r.context.items())),
            r.reply_token,
            r.in_reply_to,
            r.status,
            r.attempts,
        )
        for r in rows
        if kind is None or r.kind == kind
    )


def _audit_actions(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return [e.action for e in session.exec(select(AuditEvent).order_by(AuditEvent.id)).all()]  # type: ignore[arg-type]


@pytest.fixture
def twin(tmp_path: Path, config: Any) -> Iterator[CoreDriver]:
    """A second database of the suite's kind with the same covenant, for side-by-side runs."""
    if os.environ.get("VERWIJSINDEX_TEST_DATABASE_URL", "").startswith("postgresql"):
        engines = _fresh_schema_engine(_require_postgres())
        engine = next(engines)
    else:
        engines = None
        engine = create_db_engine(f"sqlite:///{tmp_path / 'twin.db'}")
    use_keyring(engine, TEST_KEYRING)
    metadata.create_all(engine)
    with transaction(engine) as session:
        sync_covenant(session, config.covenant)
    yield CoreDriver(engine, config)
    if engines is not None:
        for _ in engines:  # runs the generator's clean-up
            pass
    else:
        engine.dispose()


# --- reading -------------------------------------------------------------------------------------


def test_semicolon_and_comma_delimiters_read_the_same(core: CoreDriver) -> None:
    semicolon = f"{HEADER}\n{BSN_A};Kind;01-05-2016;Groningen;K-1;;;;\n"
    comma = HEADER.replace(";", ",") + f"\n{BSN_A},Kind,01-05-2016,Groningen,K-1,,,,\n"
    assert _rows(semicolon) == _rows(comma)
    [row] = _rows(comma)
    assert row.line == 2
    assert row.fields["bsn"] == BSN_A and row.fields["kenmerk"] == "K-1"
    # A comma inside a quoted value does not split it.
    [quoted] = _rows(
        f'bsn,naam,geboortedatum,gemeente,kenmerk\n{BSN_A},"Vries, de",2016-05-01,Groningen,K-1\n'
    )
    assert quoted.fields["naam"] == "Vries, de"


def test_byte_order_mark_and_label_spelling_are_accepted(core: CoreDriver) -> None:
    text = (
        "\ufeffBSN;Naam;Geboortedatum;Gemeente;Kenmerk;Hulpverlener;BSN ouder;Einddatum;Actie\n"
        f"{BSN_A};Kind;01-05-2016;Groningen;K-1;;;;\n"
    )
    [row] = _rows(text)
    assert row.fields["bsn"] == BSN_A
    [quoted] = _rows(f'\ufeff"bsn";"geboortedatum"\n{BSN_A};01-05-2016\n')
    assert quoted.fields == {"bsn": BSN_A, "geboortedatum": "01-05-2016"}
    report = _import(core, "ggd-groningen", text)
    assert report.accepted == 1 and report.refused == []


def test_blank_lines_are_skipped_and_line_numbers_stay_physical(core: CoreDriver) -> None:
    text = (
        f"{HEADER}\n\n{BSN_A};;01-05-2016;Groningen;K-1;;;;\n;;;;;;;;\n   \n"
        f"{BSN_BAD};;01-05-2016;Groningen;K-2;;;;\n"
    )
    rows = _rows(text)
    assert [r.line for r in rows] == [3, 6]
    report = _import(core, "ggd-groningen", text)
    assert report.accepted == 1
    assert [(r.line, r.field) for r in report.refused] == [(6, "BSN")]


def test_unknown_column_refuses_the_file_naming_it() -> None:
    with pytest.raises(InvalidInput) as caught:
        _rows(f"{HEADER};Postcode\n{BSN_A};;01-05-2016;Groningen;K;;;;;9711AA\n")
    assert "Postcode" in caught.value.message
    assert caught.value.field == "kopregel"
    with pytest.raises(InvalidInput) as caught:  # a signal field is not a registration column
        _rows("bsn;geboortedatum;code\n")
    assert "code" in caught.value.message
    with pytest.raises(InvalidInput):
        _rows("")
    with pytest.raises(InvalidInput) as caught:
        _rows("bsn;kenmerk;Kenmerk\n")
    assert "kenmerk" in caught.value.message


def test_repeated_parent_column_and_too_many_values() -> None:
    rows = _rows(
        f"bsn;geboortedatum;bsn_ouder;BSN ouder\n{BSN_A};01-05-2016;{BSN_PARENT};{BSN_B}\n"
        f"{BSN_B};01-05-2016;;;{BSN_C}\n"
    )
    assert rows[0].fields["bsn_ouder"].split(",") == [BSN_PARENT, BSN_B]
    assert parse_parent_bsns(rows[0].fields) == (BSN_PARENT, BSN_B)
    assert rows[1].refusal is not None and rows[1].refusal.line == 3


# --- rows accepted and refused -------------------------------------------------------------------


def test_good_rows_are_stored_and_bad_rows_refused_with_line_field_and_reason(
    core: CoreDriver,
) -> None:
    text = (
        "\n".join(
            [
                HEADER,
                # 2: accepted
                f"{BSN_A};Kind A;01-05-2016;Groningen;K-1;a.devries@ggd-groningen.example;;;",
                f"{BSN_BAD};Kind;01-05-2016;Groningen;K-2;;;;",  # 3 bad BSN
                f"{BSN_B};Kind;01-05-2016;Atlantis;K-3;;;;",  # 4 unknown municipality
                f"{BSN_C};Kind;01-03-2003;Groningen;K-4;;;;",  # 5 23 years old on 2026-03-02
                f"{BSN_D};Kind;31-02-2016;Groningen;K-5;;;;",  # 6 no such date
                f"{BSN_D};Kind;gisteren;Groningen;K-5;;;;",  # 7 not a date
                f"{BSN_E};Kind;01-05-2016;Groningen;K-6;niemand@ggd-groningen.example;;;",  # 8
                f"{BSN_E};Kind;01-05-2016;Groningen;K-6;s.jansen@wij-groningen.example;;;",  # 9
                f"{BSN_E};Kind;01-05-2016;Groningen;;;;;",  # 10 missing kenmerk
                # 11: accepted
                f"{BSN_E};Kind;01-05-2016;westerkwartier;K-7;;{BSN_PARENT};01-01-2027;aanmelden",
                f"{BSN_D};Kind;01-05-2016;Groningen;K-8;;;;verwijderen",  # 12 unknown action
                f"{BSN_D};Kind;01-05-2016;Groningen;K-9;;12345;;",  # 13 bad parent BSN
            ]
        )
        + "\n"
    )
    report = _import(core, "ggd-groningen", text)
    assert report.accepted == 2
    assert report.new_involvements == 2
    refused = [(r.line, r.field) for r in report.refused]
    assert refused == [
        (3, "BSN"),
        (4, "Gemeente"),
        (5, "Geboortedatum"),
        (6, "Geboortedatum"),
        (7, "Geboortedatum"),
        (8, "Hulpverlener"),
        (9, "Hulpverlener"),
        (10, "Kenmerk"),
        (12, "Actie"),
        (13, "BSN ouder"),
    ]
    reasons = {r.line: r.reason for r in report.refused}
    assert "elfproef" in reasons[3]
    assert "Atlantis" in reasons[4] and "onbekende gemeente" in reasons[4]
    assert "23 jaar" in reasons[5]
    assert "geen bestaande datum" in reasons[6]
    assert "geen datum" in reasons[7]
    assert "niemand@ggd-groningen.example" in reasons[8]
    assert "ontbreekt" in reasons[10]
    stored = _registrations(core.engine)
    assert sorted(r[3] for r in stored) == ["K-1", "K-7"]
    with Session(core.engine) as session:
        kids = session.exec(select(Youth)).all()
        assert len(kids) == 2
        assert {k.municipality for k in kids} == {"Groningen", "Westerkwartier"}
        k1 = session.exec(select(Registration).where(Registration.reference == "K-1")).one()
        assert k1.professional_id is not None
        k7 = session.exec(select(Registration).where(Registration.reference == "K-7")).one()
        assert k7.ends_on == date(2027, 1, 1)
        [parent] = session.exec(select(YouthParent)).all()
        assert parent.parent_key == core.config.keys.bsn_digest(BSN_PARENT)
        assert verify_chain(session)[1] is None


def test_youth_without_bsn_in_csv_is_the_youth_registered_before(core: CoreDriver) -> None:
    from core.identity import YouthIdentity

    actor = core.institution("wij-groningen")
    core.run(
        lambda s: register_youth(
            RegisterYouth(
                YouthIdentity(birth_date=date(2015, 6, 7), surname="De Bruïn", sex="V"),
                "Groningen",
                "W-1",
            ),
            session=s,
            config=core.config,
            actor=actor,
            now=MONDAY,
        )
    )
    text = (
        "achternaam;geslacht;geboortedatum;gemeente;kenmerk\nde bruin;v;07-06-2015;Groningen;G-1\n"
    )
    report = _import(core, "ggd-groningen", text)
    assert report.accepted == 1 and report.refused == []
    assert report.notifications == 1
    with Session(core.engine) as session:
        assert len(session.exec(select(Youth)).all()) == 1


def test_afmelden_rows_end_registrations(core: CoreDriver) -> None:
    _import(
        core,
        "ggd-groningen",
        f"{HEADER}\n{BSN_A};;01-05-2016;Groningen;K-1;;;;\n{BSN_B};;01-05-2016;Groningen;K-2;;;;\n",
    )
    _register(core, "wij-groningen", BSN_C, "W-3")
    text = (
        f"bsn;geboortedatum;actie\n{BSN_A};01-05-2016;afmelden\n"
        f"{BSN_D};01-05-2016;afmelden\n"  # 3: not in the index
        f"{BSN_C};01-05-2016;Afmelden\n"
    )  # 4: only WIJ registered this one
    report = _import(core, "ggd-groningen", text, now=MONDAY + timedelta(hours=2))
    assert report.deregistered == 1 and report.accepted == 0
    assert [(r.line, r.field) for r in report.refused] == [(3, "BSN"), (4, "Actie")]
    statuses = {r[3]: r[4] for r in _registrations(core.engine)}
    assert statuses == {"K-1": "ended", "K-2": "active", "W-3": "active"}
    assert _audit_actions(core.engine).count("registration-ended") == 1


def test_import_for_another_institution_is_refused(core: CoreDriver) -> None:
    with pytest.raises(NotAllowed):
        import_registrations(
            core.engine, core.config, "wij-groningen", [], actor=core.institution("ggd-groningen")
        )


# --- the chain notification ----------------------------------------------------------------------


def test_import_tells_every_institution_involved_with_its_own_reference(
    core: CoreDriver,
) -> None:
    for bsn, ref in ((BSN_A, "GGD-A"), (BSN_B, "GGD-B"), (BSN_C, "GGD-C")):
        _register(core, "ggd-groningen", bsn, ref)
    _register(core, "jeugdhulp-noord", BSN_B, "JHN-B")
    # Jeugdhulp signals youth C without registering it: involved, but with no reference.
    _place(core, core.professional("e.meijer@jeugdhulp-noord.example"), BSN_C)
    text = (
        f"{HEADER}\n"
        f"{BSN_A};;01-05-2016;Groningen;WIJ-A;s.jansen@wij-groningen.example;;;\n"
        f"{BSN_B};;01-05-2016;Groningen;WIJ-B;;;;\n"
        f"{BSN_C};;01-05-2016;Groningen;WIJ-C;;;;\n"
        f"{BSN_D};;01-05-2016;Groningen;WIJ-D;;;;\n"
    )
    report = _import(core, "wij-groningen", text)
    assert report.accepted == 4 and report.new_involvements == 4
    # A: GGD; B: GGD and Jeugdhulp; C: GGD and Jeugdhulp (which signals it); D: nobody.
    assert report.notifications == 5
    with Session(core.engine) as session:
        rows = session.exec(
            select(OutboxMessage).where(OutboxMessage.kind == "nieuwe-betrokkenheid")
        ).all()
        numbers = {
            r.id: r.number
            for r in session.exec(
                select(Registration).where(Registration.institution_id == "wij-groningen")
            ).all()
        }
    ours = [r for r in rows if r.context["new_institution"]["id"] == "wij-groningen"]
    # Each row: the recipient's own reference, never the youth or the newcomer's reference.
    assert {(r.institution_id, r.context["own_reference"]) for r in ours} == {
        ("ggd-groningen", "GGD-A"),
        ("ggd-groningen", "GGD-B"),
        ("jeugdhulp-noord", "JHN-B"),
        ("ggd-groningen", "GGD-C"),
        ("jeugdhulp-noord", ""),
    }
    assert {r.reference for r in ours} <= set(numbers.values())
    told = Counter(r.reference for r in ours)  # one row per institution told
    for row in ours:
        assert row.recipient_role == "institution" and row.channel == "email"
        assert row.context["kind"] == "nieuwe-betrokkenheid"
        assert row.context["involved_count"] == told[row.reference] + 1
        assert "WIJ-" not in str(row.context) and BSN_A not in str(row.context)


def test_chain_notification_counts(core: CoreDriver) -> None:
    _register(core, "ggd-groningen", BSN_A, "GGD-A")
    _register(core, "ggd-groningen", BSN_B, "GGD-B")
    _register(core, "jeugdhulp-noord", BSN_B, "JHN-B")
    report = _import(
        core,
        "wij-groningen",
        f"{HEADER}\n{BSN_A};;01-05-2016;Groningen;W;;;;\n"
        f"{BSN_B};;01-05-2016;Groningen;W;;;;\n"
        f"{BSN_C};;01-05-2016;Groningen;W;;;;\n",
    )
    assert report.new_involvements == 3
    assert report.notifications == 3  # A → GGD; B → GGD, JHN; C: nobody else involved
    assert len(_outbox_rows(core.engine, "nieuwe-betrokkenheid")) == 4  # + Jeugdhulp's → GGD


def _mixed_file() -> str:
    bsns = _valid_bsns(9)
    lines = [HEADER]
    for i, bsn in enumerate(bsns):
        lines.append(f"{bsn};;01-05-2016;Groningen;K-{i};;{BSN_PARENT if i % 3 == 0 else ''};;")
    lines.insert(4, f"{BSN_BAD};;01-05-2016;Groningen;K-x;;;;")
    lines.append(f"{bsns[1]};;01-05-2016;Groningen;K-1b;;;;")  # a youth again: new reference
    lines.append(f"{bsns[2]};;01-05-2016;Groningen;;;;;afmelden")  # and one signed off
    lines.append(f"{bsns[2]};;01-05-2016;Groningen;K-2c;;;;")  # and back again
    lines.append(f"{bsns[4]};;01-05-2016;Groningen;;;;;afmelden")
    lines.append(f"{BSN_A};;01-05-2016;Groningen;K-A;;;;")
    lines.append(f"{BSN_B};;01-05-2016;Groningen;K-B;;;;")
    return "\n".join(lines) + "\n"


def test_batches_smaller_than_the_file_give_the_same_result(
    core: CoreDriver,
    twin: CoreDriver,
) -> None:
    for driver in (core, twin):
        _register(driver, "wij-groningen", BSN_A, "W-A")
        _register(driver, "jeugdhulp-noord", BSN_B, "J-B")
    text = _mixed_file()
    small = _import(core, "ggd-groningen", text, batch_size=3)
    large = _import(twin, "ggd-groningen", text)
    assert (small.accepted, small.deregistered, small.new_involvements, small.notifications) == (
        large.accepted,
        large.deregistered,
        large.new_involvements,
        large.notifications,
    )
    assert small.refused == large.refused
    assert [r.line for r in small.refused] == [5]
    assert small.new_involvements == 12  # 9 youths, one signed on again, A and B
    assert _registrations(core.engine) == _registrations(twin.engine)
    statuses = {r[3]: r[4] for r in _registrations(core.engine)}
    assert statuses["K-1b"] == "active" and "K-1" not in statuses
    assert statuses["K-2c"] == "active"
    assert statuses["K-4"] == "ended"
    assert len(_outbox_rows(core.engine)) == len(_outbox_rows(twin.engine)) == 2


def test_ids_given_out_before_are_never_given_out_again(core: CoreDriver) -> None:
    first = _import(core, "ggd-groningen", f"{HEADER}\n{BSN_A};;01-05-2016;Groningen;G-A;;;;\n")
    assert first.accepted == 1
    with Session(core.engine) as session:
        [(youth_id, registration_id)] = session.exec(
            select(Registration.youth_id, Registration.id)
        ).all()
    # Purged (as on the 23rd birthday): the numbers people quoted stay theirs.
    core.run(lambda s: s.execute(sql("DELETE FROM registration")))
    core.run(lambda s: s.execute(sql("DELETE FROM youthparent")))
    core.run(lambda s: s.execute(sql("DELETE FROM youth")))
    _import(core, "ggd-groningen", f"{HEADER}\n{BSN_B};;01-05-2016;Groningen;G-B;;;;\n")
    with Session(core.engine) as session:
        [(new_youth_id, new_registration_id)] = session.exec(
            select(Registration.youth_id, Registration.id)
        ).all()
    assert registration_id is not None and new_registration_id is not None
    assert new_youth_id > youth_id and new_registration_id > registration_id


# --- derived state, idempotency, logboek ---------------------------------------------------------


def test_new_involvement_of_a_signalled_youth_derives_coordination(core: CoreDriver) -> None:
    _register(core, "ggd-groningen", BSN_A, "G-A")
    signaller = core.professional("a.devries@ggd-groningen.example")
    core.run(
        lambda s: place_signal(
            PlaceSignal(youth(BSN_A), "Groningen", "laag", "ja"),
            session=s,
            config=core.config,
            actor=signaller,
            now=MONDAY,
        )
    )
    with Session(core.engine) as session:
        assert session.exec(select(Coordination)).all() == []  # one institution: none yet
    report = _import(
        core,
        "wij-groningen",
        f"{HEADER}\n{BSN_A};;01-05-2016;Groningen;W-A;;;;\n{BSN_B};;01-05-2016;Groningen;W-B;;;;\n",
    )
    assert report.new_involvements == 2
    with Session(core.engine) as session:
        [coordination] = session.exec(select(Coordination)).all()
        assert coordination.status == "pending"
        assert coordination.institution_id is not None
    assert core.outbox("coordinatie-toegewezen")
    # Signing off again ends it (fewer than two institutions involved).
    _import(
        core,
        "wij-groningen",
        f"bsn;geboortedatum;actie\n{BSN_A};01-05-2016;afmelden\n",
        now=MONDAY + timedelta(hours=1),
    )
    with Session(core.engine) as session:
        [coordination] = session.exec(select(Coordination)).all()
        assert coordination.status == "ended"


def test_registration_by_a_signalling_institution_is_no_new_involvement(
    core: CoreDriver,
) -> None:
    _register(core, "ggd-groningen", BSN_A, "G-A")
    signaller = core.professional("s.jansen@wij-groningen.example")
    core.run(
        lambda s: place_signal(
            PlaceSignal(youth(BSN_A), "Groningen", "laag", "ja"),
            session=s,
            config=core.config,
            actor=signaller,
            now=MONDAY,
        )
    )
    before = len(core.outbox("nieuwe-betrokkenheid"))
    report = _import(core, "wij-groningen", f"{HEADER}\n{BSN_A};;01-05-2016;Groningen;W-A;;;;\n")
    assert report.accepted == 1 and report.new_involvements == 0 and report.notifications == 0
    assert len(core.outbox("nieuwe-betrokkenheid")) == before
    assert _audit_actions(core.engine).count("registration-created") == 2  # still logged


def test_importing_twice_is_idempotent(core: CoreDriver) -> None:
    _register(core, "wij-groningen", BSN_A, "W-A")
    text = (
        f"{HEADER}\n{BSN_A};;01-05-2016;Groningen;G-A;;;;\n{BSN_B};;01-05-2016;Groningen;G-B;;;;\n"
    )
    first = _import(core, "ggd-groningen", text)
    registrations = _registrations(core.engine)
    outbox = _outbox_rows(core.engine)
    second = _import(core, "ggd-groningen", text, now=MONDAY + timedelta(hours=3))
    assert (first.accepted, first.new_involvements, first.notifications) == (2, 2, 1)
    assert (second.accepted, second.new_involvements, second.notifications) == (2, 0, 0)
    assert _registrations(core.engine) == registrations
    assert _outbox_rows(core.engine) == outbox
    with Session(core.engine) as session:
        assert len(session.exec(select(Youth)).all()) == 2


def test_audit_chain_verifies_after_imports(core: CoreDriver) -> None:
    text = _mixed_file()
    _import(core, "ggd-groningen", text, batch_size=3)
    _import(core, "wij-groningen", text, batch_size=5)
    actions = _audit_actions(core.engine)
    assert actions.count("registration-created") >= 18
    assert "registration-ended" in actions and "registration-updated" in actions
    with Session(core.engine) as session:
        checked, broken = verify_chain(session)
    assert broken is None and checked == len(actions)
    # Nothing about a youth's identity in the logboek.
    with Session(core.engine) as session:
        details = str([(e.subject, e.details) for e in session.exec(select(AuditEvent))])
    assert BSN_A not in details and BSN_PARENT not in details


def test_a_batch_retried_after_a_lost_race_counts_once(
    core: CoreDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    _register(core, "wij-groningen", BSN_A, "W-A")
    real = registration_apply._write_registrations
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> dict[str, int]:
        written = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        return written

    monkeypatch.setattr(registration_apply, "_write_registrations", flaky)
    text = (
        f"{HEADER}\n{BSN_A};;01-05-2016;Groningen;G-A;;;;\n"
        f"{BSN_BAD};;01-05-2016;Groningen;G-X;;;;\n"  # refused before the transaction
        f"{BSN_B};;01-05-2016;Groningen;G-B;;;;\n"
        f"{BSN_C};;01-05-2016;;;;;;afmelden\n"
    )  # refused inside it
    report = _import(core, "ggd-groningen", text)
    assert calls["n"] == 2
    assert (report.accepted, report.new_involvements, report.notifications) == (2, 2, 1)
    assert [(r.line, r.field) for r in report.refused] == [(3, "BSN"), (5, "BSN")]
    assert len(core.outbox("nieuwe-betrokkenheid")) == 1
    assert len(_registrations(core.engine)) == 3


def test_signing_on_again_after_afmelden_notifies_again(core: CoreDriver) -> None:
    _register(core, "wij-groningen", BSN_A, "W-A")
    on = f"{HEADER}\n{BSN_A};;01-05-2016;Groningen;G-A;;;;\n"
    _import(core, "ggd-groningen", on)
    _import(
        core,
        "ggd-groningen",
        f"bsn;geboortedatum;actie\n{BSN_A};01-05-2016;afmelden\n",
        now=MONDAY + timedelta(hours=1),
    )
    report = _import(core, "ggd-groningen", on, now=MONDAY + timedelta(hours=2))
    assert report.new_involvements == 1
    assert len(core.outbox("nieuwe-betrokkenheid")) == 2
