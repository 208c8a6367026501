"""Is the mail really from whom it says? Beyond the envelope check at RCPT, optionally:

* **DKIM** (``dkimpy``, RFC 6376): a valid signature whose ``d=`` domain is aligned with the
  From header's domain (relaxed alignment, as DMARC does: equal, or a parent domain).
* **Authentication-Results** (``authres``, RFC 8601) from a trusted upstream server, for
  regions whose MX checks DKIM/DMARC before relaying to us. Only the topmost header with the
  trusted authserv-id counts: anything below it was written by someone else (RFC 8601 §5).

And the From header must agree with the envelope sender's domain, so an allowed envelope cannot
carry a message that claims to come from elsewhere.

"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from typing import Any

log = logging.getLogger(__name__)

DnsLookup = Callable[..., bytes | None]


@dataclass(frozen=True)
class Verdict:
    authentic: bool
    reason: str = ""  # English, for the log


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip().strip(">").lower()


def aligned(signing_domain: str, from_domain: str) -> bool:
    signing_domain, from_domain = signing_domain.lower().rstrip("."), from_domain.lower()
    return from_domain == signing_domain or from_domain.endswith("." + signing_domain)


class MessageAuthenticator:
    def __init__(
        self,
        *,
        verify_dkim: bool = False,
        trusted_authserv_id: str | None = None,
        dns_lookup: DnsLookup | None = None,
    ):
        self.verify_dkim = verify_dkim
        self.trusted_authserv_id = trusted_authserv_id.lower() if trusted_authserv_id else None
        self.dns_lookup = dns_lookup

    @classmethod
    def from_settings(cls, settings: Any) -> MessageAuthenticator:
        return cls(
            verify_dkim=settings.verify_dkim, trusted_authserv_id=settings.trusted_authserv_id
        )

    def verify(self, raw: bytes, mail_from: str) -> Verdict:
        try:
            headers = BytesHeaderParser(policy=compat32).parsebytes(raw, headersonly=True)
            from_values = headers.get_all("From") or []
        except Exception:
            return Verdict(False, "headers unreadable")
        addresses = [a for _, a in getaddresses([str(v) for v in from_values]) if "@" in a]
        if len(addresses) != 1:
            return Verdict(False, "not exactly one From address")
        from_domain = _domain(addresses[0])
        if (
            mail_from
            and not aligned(_domain(mail_from), from_domain)
            and not aligned(from_domain, _domain(mail_from))
        ):
            return Verdict(False, "From header domain differs from the envelope sender")
        if self.trusted_authserv_id and self._upstream_passed(headers, from_domain):
            return Verdict(True, "upstream authentication results")
        if self.verify_dkim:
            return self._dkim(raw, from_domain)
        if self.trusted_authserv_id:
            return Verdict(False, "no passing result from the trusted upstream server")
        return Verdict(True, "envelope only")

    def _upstream_passed(self, headers: Any, from_domain: str) -> bool:
        import authres

        for value in headers.get_all("Authentication-Results") or []:
            try:
                parsed = authres.AuthenticationResultsHeader.parse(
                    "Authentication-Results: " + " ".join(str(value).split())
                )
            except Exception:
                continue
            if str(parsed.authserv_id).lower() != self.trusted_authserv_id:
                continue
            # The topmost header of the trusted server is the only one it wrote for us.
            for result in parsed.results:
                props = {(p.type, p.name): str(p.value) for p in result.properties}
                if result.method == "dmarc" and result.result == "pass":
                    return aligned(props.get(("header", "from"), ""), from_domain)
                if (
                    result.method == "dkim"
                    and result.result == "pass"
                    and aligned(props.get(("header", "d"), ""), from_domain)
                ):
                    return True
            return False
        return False

    def _dkim(self, raw: bytes, from_domain: str) -> Verdict:
        import dkim

        try:
            signatures = _dkim_domains(raw)
            if not signatures:
                return Verdict(False, "no DKIM signature")
            kwargs: dict[str, Any] = {"dnsfunc": self.dns_lookup} if self.dns_lookup else {}
            for index, domain in enumerate(signatures):
                if not aligned(domain, from_domain):
                    continue
                verifier = dkim.DKIM(raw)
                if verifier.verify(idx=index, **kwargs):
                    return Verdict(True, "DKIM signature aligned with From")
            return Verdict(False, "no valid DKIM signature aligned with From")
        except Exception as exc:  # dkimpy raises on malformed signatures and DNS trouble
            return Verdict(False, f"DKIM check failed ({type(exc).__name__})")


def _dkim_domains(raw: bytes) -> list[str]:
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw, headersonly=True)
    domains = []
    for value in headers.get_all("DKIM-Signature") or []:
        tags = dict(part.strip().split("=", 1) for part in str(value).split(";") if "=" in part)
        domains.append("".join(tags.get("d", "").split()))
    return domains
