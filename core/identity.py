"""A youth's identity: BSN validation, keyed digests for matching, encrypted identity fields.

The BSN is never stored in clear (DOMAIN: Security). Matching uses an HMAC digest keyed with the
region's secret; the BSN and name are kept encrypted (AES-GCM) only so that a subject-access
report can be produced. A youth without BSN is identified by surname + date of birth + sex
(Jeugdwet 7.1.1.1), digested the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import unicodedata
from dataclasses import dataclass
from datetime import date

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from stdnum.exceptions import ValidationError
from stdnum.nl import bsn as stdnum_bsn

from core.errors import InvalidInput

MAX_AGE_YEARS = 23  # Jeugdwet 7.1.1.1: a "jeugdige" is under 23
SEXES = ("M", "V", "X")


def normalize_bsn(raw: str, *, field: str = "BSN") -> str:
    """Return the 9-digit BSN or raise InvalidInput with a Dutch reason.

    8-digit legacy numbers get a leading zero before the elfproef.
    """
    digits = stdnum_bsn.compact(raw or "")
    if not digits:
        raise InvalidInput("ontbreekt", field=field)
    if not digits.isdigit():
        raise InvalidInput("mag alleen cijfers bevatten", field=field)
    if len(digits) == 8:
        digits = "0" + digits
    if len(digits) != 9:
        raise InvalidInput("moet 9 cijfers hebben (of 8 met een voorloopnul)", field=field)
    try:
        return str(stdnum_bsn.validate(digits))
    except ValidationError:
        raise InvalidInput("is geen geldig BSN (elfproef klopt niet)", field=field) from None


def age_on(birth_date: date, day: date) -> int:
    years = day.year - birth_date.year
    if (day.month, day.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years


def twenty_third_birthday(birth_date: date) -> date:
    try:
        return birth_date.replace(year=birth_date.year + MAX_AGE_YEARS)
    except ValueError:  # born on 29 February: the birthday falls on 1 March
        return date(birth_date.year + MAX_AGE_YEARS, 3, 1)


def check_youth_age(birth_date: date, today: date, *, field: str = "Geboortedatum") -> None:
    if birth_date > today:
        raise InvalidInput("ligt in de toekomst", field=field)
    if today >= twenty_third_birthday(birth_date):
        raise InvalidInput(
            "de jongere is 23 jaar of ouder; de verwijsindex is alleen voor jeugdigen onder 23",
            field=field,
        )


def _fold(text: str) -> str:
    """Case-, accent- and whitespace-insensitive form of a surname for the substitute key."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(bare.casefold().split())


@dataclass(frozen=True)
class YouthIdentity:
    """What the edge parsed: either a valid BSN, or surname + birth date + sex."""

    birth_date: date
    bsn: str | None = None
    surname: str | None = None
    sex: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if self.bsn is None and not (self.surname and self.sex):
            raise InvalidInput(
                "geef een BSN, of zonder BSN achternaam, geboortedatum en geslacht", field="BSN"
            )
        if self.sex is not None and self.sex not in SEXES:
            raise InvalidInput("moet M, V of X zijn", field="Geslacht")


class IdentityKeys:
    """Digests and encryption keyed by the region's secret (derived with HKDF per purpose)."""

    def __init__(self, secret: bytes):
        self._digest_key = _derive(secret, b"verwijsindex bsn digest v1")
        self._aead = AESGCM(_derive(secret, b"verwijsindex identity encryption v1"))

    def bsn_digest(self, bsn: str) -> str:
        return self._digest("bsn:" + bsn)

    def identity_key(self, identity: YouthIdentity) -> str:
        if identity.bsn is not None:
            return self.bsn_digest(identity.bsn)
        assert identity.surname is not None and identity.sex is not None
        return self._digest(
            f"alt:{_fold(identity.surname)}|{identity.birth_date.isoformat()}|{identity.sex}"
        )

    def _digest(self, text: str) -> str:
        return hmac.new(self._digest_key, text.encode(), hashlib.sha256).hexdigest()

    def encrypt(self, plaintext: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plaintext.encode(), None)

    def decrypt(self, ciphertext: bytes) -> str:
        return self._aead.decrypt(ciphertext[:12], ciphertext[12:], None).decode()


def _derive(secret: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)
