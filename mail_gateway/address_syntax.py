"""The plain forms of RFC 5322 addresses, as patterns: what the gateway may read or write
without the e-mail package's full parser (the listener's paths, a received mail's From and
To, a sent mail's headers). Anything these do not match goes to the full parser."""

from __future__ import annotations

# RFC 5322 §3.2.3: the characters of an atom.
ATEXT_CHARS = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~-"  # "-" last: add to a class in front
ATOM = rf"[{ATEXT_CHARS}]+"
# local@domain: a dot-atom local part, a domain of letter-digit-hyphen labels.
ADDR_SPEC = rf"{ATOM}(?:\.{ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
