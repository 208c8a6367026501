"""Is the mail really from whom it says? One decision for every mailbox and both transports.

:data:`MAILBOX_REQUIREMENTS` says, per mailbox, what a message must prove before it is stored;
:meth:`MessageAuthenticator.authenticate` decides it, for the SMTP listener (at DATA) and the
IMAP poller alike. Beyond the envelope check at RCPT (``mail_gateway.senders``), a mailbox whose
mail acts for its sender (registrations, signals, replies that accept or hand over a
coordination) takes it only with one of:

* an **SMTP AUTH login** of the sender's own institution (RFC 4954), for automatic couplings;
* **DKIM** (``dkimpy``, RFC 6376), when ``VERWIJSINDEX_VERIFY_DKIM`` is on: a valid signature
  whose ``d=`` domain is aligned with the From header's domain;
* **Authentication-Results** (``authres``, RFC 8601) from a trusted upstream server, when
  ``VERWIJSINDEX_TRUSTED_AUTHSERV_ID`` is set, for regions whose MX checks DKIM/DMARC before
  relaying to us. Only the topmost header with the trusted authserv-id counts: anything below
  it was written by someone else (RFC 8601 §5). And only mail that reached us *from* that
  upstream server may carry it: anybody can write such a header, so from a peer outside
  ``VERWIJSINDEX_TRUSTED_RELAYS`` it is ignored and the mail is judged as unsigned
  (RFC 8601 §5: a receiver trusts the results only from servers it knows to be its own);
* neither configured: the envelope alone (the RCPT check), as before.

In every case but a login the From header must agree with the envelope sender's domain, so an
allowed envelope cannot carry a message that claims to come from elsewhere.

**Alignment** is DMARC's relaxed alignment (RFC 7489 §3.1): the *organisational* domains must
be equal, found with the Public Suffix List (``publicsuffixlist``, RFC 7489 §3.2). So
``d=mail.ggd.example`` aligns with ``From: ggd.example`` and the reverse, while a public suffix
(``d=nl``, ``d=co.uk``) has no organisational domain and aligns with nothing.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from enum import StrEnum
from ipaddress import IPv4Network, IPv6Address, IPv6Network, ip_address
from types import MappingProxyType
from typing import Any

from publicsuffixlist import PublicSuffixList

from mail_gateway.mailboxes import Mailbox

log = logging.getLogger(__name__)

DnsLookup = Callable[..., bytes | None]
Network = IPv4Network | IPv6Network


class Requirement(StrEnum):
    """What a message to a mailbox must prove about its sender before it is stored."""

    ANYONE = "anyone"  # kept for an administrator, never acted on
    AUTHENTIC_SENDER = "authentic-sender"  # acts for its sender: a login, or DKIM / upstream


# The one table every intake path consults (STYLE: no per-mailbox decision in a handler).
MAILBOX_REQUIREMENTS: Mapping[Mailbox, Requirement] = MappingProxyType(
    {
        Mailbox.REGISTRATION: Requirement.AUTHENTIC_SENDER,
        Mailbox.SIGNAL: Requirement.AUTHENTIC_SENDER,
        # A reply accepts, declines or hands over a coordination, or confirms contact: it changes
        # state just as a registration does, so its sender is proven the same way. A delivery
        # report (null sender) is judged by its From header like any other mail; refusing one
        # at DATA sends no bounce (RFC 5321 §6.1: never a report about a null-sender message).
        Mailbox.REPLY: Requirement.AUTHENTIC_SENDER,
        # RFC 5321 §4.5.1: postmaster takes mail from anyone; it is kept, never acted on.
        Mailbox.POSTMASTER: Requirement.ANYONE,
    }
)


@dataclass(frozen=True)
class Verdict:
    authentic: bool
    reason: str = ""  # English, for the log


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip().strip(">").lower()


@functools.cache
def _public_suffixes() -> PublicSuffixList:
    # The list bundled with the package (kept current by its releases); read on first use, not
    # at import, and never fetched from the network at run time.
    return PublicSuffixList()


def organizational_domain(domain: str) -> str | None:
    """RFC 7489 §3.2: the public suffix plus one label (``mail.ggd.example`` → ``ggd.example``,
    ``x.ggd.co.uk`` → ``ggd.co.uk``); None for a public suffix itself (``nl``, ``co.uk``)."""
    name = domain.strip().rstrip(".").lower()
    if not name:
        return None
    found = _public_suffixes().privatesuffix(name)
    return str(found).lower() if found else None


def aligned(signing_domain: str, from_domain: str) -> bool:
    """DMARC relaxed alignment (RFC 7489 §3.1.1): equal organisational domains."""
    organisation = organizational_domain(signing_domain)
    return organisation is not None and organisation == organizational_domain(from_domain)


def peer_trusted(peer: str | None, trusted_relays: Sequence[Network]) -> bool:
    """Whether the connected peer's address lies in one of ``trusted_relays``."""
    if not peer:
        return False
    try:
        address = ip_address(peer.split("%", 1)[0])  # an IPv6 zone id is no part of the address
    except ValueError:
        return False
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
    return any(address in network for network in trusted_relays)


