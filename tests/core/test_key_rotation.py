"""Key rotation (core.key_rotation): after VERWIJSINDEX_SECRET_KEY is replaced, youths, parent
links, family matches, kept mail and Slack bot tokens move to the new key in resumable batches,
while everything stays findable (and readable) under either key; once done, the old key can go."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import replace
from datetime import date

import pytest
from sqlmodel import Session, col, select

from core.audit import SYSTEM
from core.bulk_import import import_registrations, read_registration_csv
from core.config import CoreConfig
from core.errors import SystemError_
from core.identity import IdentityKeys, YouthIdentity
from core.key_rotation import KeyStatus, key_status, move_youths, rotate_keys
from core.keyring import KeyRing
from core.models import (
    AuditEvent,
    InboundMessage,
    Match,
    MatchKind,
    SlackInstallation,
    Youth,
    YouthParent,
)
from core.registration import RegisterYouth, register_youth
from core.retention import purge_adults
from core.sealing import INBOUND_MAIL_PURPOSE, Sealer, sealed_key_id
from core.signals import PlaceSignal, place_signal
from core.slack_installations import bot_token, save_installation
from core.youths import age_of, find_youth
from tests.conftest import TEST_SECRET
from tests.core.conftest import BSN_A, BSN_B, BSN_C, BSN_PARENT, MONDAY, CoreDriver, youth

OLD = TEST_SECRET.encode()  # the suite's config writes under it
NEW = b"n" * 40
ANNA = "a.devries@ggd-groningen.example"  # GGD Groningen
SANNE = "s.jansen@wij-groningen.example"  # WIJ Groningen
MAIL = b"Subject: aanmelding\r\n\r\nBSN: 111222333\r\n"
WITHOUT_BSN = YouthIdentity(
    birth_date=date(2019, 2, 11), surname="Voorbeeld", sex="V", name="Eva Voorbeeld"
)


def keyed(core: CoreDriver, secret: bytes, *previous: bytes) -> CoreDriver:
    """The same database, with the region's keys as an operator set them."""
    keys = IdentityKeys(KeyRing.of(secret, previous))
    return CoreDriver(core.engine, replace(core.config, keys=keys))


def register(
    core: CoreDriver, institution: str, identity: YouthIdentity, *parents: str
) -> tuple[str, ...]:
    actor = core.institution(institution)
    request = RegisterYouth(identity, "Groningen", f"{institution}-1", parent_bsns=parents)
    outcome = core.run(
        lambda s: register_youth(request, session=s, config=core.config, actor=actor, now=MONDAY)
    )
    return tuple(other.id for other in outcome.others_involved)


def place(core: CoreDriver, email: str, identity: YouthIdentity, *parents: str) -> None:
    actor = core.professional(email)
    request = PlaceSignal(identity, "Groningen", "laag", "ja", parent_bsns=parents)
    core.run(
        lambda s: place_signal(request, session=s, config=core.config, actor=actor, now=MONDAY)
    )


def keep_mail(core: CoreDriver) -> None:
    sealer = Sealer(core.config.keys.ring, INBOUND_MAIL_PURPOSE, unreadable="")
    with Session(core.engine) as session:
        session.add(
            InboundMessage(
                dedupe_key="d1",
                message_id="<m1@example.org>",
                transport="smtp",
                mail_from="x@ggd-groningen.example",
                rcpt_to="registratie@verwijsindex.localhost",
                raw=sealer.seal(MAIL),
                status="refused",
            )
        )
        session.commit()


def install_slack(core: CoreDriver, team_id: str, token: str) -> None:
    """The app installed in a workspace (as bot.installations stores an OAuth install)."""
    row = SlackInstallation(workspace_key="", team_id=team_id, bot_token_sealed=b"")
    core.run(lambda s: save_installation(s, core.config.keys.ring, row, token=token))


def installations(core: CoreDriver) -> list[SlackInstallation]:
    with Session(core.engine) as session:
        query = select(SlackInstallation).order_by(col(SlackInstallation.id))
        return list(session.exec(query).all())


def rotate(
    core: CoreDriver, *, batch_size: int = 500, progress: Callable[[int], None] | None = None
) -> None:
    rotate_keys(core.engine, core.config, actor=SYSTEM, batch_size=batch_size, progress=progress)


def status(core: CoreDriver) -> KeyStatus:
    return core.run(lambda s: key_status(s, core.config))


def youths(core: CoreDriver) -> list[Youth]:
    with Session(core.engine) as session:
        return list(session.exec(select(Youth).order_by(Youth.id)).all())  # type: ignore[arg-type]


def find(core: CoreDriver, identity: YouthIdentity) -> Youth | None:
    return core.run(lambda s: find_youth(s, core.config, identity))


