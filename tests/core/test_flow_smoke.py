from __future__ import annotations

from core.registration import RegisterYouth, register_youth
from core.signals import PlaceSignal, place_signal
from tests.core.conftest import MONDAY, CoreDriver, youth


def test_two_registrations_two_signals_make_match_and_coordination(core: CoreDriver) -> None:
    cfg = core.config
    ggd = core.institution("ggd-groningen")
    wij = core.institution("wij-groningen")
    out1 = core.run(lambda s: register_youth(
        RegisterYouth(youth(), "Groningen", "GGD-1"), session=s, config=cfg, actor=ggd, now=MONDAY))
    assert out1.new_involvement and out1.others_involved == ()
    out2 = core.run(lambda s: register_youth(
        RegisterYouth(youth(), "Groningen", "WIJ-9"), session=s, config=cfg, actor=wij, now=MONDAY))
    assert [i.id for i in out2.others_involved] == ["ggd-groningen"]
    assert len(core.outbox("nieuwe-betrokkenheid")) == 1
    a = core.professional("a.devries@ggd-groningen.example")
    b = core.professional("s.jansen@wij-groningen.example")
    s1 = core.run(lambda s: place_signal(PlaceSignal(youth(), "Groningen", "laag", "ja"),
                                        session=s, config=cfg, actor=a, now=MONDAY))
    assert s1.match_number is None and s1.coordination_number is not None
    s2 = core.run(lambda s: place_signal(PlaceSignal(youth(), "Groningen", "urgent", "ja"),
                                        session=s, config=cfg, actor=b, now=MONDAY))
    assert s2.match_number is not None
    kinds = [m.kind for m in core.outbox()]
    print(kinds)
    assert "match" in kinds and "coordinatie-toegewezen" in kinds
