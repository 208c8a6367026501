"""Runtime settings, from the environment (prefix ``VERWIJSINDEX_``) and an optional ``.env``.

Nothing is read at import time: ``serve`` and the CLI call :func:`load_settings` and pass the
result down; tests build their own ``Settings``.
"""

from __future__ import annotations

import logging
import os
import secrets
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated

from pydantic import Field, IPvAnyNetwork, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.keyring import KeyRing

log = logging.getLogger(__name__)

SECRET_FILE = Path(".verwijsindex-secret")
MIN_SECRET_LENGTH = 32
_WARNED_ABOUT: set[Path] = set()  # generated-key files already warned about


class Settings(BaseSettings):
    """CONTRACT §2. Slack's own variables keep their own names (no prefix)."""

    # env_ignore_empty: an empty value is unset, as a template's ``SLACK_BOT_TOKEN=`` line means
    # (deploy/verwijsindex.env.example); otherwise "" would count as a token, and a path line
    # as Path(".").
    model_config = SettingsConfigDict(
        env_prefix="VERWIJSINDEX_",
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
        populate_by_name=True,
    )

    # Where the defaults of the database, the outgoing maildir and the generated key live
    # (each may still be set on its own). The working folder when unset.
    data_dir: Path = Path(".")
    database_url: str = "sqlite:///verwijsindex.db"
    covenant: Path | None = None
    secret_key: SecretStr | None = None
    # Keys replaced by ``secret_key``, comma-separated: still read (never written) until
    # ``verwijsindex keys rotate`` has moved everything to the current key.
    previous_secret_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    mail_domain: str = "verwijsindex.localhost"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    relay_url: str = "maildir:./verzonden"
    # Sign outgoing mail with DKIM here (a PEM private key file), when the relay does not.
    dkim_key: Path | None = None
    dkim_selector: str = "verwijsindex"
    dkim_domain: str | None = None  # default: mail_domain
    imap_url: str | None = None
    # Larger mail is refused with 552 before it is stored (RFC 1870 SIZE is announced).
    max_message_size: int = 25 * 1024 * 1024
    # STARTTLS on the SMTP listener; SMTP AUTH is offered only after it (RFC 4954 §4).
    smtp_tls_cert: Path | None = None
    smtp_tls_key: Path | None = None
    # SMTP sessions at once, in total and from one peer address; beyond them the listener
    # answers 421 and closes (mail_gateway.smtp_limits).
    smtp_max_sessions: int = Field(default=100, ge=1)
    smtp_max_sessions_per_peer: int = Field(default=10, ge=1)
    # Seconds a session may wait for its next command (or, during DATA, for more bytes).
    smtp_idle_timeout: float = Field(default=60.0, gt=0)
    # The longest the 250 for a stored message is held while processing and delivery lag
    # behind (mail_gateway.flow, like Postfix's in_flow_delay); 0 answers at once.
    smtp_flow_max_delay: float = Field(default=1.0, ge=0)
    # Failed SMTP AUTH per peer address and per login within the window: each answered after
    # a delay doubling from smtp_auth_failure_delay (10 s at most), and at the last one the
    # listener answers 421 and refuses further attempts until failures leave the window.
    smtp_auth_max_failures: int = Field(default=5, ge=1)
    smtp_auth_failure_window: float = Field(default=900.0, gt=0)
    smtp_auth_failure_delay: float = Field(default=1.0, ge=0)
    # Sender authentication beyond the envelope: check DKIM signatures aligned with the From
    # domain, or trust Authentication-Results from this upstream server (authserv-id).
    verify_dkim: bool = False
    # A processing worker holds a message this long, renewing while it works; a worker that
    # died lets go of it after at most this long.
    processing_lease_seconds: float = 120.0
    # A delivery worker holds the notifications of its batch this long, renewing every third
    # of it while it sends; what a killed worker held goes out this long after it died.
    outbox_lease_seconds: float = Field(default=30.0, gt=0)
    trusted_authserv_id: str | None = None
    # Working days after placing a signal whose youth or parents were not (yet) informed before
    # its reporter is reminded, once (Jeugdwet 7.1.5; core.informing).
    informing_reminder_days: int = Field(default=5, ge=1, le=60)
    # The peers whose Authentication-Results (by ``trusted_authserv_id``) count: the region's MX
    # that relays to the listener, or the IMAP server the poller reads. Comma-separated
    # addresses or CIDR ranges; anyone can write such a header, so from any other peer it is
    # ignored (mail_gateway.authentication).
    trusted_relays: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=lambda: [ip_network("127.0.0.0/8"), ip_network("::1/128")]
    )
    # The Slack HTTP endpoint listens here; in production a TLS-terminating proxy in front of it
    # forwards Slack's requests (Slack only calls https:// URLs).
    slack_host: str = "127.0.0.1"
    slack_port: int = 3000
    # /healthz, /readyz and /metrics (core.ops_http); the Slack endpoint's server when both
    # addresses agree. Port 0: no such endpoint.
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    slack_api_url: str | None = None
    slack_signing_secret: SecretStr | None = Field(
        default=None, validation_alias="SLACK_SIGNING_SECRET"
    )
    slack_bot_token: SecretStr | None = Field(default=None, validation_alias="SLACK_BOT_TOKEN")
    slack_app_token: SecretStr | None = Field(default=None, validation_alias="SLACK_APP_TOKEN")
    # A distributed app (bot.installations): installed into many workspaces through Slack's
    # OAuth flow instead of running on one SLACK_BOT_TOKEN; the installations live in the
    # database. The redirect URL must be one the app lists (unset: the app's first one).
    slack_client_id: str | None = Field(default=None, validation_alias="SLACK_CLIENT_ID")
    slack_client_secret: SecretStr | None = Field(
        default=None, validation_alias="SLACK_CLIENT_SECRET"
    )
    slack_redirect_uri: str | None = Field(default=None, validation_alias="SLACK_REDIRECT_URI")
    secret_file: Path = SECRET_FILE
    templates_dir: Path | None = None

    @model_validator(mode="after")
    def _defaults_in_the_data_dir(self) -> Settings:
        chosen = self.model_fields_set
        if "database_url" not in chosen:
            self.database_url = f"sqlite:///{self.data_dir / 'verwijsindex.db'}"
        if "relay_url" not in chosen:
            self.relay_url = f"maildir:{self.data_dir}/verzonden"  # "maildir:./verzonden"
        if "secret_file" not in chosen:
            self.secret_file = self.data_dir / SECRET_FILE
        return self

    def make_data_dir(self) -> None:
        """Create ``data_dir`` (private) when it was set and does not exist yet: before the
        first file is written there (the generated key, the SQLite database)."""
        if "data_dir" in self.model_fields_set and not self.data_dir.exists():
            self.data_dir.mkdir(mode=0o700, parents=True)

    @field_validator("secret_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(f"must be at least {MIN_SECRET_LENGTH} characters")
        return value

    @field_validator("previous_secret_keys", "trusted_relays", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def covenant_path(self) -> Path:
        from core.covenant import bundled_covenant_path

        return self.covenant or bundled_covenant_path()

    def resolved_secret_key(self, *, generate: bool = True) -> bytes:
        """The key for BSN digests and identity encryption.

        When unset, a random key is generated once into ``secret_file`` so the data stays
        readable across restarts, with a loud warning: production must set its own key (and
        keep it; losing it makes every stored BSN unmatchable). ``generate=False`` writes no
        file: when there is none yet, a stand-in that opens nothing (:meth:`keyring`).
        """
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        if not generate and self.key_not_generated_yet:
            return secrets.token_urlsafe(48).encode()
        self.make_data_dir()
        return _generated_secret(self.secret_file).encode()

    @property
    def key_not_generated_yet(self) -> bool:
        """No key is set and none was generated yet: the first key use will write one."""
        return self.secret_key is None and not self.secret_file.exists()

    def keyring(self, *, generate: bool = True) -> KeyRing:
        """The current key and the previous ones (core.keyring). ``generate=False``: for a
        check that may still refuse to start, which must leave no new key file behind; the
        current key is then a stand-in when none was generated yet."""
        return KeyRing.of(
            self.resolved_secret_key(generate=generate),
            [key.get_secret_value().encode() for key in self.previous_secret_keys],
        )


def _generated_secret(path: Path) -> str:
    if path.exists():
        secret = path.read_text().strip()
    else:
        secret = secrets.token_urlsafe(48)
        # O_EXCL: two processes starting at once must not each write a different key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(secret + "\n")
    if path.resolve() not in _WARNED_ABOUT:  # once per process, not at every key derivation
        _WARNED_ABOUT.add(path.resolve())
        log.warning(
            "VERWIJSINDEX_SECRET_KEY is not set: using the generated key in %s. "
            "Production MUST set VERWIJSINDEX_SECRET_KEY (and back it up).",
            path,
        )
    return secret


def load_settings() -> Settings:
    return Settings()
