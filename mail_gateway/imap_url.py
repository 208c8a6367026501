"""``VERWIJSINDEX_IMAP_URL`` (CONTRACT §2): ``imap[s]://user:pass@host:port/FOLDER``.

* ``imaps://`` is IMAP over TLS (port 993 by default); ``imap://`` is plain IMAP (port 143),
  upgraded with STARTTLS when the URL says ``?starttls=true``.
* User and password are percent-decoded (``%40`` for an ``@`` in a login name); the folder is
  the path (percent-decoded, ``INBOX`` when empty).
* ``?mailbox=registratie`` (or ``signaal``) names the mailbox for mail that carries none of our
  addresses — for a folder that only receives, say, registrations at a region's own address.
  Without it such mail is refused (moved to ``Fout``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from mail_gateway.mailboxes import Mailbox

IMAP_PORT = 143
IMAPS_PORT = 993
DEFAULT_FOLDER = "INBOX"

# Mail without an address of ours can only sensibly mean one of these; a reply needs its token
# and postmaster is for people.
_DEFAULT_MAILBOXES = (Mailbox.REGISTRATION, Mailbox.SIGNAL)
_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class ImapAccount:
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    folder: str = DEFAULT_FOLDER
    tls: bool = False  # imaps: TLS from the first byte
    starttls: bool = False
    default_mailbox: Mailbox | None = None

    @property
    def cursor_key(self) -> str:
        """The ``ImapCursor.account``: one cursor per login, server and folder."""
        return f"{self.username}@{self.host}:{self.port}/{self.folder}"[:400]

    @property
    def where(self) -> str:
        """For the log: server and folder, not the login (often an e-mail address)."""
        return f"{self.host}:{self.port}/{self.folder}"


def parse_imap_url(url: str) -> ImapAccount:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("imap", "imaps") or not parts.hostname:
        raise ValueError("VERWIJSINDEX_IMAP_URL must be imap[s]://user:pass@host:port/FOLDER")
    if not parts.username:
        raise ValueError("VERWIJSINDEX_IMAP_URL needs a user name (imap[s]://user:pass@...)")
    query = parse_qs(parts.query)
    tls = parts.scheme == "imaps"
    starttls = query.get("starttls", ["false"])[0].lower() in _TRUE
    if tls and starttls:
        raise ValueError("VERWIJSINDEX_IMAP_URL: starttls is for imap://, imaps:// is TLS already")
    return ImapAccount(
        host=parts.hostname,
        port=parts.port or (IMAPS_PORT if tls else IMAP_PORT),
        username=unquote(parts.username),
        password=unquote(parts.password or ""),
        folder=unquote(parts.path.lstrip("/")) or DEFAULT_FOLDER,
        tls=tls,
        starttls=starttls,
        default_mailbox=_default_mailbox(query.get("mailbox", [""])[0]),
    )


def _default_mailbox(value: str) -> Mailbox | None:
    if not value:
        return None
    names = {m.value: m for m in _DEFAULT_MAILBOXES}
    mailbox = names.get(value.strip().lower())
    if mailbox is None:
        raise ValueError(
            "VERWIJSINDEX_IMAP_URL: mailbox= must be one of " + ", ".join(sorted(names))
        )
    return mailbox
