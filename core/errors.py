"""One error tree for the whole core.

    DomainError                 base; ``code`` is stable, ``message`` is Dutch and safe to show
    ├── UserError               the request cannot be honoured as asked
    │   ├── InvalidInput        a field is missing or malformed (``field`` names it)
    │   ├── NotAllowed          the actor lacks the role, team permission or relation
    │   ├── NotFound            the referenced object does not exist (or is not visible)
    │   └── Conflict            the state forbids it (already accepted, already withdrawn, ...)
    └── SystemError_            our fault: configuration, database, a bug; details are logged

Transports map these in one table (SMTP reply codes, Slack ephemeral messages, CLI exit codes)
and never show anything but ``message`` to a user.
"""

from __future__ import annotations


class DomainError(Exception):
    code = "domain-error"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class UserError(DomainError):
    code = "user-error"


class InvalidInput(UserError):
    code = "invalid-input"


class NotAllowed(UserError):
    code = "not-allowed"


class NotFound(UserError):
    code = "not-found"


class Conflict(UserError):
    code = "conflict"


class SystemError_(DomainError):
    code = "system-error"