def test_rotation_moves_youths_parent_links_family_matches_and_kept_mail(
    core: CoreDriver,
) -> None:
    place(core, ANNA, youth(BSN_A), BSN_PARENT)
    place(core, SANNE, WITHOUT_BSN, BSN_PARENT)  # a sibling without BSN: a family match
    keep_mail(core)
    old_id = core.config.keys.key_id

    rotating = keyed(core, NEW, OLD)
    before = rotating.run(lambda s: key_status(s, rotating.config))
    assert before.youths == {old_id: 2} and before.parent_links == {old_id: 2}
    assert before.kept_mail == {old_id: 1} and before.movable == 5
    rotate(rotating)

    keys = rotating.config.keys
    assert rotating.run(lambda s: key_status(s, rotating.config)).remaining == 0
    moved = youths(rotating)
    assert [y.key_id for y in moved] == [keys.key_id] * 2
    assert {y.identity_key for y in moved} == {
        keys.bsn_digest(BSN_A, keys.ring.current),
        keys.identity_key(WITHOUT_BSN, keys.ring.current),
    }
    for kid in moved:
        sealed = [kid.bsn_encrypted, kid.name_encrypted, kid.birth_date_encrypted]
        assert all(keys.is_current(value) for value in sealed if value is not None)
    new_parent = keys.bsn_digest(BSN_PARENT)
    with Session(rotating.engine) as session:
        links = session.exec(select(YouthParent)).all()
        [family] = session.exec(select(Match).where(Match.kind == MatchKind.FAMILY)).all()
        [mail] = session.exec(select(InboundMessage)).all()
    assert {(link.parent_key, link.key_id) for link in links} == {(new_parent, keys.key_id)}
    assert family.family_key == new_parent

    # The old key can go: everything is read and found with the new key alone.
    new_only = keyed(core, NEW)
    mail_vault = Sealer(new_only.config.keys.ring, INBOUND_MAIL_PURPOSE, unreadable="")
    assert mail_vault.open(mail.raw) == MAIL
    for identity in (youth(BSN_A), WITHOUT_BSN):
        found = find(new_only, identity)
        assert found is not None
        assert new_only.config.keys.decrypt_date(found.birth_date_encrypted) == identity.birth_date
    named = find(new_only, youth(BSN_A))
    assert named is not None and named.name_encrypted is not None
    assert new_only.config.keys.decrypt(named.name_encrypted) == "Testkind Geheimnaam"
    # A third child of the same parent joins the family under the new digest.
    register(new_only, "wij-groningen", youth(BSN_C), BSN_PARENT)
    with Session(new_only.engine) as session:
        digests = set(session.exec(select(YouthParent.parent_key)).all())
    assert digests == {new_parent}


def test_an_interrupted_rotation_carries_on_where_it_stopped(core: CoreDriver) -> None:
    for bsn in (BSN_A, BSN_B, BSN_C):
        register(core, "ggd-groningen", youth(bsn))
    rotating = keyed(core, NEW, OLD)
    batches: list[int] = []

    def interrupt(moved: int) -> None:
        batches.append(moved)
        raise KeyboardInterrupt  # the operator's Ctrl-C after the first batch

    with pytest.raises(KeyboardInterrupt):
        rotate(rotating, batch_size=1, progress=interrupt)

    assert batches == [1]
    assert sum(status(rotating).youths.values()) == 2
    rotate(rotating, batch_size=1)
    assert status(rotating).remaining == 0
    assert {y.key_id for y in youths(rotating)} == {rotating.config.keys.key_id}


def test_during_a_rotation_youths_are_found_under_either_key(core: CoreDriver) -> None:
    register(core, "ggd-groningen", youth(BSN_A), BSN_PARENT)
    register(core, "ggd-groningen", youth(BSN_B), BSN_PARENT)
    register(core, "ggd-groningen", WITHOUT_BSN)
    rotating = keyed(core, NEW, OLD)
    rotating.run(lambda s: move_youths(s, rotating.config, 1))
    ids = {y.key_id for y in youths(rotating)}
    assert ids == {rotating.config.keys.key_id, core.config.keys.key_id}  # half way

    for identity in (youth(BSN_A), youth(BSN_B), WITHOUT_BSN):
        assert find(rotating, identity) is not None
    # A registration, one by one and in bulk, matches the youth not yet rotated.
    assert register(rotating, "wij-groningen", youth(BSN_B), BSN_PARENT) == ("ggd-groningen",)
    csv = (
        "bsn;naam;geboortedatum;gemeente;kenmerk;bsn_ouder\n"
        f"{BSN_B};;01-05-2016;Groningen;JN-1;{BSN_PARENT}\n"
    )
    report = import_registrations(
        rotating.engine,
        rotating.config,
        "jeugdhulp-noord",
        read_registration_csv(io.StringIO(csv)),
        actor=rotating.institution("jeugdhulp-noord"),
        now=MONDAY,
    )
    assert report.accepted == 1 and report.refused == []
    assert len(youths(rotating)) == 3
    # A new sibling is linked under the parent's stored (old) digest: one family throughout.
    register(rotating, "wij-groningen", youth(BSN_C), BSN_PARENT)
    with Session(rotating.engine) as session:
        assert set(session.exec(select(YouthParent.parent_key)).all()) == {
            core.config.keys.bsn_digest(BSN_PARENT)
        }
    rotate(rotating)
    with Session(rotating.engine) as session:
        assert set(session.exec(select(YouthParent.parent_key)).all()) == {
            rotating.config.keys.bsn_digest(BSN_PARENT)
        }
        assert len(session.exec(select(YouthParent)).all()) == 3


