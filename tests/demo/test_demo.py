"""``verwijsindex demo`` (CONTRACT §1) runs the whole scenario through the real transports and
ends with a summary of every notification; it prints nothing of the youth's identity."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from demo.scenario import BIRTH_DATE, BSN

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_plays_every_step_and_sums_up_every_notification(tmp_path: Path) -> None:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("VERWIJSINDEX_", "SLACK_"))
    }
    result = subprocess.run(
        [sys.executable, "-m", "cli", "demo", "--keep", str(tmp_path / "demo")],
        cwd=ROOT,
        env={**environment, "COLUMNS": "160"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = result.stdout
    assert result.returncode == 0, result.stdout + result.stderr
    for step in range(1, 7):
        assert re.search(rf"^{step}\. ", output, re.MULTILINE), f"step {step} missing"
    assert "noemt GGD Groningen als betrokkene: True" in output
    assert "volgens regel 'stad-groningen-wij'" in output
    assert "drukt op 'Contact gelegd' → HTTP 200" in output
    for kind in (
        "ontvangstbevestiging",
        "nieuwe-betrokkenheid",
        "signaal",
        "coordinatie-toegewezen",
        "match",
        "coordinatie-geaccepteerd",
        "afwezigheid",
    ):
        assert kind in output
    assert "Slack DM p.bakker@ggd-groningen.example" in output, "the stand-in gets the DMs"
    summary = re.search(r"(\d+) meldingen, (\d+) verstuurd", output)
    assert summary is not None and summary.group(1) == summary.group(2)
    assert int(summary.group(1)) >= 25
    assert BSN not in output and BIRTH_DATE not in output
    sent_mail = list((tmp_path / "demo" / "verzonden" / "new").iterdir())
    assert sent_mail and all(BSN.encode() not in path.read_bytes() for path in sent_mail)
