"""The privacy rule, checked on the wire: no Web API call and no answer the app sends carries a
test youth's BSN, name or date of birth (DOMAIN: Content-free). Forms are the exception: a modal
the app opens holds the fields the user is filling in."""

from __future__ import annotations

import json
from datetime import date

from tests.bot.fake_slack_api import FakeSlackApi

FORM_METHODS = ("views.open", "views.update", "views.push")


def identity_needles(bsns: list[str], births: list[date], names: list[str]) -> list[str]:
    needles = list(bsns) + [f"{b[:3]} {b[3:6]} {b[6:]}" for b in bsns] + list(names)
    for birth in births:
        needles += [
            birth.isoformat(),
            f"{birth.day:02d}-{birth.month:02d}-{birth.year}",
            f"{birth.day}-{birth.month}-{birth.year}",
        ]
    return needles


def assert_no_identity(api: FakeSlackApi, needles: list[str], *, extra: list[str] = ()) -> int:
    """Scan every recorded call (and ``extra`` texts); returns how many were scanned."""
    scanned = 0
    texts = []
    for call in api.calls:
        if call.method in FORM_METHODS:
            continue
        texts.append((call.method, json.dumps(call.args, ensure_ascii=False)))
    texts += [("extra", text) for text in extra]
    for origin, text in texts:
        scanned += 1
        for needle in needles:
            assert needle not in text, f"{origin} carries a youth's identity ({needle!r})"
    return scanned
