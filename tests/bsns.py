"""Valid test BSNs (they pass the elfproef) for tests and benchmarks that need many youths."""

from __future__ import annotations

# Every BSN handed out, for the suite's privacy guard (tests/privacy_guard.py) to look for.
ISSUED: set[str] = set()


def bsn_from_prefix(prefix: int) -> str | None:
    """The valid BSN with these first 8 digits, if there is one (the check digit may be 10)."""
    digits = f"{prefix:08d}"
    total = sum(int(d) * w for d, w in zip(digits, range(9, 1, -1), strict=True))
    check = total % 11
    return None if check == 10 else digits + str(check)


def valid_bsns(count: int, start_prefix: int = 20_000_000) -> list[str]:
    found: list[str] = []
    prefix = start_prefix
    while len(found) < count:
        bsn = bsn_from_prefix(prefix)
        if bsn is not None and bsn != "000000000":
            found.append(bsn)
        prefix += 1
    ISSUED.update(found)
    return found
