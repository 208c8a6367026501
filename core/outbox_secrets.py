"""Secrets a notification carries to its recipient (a Slack link code), sealed in its outbox row.

A mail that must carry a secret cannot keep it in clear in the outbox until (and after) it is
sent: a copy of the database would hold live codes. The command seals such values into one
context entry (:func:`sealed_context`, under the region's key ring with a purpose of their own);
the mail delivery worker opens them only to render the mail (:func:`opened_context`); and the
outbox drops the entry when the row is sent or dead-lettered (``core.outbox``, ``SEALED_KEY``),
so no copy is left once it cannot be delivered any more. A dead letter put back in the queue
after that (``outbox retry``) cannot be rendered and is a dead letter again: a link code is asked
for anew (it lives 15 minutes anyway). Key rotation leaves these values alone for the same reason:
a row waits minutes, not the weeks a rotation may take; one whose key was dropped meanwhile
cannot be rendered and is dead-lettered.

Only mail carries sealed values (the Slack delivery worker does not open them): a secret that
proves a mailbox never goes to a Slack account.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from core.keyring import KeyRing
from core.outbox import SEALED_KEY
from core.sealing import OUTBOX_SECRET_PURPOSE, Sealer


def _sealer(ring: KeyRing) -> Sealer:
    return Sealer(
        ring,
        OUTBOX_SECRET_PURPOSE,
        unreadable="een versleuteld deel van een bericht is niet te lezen met de sleutel van de "
        "regio",
    )


def sealed_context(ring: KeyRing, values: dict[str, str]) -> dict[str, str]:
    """The context entry that carries ``values`` sealed; the templates see them as keys of
    their own once :func:`opened_context` has opened it."""
    sealed = _sealer(ring).seal(json.dumps(values, sort_keys=True).encode())
    return {SEALED_KEY: base64.b64encode(sealed).decode("ascii")}


def opened_context(ring: KeyRing, context: dict[str, Any]) -> dict[str, Any]:
    """``context`` with its sealed values opened in place of the sealed entry (unchanged when it
    has none)."""
    sealed = context.get(SEALED_KEY)
    if sealed is None:
        return context
    values = json.loads(_sealer(ring).open(base64.b64decode(sealed)))
    opened = {key: value for key, value in context.items() if key != SEALED_KEY}
    opened.update(values)
    return opened
