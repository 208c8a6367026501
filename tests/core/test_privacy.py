"""The law's first rule (DOMAIN: Content-free): no notification, audit entry or log line ever
carries a youth's BSN, name, address or date of birth.

One scenario drives the core through every notification kind for test youths with distinctive
names, then renders every outbox row (subject, text, HTML) and scans it, the stored context,
the logboek and the log output for any form of their identity.
"""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta
from typing import Any

import pytest
from sqlmodel import Session, col, select

from core.absence import declare_absence
from core.audit import Actor
from core.consent import record_consent
from core.coordination import accept_coordination, hand_over_coordination, open_coordination
from core.covenant.sync import sync_covenant
from core.identity import YouthIdentity
from core.models import AuditEvent, Coordination, Match, OutboxMessage, Youth
from core.notifications.subscribers import NOTIFICATION_KINDS
from core.outbox_secrets import opened_context
from core.regie import close, take_up
from core.registration import RegisterYouth, register_youth
from core.rendering import TemplateRenderer
from core.rights_requests import record_request
from core.scheduler import sweep
from core.signals import PlaceSignal, place_signal
from core.slack_codes import request_link_code
from core.slack_links import SlackUser
from core.transfer import execute_transfer, request_transfer
from tests.core.conftest import BSN_A, BSN_B, BSN_C, BSN_PARENT, MONDAY, CoreDriver

CHILD = YouthIdentity(bsn=BSN_A, birth_date=date(2016, 5, 1), name="Testkind Geheimnaam")
SIBLING = YouthIdentity(bsn=BSN_B, birth_date=date(2019, 3, 10), name="Broertje Verborgen")
OTHER = YouthIdentity(bsn=BSN_C, birth_date=date(2012, 11, 7), name="Derde Onbekendsma")
GATEWAY_KINDS = {"ontvangstbevestiging", "foutmelding"}


def _forbidden() -> list[str]:
    words = []
    for identity in (CHILD, SIBLING, OTHER):
        assert identity.bsn and identity.name
        b = identity.bsn
        words += [b, f"{b[:3]} {b[3:6]} {b[6:]}", f"{b[:3]}.{b[3:6]}.{b[6:]}", b.lstrip("0")]
        words += identity.name.split()
        d = identity.birth_date
        words += [d.isoformat(), d.strftime("%d-%m-%Y"), f"{d.day}-{d.month}-{d.year}"]
        words += [f"{d.day} {m} {d.year}" for m in ("mei", "maart", "november")]
    words += [BSN_PARENT]
    return words


def _scan(text: str, where: str) -> None:
    for word in _forbidden():
        assert word not in text, f"{word!r} found in {where}"