class MessageAuthenticator:
    def __init__(
        self,
        *,
        verify_dkim: bool = False,
        trusted_authserv_id: str | None = None,
        trusted_relays: Sequence[Network] = (),
        dns_lookup: DnsLookup | None = None,
    ):
        self.verify_dkim = verify_dkim
        self.trusted_authserv_id = trusted_authserv_id.lower() if trusted_authserv_id else None
        self.trusted_relays = tuple(trusted_relays)
        self.dns_lookup = dns_lookup

    @classmethod
    def from_settings(cls, settings: Any) -> MessageAuthenticator:
        return cls(
            verify_dkim=settings.verify_dkim,
            trusted_authserv_id=settings.trusted_authserv_id,
            trusted_relays=settings.trusted_relays,
        )

    def authenticate(
        self,
        mailbox: Mailbox,
        raw: bytes,
        mail_from: str,
        *,
        sender_institution: str | None,
        authenticated_as: str | None,
        peer: str | None,
    ) -> Verdict:
        """The decision for a message to ``mailbox``: ``sender_institution`` is whom the RCPT
        check found the sender to speak for, ``authenticated_as`` the SMTP AUTH login (if any),
        ``peer`` the address of the server that handed us the message."""
        if MAILBOX_REQUIREMENTS[mailbox] is Requirement.ANYONE:
            return Verdict(True, f"{mailbox.value} takes mail from anyone")
        if authenticated_as is not None and authenticated_as == sender_institution:
            # The login proves the institution; a login of one institution proves nothing about
            # mail that claims to be another's, which then needs its own proof below.
            return Verdict(True, "SMTP AUTH login of the sender's institution")
        return self.verify(raw, mail_from, peer=peer)

    def verify(self, raw: bytes, mail_from: str, *, peer: str | None) -> Verdict:
        try:
            headers = BytesHeaderParser(policy=compat32).parsebytes(raw, headersonly=True)
            from_values = headers.get_all("From") or []
        except Exception:
            return Verdict(False, "headers unreadable")
        addresses = [a for _, a in getaddresses([str(v) for v in from_values]) if "@" in a]
        if len(addresses) != 1:
            return Verdict(False, "not exactly one From address")
        from_domain = _domain(addresses[0])
        if mail_from and not aligned(_domain(mail_from), from_domain):
            return Verdict(False, "From header domain differs from the envelope sender")
        upstream = self.trusted_authserv_id is not None and peer_trusted(peer, self.trusted_relays)
        if upstream and self._upstream_passed(headers, from_domain):
            return Verdict(True, "upstream authentication results")
        if self.verify_dkim:
            return self._dkim(raw, from_domain)
        if self.trusted_authserv_id and not upstream:
            return Verdict(False, "peer is no trusted relay: its Authentication-Results ignored")
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
