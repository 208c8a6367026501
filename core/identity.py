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
import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.errors import InvalidInput, SystemError_

MAX_AGE_YEARS = 23  # Jeugdwet 7.1.1.1: a "jeugdige" is under 23
SEXES = ("M", "V", "X")


_BSN_SEPARATORS = re.compile(r"[\s.\-]+")
_ELFPROEF_WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, -1)
_ELFPROEF_OFFSET = ord("0") * sum(_ELFPROEF_WEIGHTS)


def normalize_bsn(raw: str, *, field: str = "BSN") -> str:
    """Return the 9-digit BSN or raise InvalidInput with a Dutch reason.

    Spaces, dots and dashes are ignored; 8-digit legacy numbers get a leading zero before the
    elfproef. Nothing else is padded: a 7-digit number is a typing error, not a BSN.
    """
    digits = _BSN_SEPARATORS.sub("", raw or "")
    if not digits:
        raise InvalidInput("ontbreekt", field=field)
    if not (digits.isascii() and digits.isdigit()):  # only 0-9, not '²' or Arabic-Indic
        raise InvalidInput("mag alleen cijfers bevatten", field=field)
    if len(digits) == 8:
        digits = "0" + digits
    if len(digits) != 9:
        raise InvalidInput("moet 9 cijfers hebben (of 8 met een voorloopnul)", field=field)
    if not passes_elfproef(digits):
        raise InvalidInput("is geen geldig BSN (elfproef klopt niet)", field=field)
    return digits


def passes_elfproef(digits: str) -> bool:
    """The BSN's check: weights 9..2 and -1, the sum divisible by 11 (and not all zeros)."""
    if len(digits) != 9 or not (digits.isascii() and digits.isdigit()) or digits == "000000000":
        return False
    # The weighted sum over the ASCII codes, less the codes' offset (48 per weight unit).
    c = digits.encode("ascii")
    total = (
        (9 * c[0] + 8 * c[1] + 7 * c[2] + 6 * c[3] + 5 * c[4] + 4 * c[5] + 3 * c[6] + 2 * c[7])
        - c[8]
        - _ELFPROEF_OFFSET
    )
    return total % 11 == 0


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
        # Normalised here, so that every digest of the same youth is the same whatever the
        # caller passed ('11122237' and '011122237' are one BSN).
        if self.bsn is not None:
            object.__setattr__(self, "bsn", normalize_bsn(self.bsn))
        surname = (self.surname or "").strip() or None
        sex = (self.sex or "").strip().upper() or None
        object.__setattr__(self, "surname", surname)
        object.__setattr__(self, "sex", sex)
        if self.bsn is None and not (surname and sex):
            raise InvalidInput(
                "geef een BSN, of zonder BSN achternaam, geboortedatum en geslacht", field="BSN"
            )
        if sex is not None and sex not in SEXES:
            raise InvalidInput("moet M, V of X zijn", field="Geslacht")


class IdentityKeys:
    """Digests and encryption keyed by the region's secret (derived with HKDF per purpose)."""

    def __init__(self, secret: bytes):
        self._digest_key = _derive(secret, b"verwijsindex bsn digest v1")
        self._aead = AESGCM(_derive(secret, b"verwijsindex identity encryption v1"))

    def bsn_digest(self, bsn: str) -> str:
        return self._digest("bsn:" + normalize_bsn(bsn))

    def normalized_bsn_digest(self, bsn: str) -> str:
        """:meth:`bsn_digest` of a BSN that :func:`normalize_bsn` returned (so it is checked
        already): the same digest, without a second elfproef."""
        return self._digest("bsn:" + bsn)

    def identity_key(self, identity: YouthIdentity) -> str:
        if identity.bsn is not None:
            # YouthIdentity normalised and checked its BSN when it was made.
            return self.normalized_bsn_digest(identity.bsn)
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
        try:
            return self._aead.decrypt(ciphertext[:12], ciphertext[12:], None).decode()
        except InvalidTag as exc:  # another region's key, or the bytes were altered
            raise SystemError_(
                "versleutelde identiteitsgegevens zijn niet te lezen met de sleutel van de regio"
            ) from exc


def _derive(secret: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)