def _scenario(core: CoreDriver) -> None:
    cfg = core.config
    t0 = MONDAY

    def run(fn: Any, now: Any = t0) -> Any:
        return core.run(lambda s: fn(s, now))

    ggd, wij = core.institution("ggd-groningen"), core.institution("wij-groningen")
    stw = core.institution("sociaal-team-westerkwartier")
    devries = core.professional("a.devries@ggd-groningen.example")
    jansen = core.professional("s.jansen@wij-groningen.example")
    meijer = core.professional("e.meijer@jeugdhulp-noord.example")
    hoekstra = core.professional("l.hoekstra@sociaalteam-westerkwartier.example")
    wiersma = core.professional("i.wiersma@politie-nn.example")
    veenstra = core.professional("j.veenstra@scholengroep-noordkust.example")
    postma = core.professional("w.postma@jeugdhulp-noord.example")
    bos = core.professional("r.bos@jeugdhulp-noord.example")

    def register(
        identity: YouthIdentity,
        actor: Any,
        ref: str,
        town: str = "Groningen",
        parents: tuple[str, ...] = (),
    ) -> None:
        run(
            lambda s, now: register_youth(
                RegisterYouth(identity, town, ref, parent_bsns=parents),
                session=s,
                config=cfg,
                actor=actor,
                now=now,
            )
        )

    def signal(
        identity: YouthIdentity,
        actor: Any,
        code: str = "laag",
        town: str = "Groningen",
        now: Any = t0,
        informed: str = "ja",
        **extra: Any,
    ) -> None:
        run(
            lambda s, n: place_signal(
                PlaceSignal(identity, town, code, informed, **extra),
                session=s,
                config=cfg,
                actor=actor,
                now=n,
            ),
            now,
        )

    register(CHILD, ggd, "GGD-1", parents=(BSN_PARENT,))  # first: no notification
    register(CHILD, wij, "WIJ-1")  # nieuwe-betrokkenheid
    signal(CHILD, devries)  # signaal, coordinatie-toegewezen
    signal(CHILD, jansen)  # match
    run(
        lambda s, now: record_consent(
            "M-1", "gegeven", session=s, config=cfg, actor=devries, now=now
        )
    )  # match-toestemming
    signal(SIBLING, meijer, parent_bsns=(BSN_PARENT,))  # gezinsmatch
    run(
        lambda s, now: declare_absence(
            "a.devries@ggd-groningen.example",
            t0.date(),
            t0.date() + timedelta(days=30),
            "p.bakker@ggd-groningen.example",
            session=s,
            config=cfg,
            actor=devries,
            now=now,
        )
    )  # afwezigheid
    sweep(core.engine, cfg, now=t0 + timedelta(days=4))  # herinnering, match-opvolging
    sweep(core.engine, cfg, now=t0 + timedelta(days=10))  # escalaties
    _municipality_regie(core, t0 + timedelta(days=10))  # gemeente-regie
    with Session(core.engine) as session:
        coordination = open_coordination(session, _youth_id(session, core, CHILD))
        assert coordination is not None
    run(
        lambda s, now: accept_coordination(
            coordination.id or 0, session=s, config=cfg, actor=wij, now=now
        ),
        t0 + timedelta(days=10),
    )  # geaccepteerd
    register(OTHER, ggd, "GGD-3", town="Westerkwartier")
    register(OTHER, stw, "STW-3", town="Westerkwartier")
    # Not yet informed: the sweep at ten days reminds her (informeren-herinnering).
    signal(OTHER, hoekstra, town="Westerkwartier", informed="nee", postpone_reason="nog niet")
    with Session(core.engine) as session:
        other = open_coordination(session, _youth_id(session, core, OTHER))
        assert other is not None and other.institution_id == "sociaal-team-westerkwartier"
    run(
        lambda s, now: hand_over_coordination(
            other.id or 0, "ggd-groningen", session=s, config=cfg, actor=stw, now=now
        )
    )  # overgedragen
    transfer = run(
        lambda s, now: request_transfer(
            "e.meijer@jeugdhulp-noord.example",
            "t.boer@jeugdhulp-noord.example",
            "k.deboer@jeugdhulp-noord.example",
            session=s,
            config=cfg,
            actor=postma,
            now=now,
        )
    )
    run(
        lambda s, now: execute_transfer(transfer.number, session=s, config=cfg, actor=bos, now=now)
    )  # overdracht, contactpersoon-gewijzigd
    t1 = t0 + timedelta(days=20)
    signal(CHILD, wiersma, now=t1, ends_on=(t1 + timedelta(days=10)).date())
    sweep(core.engine, cfg, now=t1 + timedelta(days=5))  # signaal-verloopt
    sweep(core.engine, cfg, now=t1 + timedelta(days=12))  # signaal-beeindigd
    signal(CHILD, veenstra, now=t1 + timedelta(days=13))  # archief-match
    run(
        lambda s, now: register_youth(
            RegisterYouth(CHILD, "Westerkwartier", "WIJ-1"),
            session=s,
            config=cfg,
            actor=wij,
            now=now,
        ),
        t1 + timedelta(days=13, hours=1),
    )  # verhuizing; coordinatie-overname (the rules of Westerkwartier pick its Sociaal Team)
    leaver = "t.boer@jeugdhulp-noord.example"  # holds the signals transferred to him
    without = cfg.covenant.model_copy(
        update={"professionals": tuple(p for p in cfg.covenant.professionals if p.email != leaver)}
    )
    run(lambda s, now: sync_covenant(s, without))
    region_admin = core.professional("f.dijkstra@ggd-groningen.example")
    run(
        lambda s, now: record_request(
            CHILD, "correctie", "ouder", session=s, config=cfg, actor=region_admin, now=now
        )
    )  # received t0: rechtenverzoek-termijn (past its 4 weeks at the sweep below)
    sweep(core.engine, cfg, now=t1 + timedelta(days=14))  # hulpverlener-vertrokken
    school = "scholengroep-noordkust"
    left = without.model_copy(
        update={
            "institutions": tuple(i for i in without.institutions if i.id != school),
            "professionals": tuple(p for p in without.professionals if p.institution != school),
        }
    )
    run(
        lambda s, now: sync_covenant(s, left, config=cfg, now=now), t1 + timedelta(days=16)
    )  # instelling-vertrokken
    guest = SlackUser("E0GRID", "T0GUEST", "W0GUEST01")  # a Slack Connect guest, address hidden
    run(
        lambda s, now: request_link_code(s, cfg, email=devries.identifier, user=guest, now=now)
    )  # slack-koppelcode
    del meijer


