"""Registering youths (ketenregistratie, DOMAIN step 1): involvements, the chain notification
(nieuwe-betrokkenheid), deregistration, field rules, youths without BSN, parent digests."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from core.audit import verify_chain
from core.errors import InvalidInput, NotAllowed, NotFound
from core.fields import parse_registration
from core.identity import YouthIdentity
from core.models import AuditEvent, Registration, RegistrationStatus, Youth, YouthParent
from core.registration import (
    DeregisterYouth,
    RegisterYouth,
    RegistrationOutcome,
    deregister_youth,
    register_youth,
)
from tests.core.conftest import BSN_A, BSN_B, BSN_PARENT, MONDAY, CoreDriver, youth

LATER = MONDAY + timedelta(days=1)


def _register(
    core: CoreDriver,
    institution: str,
    identity: YouthIdentity | None = None,
    reference: str = "K-1",
    municipality: str = "Groningen",
    *,
    now: Any = MONDAY,
    **fields: Any,
) -> RegistrationOutcome:
    actor = core.institution(institution)
    request = RegisterYouth(identity or youth(), municipality, reference, **fields)
    return core.run(
        lambda s: register_youth(request, session=s, config=core.config, actor=actor, now=now)
    )


def _deregister(core: CoreDriver, institution: str, identity: YouthIdentity | None = None) -> str:
    actor = core.institution(institution)
    return core.run(
        lambda s: deregister_youth(
            DeregisterYouth(identity or youth()),
            session=s,
            config=core.config,
            actor=actor,
            now=MONDAY + timedelta(hours=1),
        )
    )


def _registrations(core: CoreDriver) -> list[Registration]:
    with Session(core.engine) as session:
        return list(session.exec(select(Registration).order_by(Registration.id)).all())  # type: ignore[arg-type]


def _audit_actions(core: CoreDriver) -> list[str]:
    with Session(core.engine) as session:
        return [e.action for e in session.exec(select(AuditEvent).order_by(AuditEvent.id)).all()]  # type: ignore[arg-type]


def test_first_registration_creates_involvement_without_notification(core: CoreDriver) -> None:
    outcome = _register(core, "ggd-groningen", reference="GGD-1")
    assert outcome.new_involvement
    assert outcome.others_involved == ()
    assert outcome.registration_number.startswith("R-")
    [registration] = _registrations(core)
    assert registration.institution_id == "ggd-groningen"
    assert registration.reference == "GGD-1"
    assert registration.status == RegistrationStatus.ACTIVE
    assert core.outbox() == []
    assert "registration-created" in _audit_actions(core)


def test_second_institution_notifies_first_with_its_own_reference(core: CoreDriver) -> None:
    _register(core, "ggd-groningen", reference="GGD-EIGEN-77")
    outcome = _register(core, "wij-groningen", reference="WIJ-9")
    assert outcome.new_involvement
    assert [(i.id, i.name, i.email) for i in outcome.others_involved] == [
        ("ggd-groningen", "GGD Groningen", "verwijsindex@ggd-groningen.example")
    ]
    [message] = core.outbox("nieuwe-betrokkenheid")
    assert message.recipient == "verwijsindex@ggd-groningen.example"
    assert message.recipient_role == "institution"
    assert message.institution_id == "ggd-groningen"
    assert message.reference == outcome.registration_number
    assert message.context["own_reference"] == "GGD-EIGEN-77"  # the recipient's own kenmerk
    assert "WIJ-9" not in str(message.context)  # never the newcomer's reference
    assert message.context["new_institution"]["name"] == "WIJ Groningen"
    assert message.context["new_institution"]["id"] == "wij-groningen"
    assert message.context["involved_count"] == 2
    # Content-free: nothing about the youth's identity.
    flat = str(message.context)
    assert BSN_A not in flat and "Geheimnaam" not in flat and "2016" not in flat


def test_third_institution_notifies_both_involved(core: CoreDriver) -> None:
    _register(core, "ggd-groningen", reference="G-1")
    _register(core, "wij-groningen", reference="W-1")
    outcome = _register(core, "jeugdhulp-noord", reference="J-1")
    assert {i.id for i in outcome.others_involved} == {"ggd-groningen", "wij-groningen"}
    rows = core.outbox("nieuwe-betrokkenheid", reference=outcome.registration_number)
    assert {(m.institution_id, m.context["own_reference"]) for m in rows} == {
        ("ggd-groningen", "G-1"),
        ("wij-groningen", "W-1"),
    }
    assert {m.context["involved_count"] for m in rows} == {3}


def test_reregistration_by_same_institution_changes_reference_and_sends_nothing(
    core: CoreDriver,
) -> None:
    _register(core, "ggd-groningen", reference="G-1")
    _register(core, "wij-groningen", reference="W-1")
    before = len(core.outbox())
    outcome = _register(core, "ggd-groningen", reference="G-2", now=LATER)
    assert not outcome.new_involvement
    assert [i.id for i in outcome.others_involved] == ["wij-groningen"]
    assert len(core.outbox()) == before
    ggd = next(r for r in _registrations(core) if r.institution_id == "ggd-groningen")
    assert ggd.reference == "G-2"
    assert ggd.registered_at.replace(tzinfo=None) == MONDAY.replace(tzinfo=None)  # still since
    assert "registration-updated" in _audit_actions(core)


def test_deregistration_ends_involvement_and_is_audited(core: CoreDriver) -> None:
    _register(core, "ggd-groningen")
    number = _deregister(core, "ggd-groningen")
    [registration] = _registrations(core)
    assert registration.number == number
    assert registration.status == RegistrationStatus.ENDED
    assert registration.ended_at is not None
    with Session(core.engine) as session:
        ended = session.exec(
            select(AuditEvent).where(AuditEvent.action == "registration-ended")
        ).one()
        assert ended.details == {"registration": number}
        assert ended.actor == "institution:ggd-groningen"
        assert verify_chain(session)[1] is None


def test_deregistration_without_active_registration_is_refused(core: CoreDriver) -> None:
    _register(core, "ggd-groningen")
    with pytest.raises(NotFound):
        _deregister(core, "wij-groningen")
    with pytest.raises(NotFound):
        _deregister(core, "ggd-groningen", youth(BSN_B))  # not in the index at all


def test_reregistration_after_deregistration_is_a_new_involvement(core: CoreDriver) -> None:
    _register(core, "wij-groningen", reference="W-1")
    first = _register(core, "ggd-groningen", reference="G-1")
    _deregister(core, "ggd-groningen")
    again = _register(core, "ggd-groningen", reference="G-2", now=LATER)
    assert again.new_involvement
    assert [i.id for i in again.others_involved] == ["wij-groningen"]
    assert again.registration_number == first.registration_number  # the same row, reactivated
    ggd = next(r for r in _registrations(core) if r.institution_id == "ggd-groningen")
    assert ggd.status == RegistrationStatus.ACTIVE and ggd.ended_at is None
    assert ggd.reference == "G-2"
    assert ggd.registered_at.replace(tzinfo=None) == LATER.replace(tzinfo=None)
    assert _audit_actions(core).count("registration-created") == 3


def test_reregistration_after_deregistration_notifies_the_involved_again(
    core: CoreDriver,
) -> None:
    _register(core, "wij-groningen", reference="W-1")
    _register(core, "ggd-groningen", reference="G-1")
    _deregister(core, "ggd-groningen")
    _register(core, "ggd-groningen", reference="G-2", now=LATER)
    assert len(core.outbox("nieuwe-betrokkenheid", institution_id="wij-groningen")) == 2


def test_hulpverlener_must_be_a_professional_of_the_registering_institution(
    core: CoreDriver,
) -> None:
    outcome = _register(core, "ggd-groningen", professional_email="A.DeVries@ggd-groningen.example")
    [registration] = _registrations(core)
    assert registration.professional_id is not None
    assert outcome.new_involvement
    for email in ("s.jansen@wij-groningen.example", "niemand@ggd-groningen.example"):
        with pytest.raises(InvalidInput) as caught:
            _register(core, "ggd-groningen", youth(BSN_B), professional_email=email)
        assert caught.value.field == "Hulpverlener"
        assert email in caught.value.message


def test_unknown_municipality_is_refused_naming_gemeente(core: CoreDriver) -> None:
    with pytest.raises(InvalidInput) as caught:
        _register(core, "ggd-groningen", municipality="Atlantis")
    assert caught.value.field == "Gemeente"
    assert "Atlantis" in caught.value.message
    assert _registrations(core) == []
    # Case does not matter for a known one; the canonical name is stored.
    _register(core, "ggd-groningen", municipality="  westerkwartier ")
    with Session(core.engine) as session:
        assert session.exec(select(Youth.municipality)).one() == "Westerkwartier"


def test_kenmerk_is_required(core: CoreDriver) -> None:
    for reference in ("", "   "):
        with pytest.raises(InvalidInput) as caught:
            _register(core, "ggd-groningen", reference=reference)
        assert caught.value.field == "Kenmerk"
    with pytest.raises(InvalidInput) as caught:
        _register(core, "ggd-groningen", reference="x" * 101)
    assert caught.value.field == "Kenmerk"
    assert _registrations(core) == []


def test_institution_is_always_the_actors(core: CoreDriver) -> None:
    # A professional acting registers for their own institution, whatever the fields say.
    actor = core.professional("s.jansen@wij-groningen.example", channel="smtp")
    core.run(
        lambda s: register_youth(
            RegisterYouth(youth(), "Groningen", "W-1"),
            session=s,
            config=core.config,
            actor=actor,
            now=MONDAY,
        )
    )
    assert [r.institution_id for r in _registrations(core)] == ["wij-groningen"]
    # There is no institution field to parse: an 'Instelling' label is not a registration field.
    request = parse_registration(
        {
            "bsn": BSN_A,
            "geboortedatum": "01-05-2016",
            "gemeente": "Groningen",
            "kenmerk": "X",
            "instelling": "ggd-groningen",
        }
    )
    assert isinstance(request, RegisterYouth)
    assert not hasattr(request, "institution_id") and not hasattr(request, "institution")
    # No institution at all: refused.
    from core.audit import Actor

    anonymous = Actor(kind="system", identifier="x", channel="cli")
    with pytest.raises(NotAllowed):
        core.run(
            lambda s: register_youth(
                RegisterYouth(youth(), "Groningen", "X"),
                session=s,
                config=core.config,
                actor=anonymous,
                now=MONDAY,
            )
        )


def test_youths_without_bsn_match_regardless_of_accents_and_case(core: CoreDriver) -> None:
    first = YouthIdentity(birth_date=date(2015, 6, 7), surname="De Bruïn", sex="V", name="Eline")
    same = parse_registration(
        {
            "achternaam": "  de   BRUIN ",
            "geslacht": "v",
            "geboortedatum": "2015-06-07",
            "gemeente": "groningen",
            "kenmerk": "W-7",
        }
    )
    assert isinstance(same, RegisterYouth)
    _register(core, "ggd-groningen", first, reference="G-7")
    outcome = core.run(
        lambda s: register_youth(
            same, session=s, config=core.config, actor=core.institution("wij-groningen"), now=MONDAY
        )
    )
    assert [i.id for i in outcome.others_involved] == ["ggd-groningen"]
    with Session(core.engine) as session:
        [kid] = session.exec(select(Youth)).all()
        assert kid.has_bsn is False
    # Another sex or birth date is another youth.
    other = YouthIdentity(birth_date=date(2015, 6, 7), surname="de Bruin", sex="M")
    assert _register(core, "wij-groningen", other, reference="W-8").others_involved == ()


def test_parent_bsns_are_stored_only_as_digests(core: CoreDriver) -> None:
    identity = YouthIdentity(bsn=BSN_A, birth_date=date(2016, 5, 1), name="Testkind Geheimnaam")
    _register(core, "ggd-groningen", identity, parent_bsns=(BSN_PARENT, BSN_B))
    _register(core, "wij-groningen", identity, reference="W", parent_bsns=(BSN_PARENT,))
    secrets = [BSN_A, BSN_B, BSN_PARENT, "Geheimnaam", "Testkind"]
    with core.engine.connect() as connection:
        for table in ("youth", "youthparent"):
            rows = connection.execute(text(f"SELECT * FROM {table}")).all()
            assert rows
            for row in rows:
                for value in row:
                    raw = value if isinstance(value, bytes | memoryview) else str(value).encode()
                    for secret in secrets:
                        assert secret.encode() not in bytes(raw), (table, secret)
        parents = connection.execute(text("SELECT parent_key FROM youthparent")).scalars().all()
    assert sorted(parents) == sorted(
        core.config.keys.bsn_digest(b) for b in (BSN_PARENT, BSN_B)
    )  # no duplicate for the parent named twice
    with Session(core.engine) as session:
        [kid] = session.exec(select(Youth)).all()
        assert kid.bsn_encrypted is not None
        assert core.config.keys.decrypt(kid.bsn_encrypted) == BSN_A  # encrypted, for inzage
        assert len(session.exec(select(YouthParent)).all()) == 2


def test_youth_of_23_or_older_is_refused(core: CoreDriver) -> None:
    old = YouthIdentity(bsn=BSN_A, birth_date=date(2003, 3, 2))  # 23 on MONDAY (2026-03-02)
    with pytest.raises(InvalidInput) as caught:
        _register(core, "ggd-groningen", old)
    assert caught.value.field == "Geboortedatum"
    _register(core, "ggd-groningen", YouthIdentity(bsn=BSN_A, birth_date=date(2003, 3, 3)))


def test_inactive_professional_is_not_a_valid_hulpverlener(core: CoreDriver) -> None:
    from core.models import Professional

    with Session(core.engine) as session:
        person = session.exec(
            select(Professional).where(Professional.email == "p.bakker@ggd-groningen.example")
        ).one()
        person.active = False
        session.add(person)
        session.commit()
    with pytest.raises(InvalidInput) as caught:
        _register(core, "ggd-groningen", professional_email="p.bakker@ggd-groningen.example")
    assert caught.value.field == "Hulpverlener"


def test_a_deactivated_municipality_is_refused(core: CoreDriver) -> None:
    from core.models import Municipality

    with Session(core.engine) as session:
        row = session.get(Municipality, "Westerkwartier")
        assert row is not None
        row.active = False
        session.add(row)
        session.commit()
    with pytest.raises(InvalidInput) as caught:
        _register(core, "ggd-groningen", municipality="Westerkwartier")
    assert caught.value.field == "Gemeente"
    assert "niet geactiveerd" in caught.value.message