def test_a_missing_old_key_gives_a_clear_error(core: CoreDriver) -> None:
    register(core, "ggd-groningen", youth(BSN_A))
    new_only = keyed(core, NEW)  # the old key dropped before the rotation ran

    state = status(new_only)
    assert state.unknown_keys == (core.config.keys.key_id,)
    with pytest.raises(SystemError_, match="VERWIJSINDEX_PREVIOUS_SECRET_KEYS"):
        rotate(new_only)
    [kid] = youths(new_only)
    with pytest.raises(SystemError_, match=f"sleutel {core.config.keys.key_id} is niet bekend"):
        age_of(new_only.config, kid, MONDAY.date())


def test_the_rules_use_the_decrypted_birth_date(core: CoreDriver, config: CoreConfig) -> None:
    born = date(2003, 3, 20)  # 23 on 2026-03-20: in MONDAY's month, after MONDAY
    register(core, "ggd-groningen", youth(BSN_A, born))
    [kid] = youths(core)
    assert kid.purge_month == date(2026, 3, 1)  # only the month is in clear
    assert age_of(config, kid, MONDAY.date()) == 22
    purged = core.run(lambda s: purge_adults(s, config, MONDAY))
    assert purged == 0  # the month has come, the birthday not yet
    on_the_day = MONDAY.replace(day=20)
    assert core.run(lambda s: purge_adults(s, config, on_the_day)) == 1


def test_rotation_reseals_the_slack_bot_tokens(core: CoreDriver) -> None:
    tokens = {"T0GGD0001": "xoxb-ggd-1-geheim", "T0JHN0001": "xoxb-jhn-2-geheim"}
    for team_id, token in tokens.items():
        install_slack(core, team_id, token)
    old_id = core.config.keys.key_id

    rotating = keyed(core, NEW, OLD)
    before = status(rotating)
    assert before.slack_tokens == {old_id: 2} and before.movable == 2
    assert before.old_keys == (old_id,)
    batches: list[int] = []
    rotate(rotating, batch_size=1, progress=batches.append)
    assert batches == [1, 1]  # one transaction per batch
    assert status(rotating).remaining == 0
    rows = installations(rotating)
    assert {sealed_key_id(row.bot_token_sealed) for row in rows} == {rotating.config.keys.key_id}
    with Session(core.engine) as session:
        [event] = session.exec(select(AuditEvent).where(AuditEvent.action == "keys-rotated")).all()
    assert event.details["slack_tokens"] == 2

    # The new key alone opens them; the old one no longer does.
    new_only = keyed(core, NEW).config.keys.ring
    assert {row.team_id: bot_token(new_only, row) for row in rows} == tokens
    for row in rows:
        with pytest.raises(SystemError_, match="is niet bekend"):
            bot_token(KeyRing.of(OLD), row)


def test_a_token_sealed_just_before_a_rotation_is_read_under_either_key(
    core: CoreDriver,
) -> None:
    install_slack(core, "T0GGD0001", "xoxb-ggd-1-geheim")
    rotating = keyed(core, NEW, OLD)
    install_slack(rotating, "T0JHN0001", "xoxb-jhn-2-geheim")  # written under the new key
    ring = rotating.config.keys.ring
    rows = installations(rotating)
    assert [sealed_key_id(row.bot_token_sealed) for row in rows] == [
        core.config.keys.key_id,
        rotating.config.keys.key_id,
    ]
    assert [bot_token(ring, row) for row in rows] == ["xoxb-ggd-1-geheim", "xoxb-jhn-2-geheim"]
    assert status(rotating).slack_tokens == {core.config.keys.key_id: 1}