def _municipality_regie(core: CoreDriver, now: Any) -> None:
    """The municipality takes the escalated match up and closes it, with a toelichting."""
    groningen = Actor("municipality", "regie.verwijsindex@gemeente-groningen.example", "smtp")
    with Session(core.engine) as session:
        match = session.exec(
            select(Match).where(col(Match.escalated_at).is_not(None)).order_by(col(Match.id))
        ).first()
        assert match is not None
    number, cfg = match.number, core.config
    core.run(lambda s: take_up(number, session=s, config=cfg, actor=groningen, now=now))
    note = "hulp loopt via het wijkteam"
    core.run(lambda s: close(number, note, session=s, config=cfg, actor=groningen, now=now))


def _youth_id(session: Session, core: CoreDriver, identity: YouthIdentity) -> int:
    key = core.config.keys.identity_key(identity)
    youth = session.exec(select(Youth).where(Youth.identity_key == key)).one()
    return youth.id or 0


def _gateway_contexts() -> dict[str, dict[str, Any]]:
    base = {
        "reference": "",
        "region": "Groningen",
        "recipient_name": "GGD Groningen",
        "recipient_role": "institution",
        "on_behalf_of": None,
        "asks_reply": False,
        "original_message_id": "<x@example>",
    }
    return {
        "ontvangstbevestiging": {
            **base,
            "kind": "ontvangstbevestiging",
            "accepted": [
                {
                    "line": 3,
                    "action": "aanmelden",
                    "reference": "R-1",
                    "own_reference": "GGD-1",
                    "others_involved": [
                        {"name": "WIJ Groningen", "email": "verwijsindex@wij-groningen.example"}
                    ],
                }
            ],
            "refused": [
                {"line": 7, "field": "BSN", "reason": "is geen geldig BSN (elfproef klopt niet)"}
            ],
        },
        "foutmelding": {
            **base,
            "kind": "foutmelding",
            "problems": ["het bericht bevat geen velden"],
            "hint": "Zet per regel Veld: waarde.",
        },
    }


def test_no_notification_log_or_audit_entry_contains_a_youths_identity(
    core: CoreDriver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _scenario(core)
    renderer = TemplateRenderer()
    with Session(core.engine) as session:
        rows = session.exec(select(OutboxMessage)).all()
        kinds = {row.kind for row in rows}
        assert kinds == set(NOTIFICATION_KINDS) - GATEWAY_KINDS, (
            "the scenario must cover every kind"
        )
        for row in rows:
            # As the delivery worker renders it: what the row carries sealed opened.
            context = opened_context(core.config.keys.ring, dict(row.context))
            if context.get("asks_reply"):
                context["reply_address"] = f"antwoord+{row.reply_token}@verwijsindex.localhost"
            _scan(json.dumps(context, ensure_ascii=False), f"context of {row.kind} #{row.id}")
            rendered = renderer.render_email(row.kind, context)
            for part in ("subject", "text", "html"):
                _scan(getattr(rendered, part), f"{part} of {row.kind} #{row.id}")
        for event in session.exec(select(AuditEvent)).all():
            _scan(
                json.dumps(event.model_dump(mode="json"), ensure_ascii=False), f"audit #{event.id}"
            )
        assert session.exec(select(Coordination)).first() is not None
    for kind, context in _gateway_contexts().items():
        rendered = renderer.render_email(kind, context)
        for part in ("subject", "text", "html"):
            _scan(getattr(rendered, part), f"{part} of {kind}")
    _scan(caplog.text, "the log")
