"""A youth's identity: BSN validation, keyed digests for matching, encrypted identity fields.

The BSN is never stored in clear (DOMAIN: Security). Matching uses an HMAC digest keyed with the
region's key; the BSN and name are kept encrypted (AES-GCM) only so that a subject-access
report can be produced, the birth date encrypted too (the rules decrypt it for the age). A youth
without BSN is identified by surname + date of birth + sex (Jeugdwet 7.1.1.1), digested the same
way. Digests and sealed values name their key (core.keyring), so a key can be rotated.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from stdnum.nl import bsn

from core.errors import InvalidInput
from core.free_text import check_free_text
from core.keyring import KeyRing, SecretKey
from core.sealing import IDENTITY_PURPOSE, Sealer

MAX_AGE_YEARS = 23  # Jeugdwet 7.1.1.1: a "jeugdige" is under 23
SEXES = ("M", "V", "X")


_BSN_SEPARATORS = re.compile(r"[\s.\-]+")


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


_DIGIT_RUN = re.compile(r"[0-9](?:[\s.\-]?[0-9])*")


def check_no_bsn(text: str | None, field: str, bsns: Iterable[str]) -> None:
    """Refuse ``text`` (a kenmerk) when it carries one of ``bsns`` (the youth's, a parent's) or
    any number of nine (or eight) digits that passes the elfproef: a kenmerk goes into every
    notification to its institution and every receipt, where a BSN must never be (DOMAIN:
    Content-free), and a number that passes the elfproef may be anyone's BSN."""
    if not text:
        return
    numbers = [b for b in bsns if b]
    for run in _DIGIT_RUN.findall(text):
        digits = _BSN_SEPARATORS.sub("", run)
        # A number of its own (not part of a longer one) as a BSN is written: 9 digits, or 8.
        bsn_like = len(digits) in (8, 9) and passes_elfproef(digits.zfill(9))
        if bsn_like or any(b in digits or (b.startswith("0") and b[1:] in digits) for b in numbers):
            raise InvalidInput(
                "bevat een BSN (of een nummer dat de elfproef doorstaat); gebruik een kenmerk "
                "uit uw eigen systeem zonder BSN",
                field=field,
            )


def check_reference_text(
    reference: str | None, identity: YouthIdentity, parent_bsns: tuple[str, ...]
) -> None:
    """What any kenmerk (of a registration or a signal) may not hold: bidirectional or control
    characters, or the youth's or a parent's BSN."""
    check_free_text(reference, "Kenmerk")
    check_no_bsn(reference, "Kenmerk", (identity.bsn or "", *parent_bsns))


def passes_elfproef(digits: str) -> bool:
    """The BSN's check (python-stdnum's ``nl.bsn``: weights 9..2 and -1, the sum divisible by
    11), on exactly nine ASCII digits, never all zeros."""
    if len(digits) != 9 or not (digits.isascii() and digits.isdigit()) or digits == "000000000":
        return False
    return bool(bsn.is_valid(digits))


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


def purge_month(birth_date: date) -> date:
    """The first day of the month of the 23rd birthday: the only trace of the birth date kept
    in clear, so the purge sweep finds its candidates without decrypting every youth."""
    return twenty_third_birthday(birth_date).replace(day=1)


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
        check_free_text(surname, "Achternaam")
        check_free_text(self.name, "Naam")
        object.__setattr__(self, "surname", surname)
        object.__setattr__(self, "sex", sex)
        if self.bsn is None and not (surname and sex):
            raise InvalidInput(
                "geef een BSN, of zonder BSN achternaam, geboortedatum en geslacht", field="BSN"
            )
        if sex is not None and sex not in SEXES:
            raise InvalidInput("moet M, V of X zijn", field="Geslacht")


class IdentityKeys:
    """Digests and encryption keyed by the region's key ring (derived with HKDF per purpose).

    Everything is written under the ring's current key. Look-ups use :meth:`identity_keys` /
    :meth:`bsn_digests`, the digests under *every* ring key, so a youth or parent digested under
    the previous key is still found while ``verwijsindex keys rotate`` moves it.
    """

    def __init__(self, ring: KeyRing | bytes):
        self.ring = ring if isinstance(ring, KeyRing) else KeyRing.of(ring)
        self._sealer = Sealer(
            self.ring,
            IDENTITY_PURPOSE,
            unreadable="versleutelde identiteitsgegevens zijn niet te lezen met de sleutel van de "
            "regio",
        )
        self._digest_keys: dict[str, bytes] = {}

    @property
    def key_id(self) -> str:
        """The id of the key everything new is written under."""
        return self.ring.current.id

    def bsn_digest(self, bsn: str, key: SecretKey | None = None) -> str:
        return self._digest("bsn:" + normalize_bsn(bsn), key)

    def normalized_bsn_digest(self, bsn: str, key: SecretKey | None = None) -> str:
        """:meth:`bsn_digest` of a BSN that :func:`normalize_bsn` returned (so it is checked
        already): the same digest, without a second elfproef."""
        return self._digest("bsn:" + bsn, key)

    def bsn_digests(self, bsn: str) -> list[str]:
        """The digest of a normalised BSN under every ring key, the current key's first."""
        return [self.normalized_bsn_digest(bsn, key) for key in self.ring.keys]

    def identity_key(self, identity: YouthIdentity, key: SecretKey | None = None) -> str:
        if identity.bsn is not None:
            # YouthIdentity normalised and checked its BSN when it was made.
            return self.normalized_bsn_digest(identity.bsn, key)
        substitute = substitute_identity(identity)
        assert substitute is not None
        return self.substitute_digest(substitute, identity.birth_date, key)

    def identity_keys(self, identity: YouthIdentity) -> list[str]:
        """:meth:`identity_key` under every ring key, the current key's first."""
        return [self.identity_key(identity, key) for key in self.ring.keys]

    def substitute_digest(
        self, substitute: str, birth_date: date, key: SecretKey | None = None
    ) -> str:
        """The identity key of a youth without BSN from its :func:`substitute_identity`."""
        folded_surname, sex = substitute.rsplit("|", 1)
        return self._digest(f"alt:{folded_surname}|{birth_date.isoformat()}|{sex}", key)

    def _digest(self, text: str, key: SecretKey | None) -> str:
        key = key or self.ring.current
        digest_key = self._digest_keys.get(key.id)
        if digest_key is None:  # HKDF once per key, not per digest
            digest_key = self._digest_keys[key.id] = key.derive(b"verwijsindex bsn digest v1")
        return hmac.new(digest_key, text.encode(), hashlib.sha256).hexdigest()

    def encrypt(self, plaintext: str) -> bytes:
        return self._sealer.seal(plaintext.encode())

    def decrypt(self, ciphertext: bytes) -> str:
        return self._sealer.open(ciphertext).decode()

    def encrypt_date(self, day: date) -> bytes:
        return self.encrypt(day.isoformat())

    def decrypt_date(self, ciphertext: bytes) -> date:
        return date.fromisoformat(self.decrypt(ciphertext))

    def is_current(self, ciphertext: bytes) -> bool:
        return self._sealer.is_current(ciphertext)

    def reencrypt(self, ciphertext: bytes) -> bytes:
        """The same value under the current key (unchanged when it is under it already)."""
        return self._sealer.reseal(ciphertext)


def substitute_identity(identity: YouthIdentity) -> str | None:
    """What the identity key of a youth without BSN is made of besides the birth date (folded
    surname and sex), stored encrypted so that a key rotation can make that digest again."""
    if identity.bsn is not None:
        return None
    assert identity.surname is not None and identity.sex is not None
    return f"{_fold(identity.surname)}|{identity.sex}"
