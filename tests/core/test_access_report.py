"""The operator's overview of one youth (CONTRACT §6 ``youth show --json``) and the
subject-access report (inzage): contents, shape, and that both views are in the logboek."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, select

from core.access_report import access_report, youth_overview
from core.actors import require_professional
from core.audit import Actor, verify_chain
from core.errors import NotFound
from core.identity import YouthIdentity
from core.models import AuditEvent, Youth
from core.overview import my_work
from core.registration import DeregisterYouth, RegisterYouth, deregister_youth, register_youth
from core.signals import PlaceSignal, place_signal
from tests.core.conftest import BSN_A, BSN_B, BSN_PARENT, MONDAY, CoreDriver, youth

OPERATOR = Actor(kind="professional", identifier="f.dijkstra@ggd-groningen.example", channel="cli")
ANNA = "a.devries@ggd-groningen.example"
SANNE = "s.jansen@wij-groningen.example"
EVA = "e.meijer@jeugdhulp-noord.example"


def _register(
    core: CoreDriver,
    institution: str,
    reference: str,
    at: datetime,
    identity: YouthIdentity | None = None,
    parents: tuple[str, ...] = (),
) -> None:
    actor = core.institution(institution)
    core.run(
        lambda s: register_youth(
            RegisterYouth(identity or youth(), "Groningen", reference, parent_bsns=parents),
            session=s,
            config=core.config,
            actor=actor,
            now=at,
        )
    )


def _signal(
    core: CoreDriver,
    email: str,
    at: datetime,
    identity: YouthIdentity | None = None,
    code: str = "laag",
    parents: tuple[str, ...] = (),
) -> str:
    actor = core.professional(email)
    return core.run(
        lambda s: place_signal(
            PlaceSignal(
                identity or youth(),
                "Groningen",
                code,
                "ja",
                ends_on=date(2026, 12, 31),
                parent_bsns=parents,
            ),
            session=s,
            config=core.config,
            actor=actor,
            now=at,
        )
    ).number


@pytest.fixture
def history(core: CoreDriver) -> CoreDriver:
    _register(core, "ggd-groningen", "G-1", MONDAY)
    _register(core, "wij-groningen", "W-1", MONDAY + timedelta(hours=1))
    _register(core, "scholengroep-noordkust", "S-1", MONDAY + timedelta(hours=2))
    core.run(
        lambda s: deregister_youth(
            DeregisterYouth(youth()),
            session=s,
            config=core.config,
            actor=core.institution("scholengroep-noordkust"),
            now=MONDAY + timedelta(hours=3),
        )
    )
    _signal(core, ANNA, MONDAY + timedelta(hours=4))
    _signal(core, SANNE, MONDAY + timedelta(hours=5), code="urgent")
    _signal(core, EVA, MONDAY + timedelta(hours=6))  # Jeugdhulp: involved by its signal only
    return core


def _overview(core: CoreDriver, identity: YouthIdentity | None = None) -> dict[str, Any]:
    return core.run(
        lambda s: youth_overview(
            identity or youth(),
            session=s,
            config=core.config,
            actor=OPERATOR,
            now=MONDAY + timedelta(days=1),
        )
    )


def _report(core: CoreDriver) -> dict[str, Any]:
    return core.run(
        lambda s: access_report(
            youth(), session=s, config=core.config, actor=OPERATOR, now=MONDAY + timedelta(days=1)
        )
    )


def test_youth_overview_has_the_contract_shape_and_contents(history: CoreDriver) -> None:
    overview = _overview(history)
    json.dumps(overview)  # the CLI prints it as JSON
    assert set(overview) >= {"involvements", "signals", "matches", "coordination"}
    involvements = overview["involvements"]
    for item in involvements:
        assert set(item) >= {"institution", "reference", "since"}
    assert [(i["institution"], i["reference"]) for i in involvements] == [
        ("ggd-groningen", "G-1"),
        ("wij-groningen", "W-1"),
        ("jeugdhulp-noord", None),
    ]  # the school signed off; Jeugdhulp is involved through its signal
    assert involvements[0]["since"] == "2026-03-02T09:00:00+00:00"
    assert involvements[2]["since"] == "2026-03-02T15:00:00+00:00"

    signals = overview["signals"]
    for item in signals:
        assert set(item) >= {
            "id",
            "institution",
            "professional",
            "code",
            "status",
            "placed_at",
            "ends_on",
        }
    assert [(s["institution"], s["professional"], s["code"], s["status"]) for s in signals] == [
        ("ggd-groningen", ANNA, "laag", "active"),
        ("wij-groningen", SANNE, "urgent", "active"),
        ("jeugdhulp-noord", EVA, "laag", "active"),
    ]
    assert signals[0]["placed_at"] == "2026-03-02T13:00:00+00:00"
    assert {s["ends_on"] for s in signals} == {"2026-12-31"}
    assert all(s["id"].startswith("S-") for s in signals)

    [match] = overview["matches"]
    assert set(match) >= {"id", "signals", "family"}
    assert match["id"].startswith("M-")
    assert match["signals"] == sorted(s["id"] for s in signals)
    assert match["family"] is False

    coordination = overview["coordination"]
    assert set(coordination) >= {"institution", "status", "due"}
    assert coordination["institution"] == "wij-groningen"  # Groningen city, age 9
    assert coordination["status"] == "pending"
    assert coordination["due"] is not None and coordination["due"].endswith("+00:00")
    # Nothing identifying in it.
    text = json.dumps(overview)
    assert BSN_A not in text and "Geheimnaam" not in text and "2016-05-01" not in text


def test_youth_overview_without_coordination_or_match(core: CoreDriver) -> None:
    _register(core, "ggd-groningen", "G-1", MONDAY)
    overview = _overview(core)
    assert overview["coordination"] is None
    assert overview["matches"] == [] and overview["signals"] == []
    assert [i["institution"] for i in overview["involvements"]] == ["ggd-groningen"]


def test_youth_overview_shows_a_family_match(core: CoreDriver) -> None:
    brother = YouthIdentity(bsn=BSN_B, birth_date=date(2014, 2, 3))
    _signal(core, ANNA, MONDAY, parents=(BSN_PARENT,))
    _signal(core, SANNE, MONDAY + timedelta(hours=1), identity=brother, parents=(BSN_PARENT,))
    [match] = _overview(core)["matches"]
    assert match["family"] is True
    assert len(match["signals"]) == 2


def test_both_views_are_audited(history: CoreDriver) -> None:
    _overview(history)
    _report(history)
    with Session(history.engine) as session:
        kid = session.exec(select(Youth)).one()
        events = session.exec(
            select(AuditEvent)
            .where(AuditEvent.action.in_(["youth-viewed", "access-report"]))  # type: ignore[attr-defined]
            .order_by(AuditEvent.id)  # type: ignore[arg-type]
        ).all()
        assert [(e.action, e.subject, e.actor) for e in events] == [
            ("youth-viewed", f"youth:{kid.id}", f"professional:{OPERATOR.identifier}"),
            ("access-report", f"youth:{kid.id}", f"professional:{OPERATOR.identifier}"),
        ]
        assert verify_chain(session)[1] is None


def test_access_report_lists_institutions_dates_and_statuses(history: CoreDriver) -> None:
    report = _report(history)
    json.dumps(report)
    assert report["region"] == "Groningen"
    lines = [
        (line["kind"], line["institution"], line["date"], line["status"])
        for line in report["lines"]
    ]
    assert sorted(lines) == sorted(
        [
            ("registratie", "GGD Groningen", "2026-03-02", "actief"),
            ("registratie", "WIJ Groningen", "2026-03-02", "actief"),
            ("registratie", "Scholengroep Noordkust", "2026-03-02", "beëindigd"),
            ("signaal", "GGD Groningen", "2026-03-02", "actief"),
            ("signaal", "WIJ Groningen", "2026-03-02", "actief"),
            ("signaal", "Jeugdhulp Noord", "2026-03-02", "actief"),
        ]
    )
    assert {line["ends_on"] for line in report["lines"] if line["kind"] == "signaal"} == {
        "2026-12-31"
    }
    # Who registered or signalled is an institution; no identity and no address in the report.
    text = json.dumps(report, ensure_ascii=False)
    for secret in (ANNA, SANNE, EVA, BSN_A, "Geheimnaam"):
        assert secret not in text
    assert {line["institution"] for line in report["lines"]} >= {"GGD Groningen"}


def test_access_report_names_who_was_told_about_the_youth_and_who_looked(
    history: CoreDriver,
) -> None:
    """AVG art. 15: the recipients. Every notification about the youth's registrations,
    signals, match and coordination (institution, person, date), and every earlier view of the
    youth in the logboek: the overview by name, a work list that showed the youth's signal."""
    _overview(history)
    anna = history.professional(ANNA)
    history.run(
        lambda s: my_work(
            s,
            history.config,
            require_professional(s, ANNA),
            actor=anna,
            now=MONDAY + timedelta(hours=8),
        )
    )
    henk = history.professional("h.visser@ggd-groningen.example")
    history.run(  # someone else's work list, without this youth: not a view of it
        lambda s: my_work(
            s,
            history.config,
            require_professional(s, henk.identifier),
            actor=henk,
            now=MONDAY + timedelta(hours=8),
        )
    )
    report = _report(history)
    told = {(n["institution"], n["person"], n["kind"]) for n in report["notifications"]}
    assert ("GGD Groningen", "Anna de Vries", "match") in told
    assert ("WIJ Groningen", "Sanne Jansen", "match") in told
    assert any(n["kind"] == "nieuwe-betrokkenheid" for n in report["notifications"])
    assert {n["about"][:2] for n in report["notifications"]} >= {"R-", "M-"}
    assert all(n["date"] == "2026-03-02" for n in report["notifications"])
    assert {n["status"] for n in report["notifications"]} == {"nog niet verzonden"}
    assert [(v["person"], v["institution"], v["what"]) for v in report["views"]] == [
        ("Femke Dijkstra", "GGD Groningen", "overzicht"),
        ("Anna de Vries", "GGD Groningen", "werklijst"),
    ]
    # The report itself is the next view.
    assert [v["what"] for v in _report(history)["views"]][-1] == "inzage"


def test_access_report_dates_are_local_days(core: CoreDriver) -> None:
    late = datetime(2026, 3, 2, 23, 30, tzinfo=MONDAY.tzinfo)  # 00:30 on 3 March in Groningen
    _register(core, "ggd-groningen", "G-1", late)
    [line] = core.run(
        lambda s: access_report(youth(), session=s, config=core.config, actor=OPERATOR, now=late)
    )["lines"]
    assert line["date"] == "2026-03-03"


def test_unknown_youth_is_not_found(core: CoreDriver) -> None:
    with pytest.raises(NotFound):
        _overview(core)
    with pytest.raises(NotFound):
        _report(core)
