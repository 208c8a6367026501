"""A youth's identity (DOMAIN: Glossary, Age, Security): the BSN and its elfproef, the keyed
digest used for matching, the encrypted identity fields, the substitute identity of a youth
without BSN, and the age limit of the Jeugdwet (under 23)."""

from __future__ import annotations

from datetime import date

import pytest

from core.errors import InvalidInput, SystemError_
from core.identity import (
    IdentityKeys,
    YouthIdentity,
    age_on,
    check_youth_age,
    normalize_bsn,
    passes_elfproef,
    twenty_third_birthday,
)
from tests.core.conftest import BSN_A, BSN_B, BSN_C, BSN_PARENT

SECRET = b"a-region-secret-of-sufficient-length-0123456789"
OTHER_SECRET = b"another-region-secret-of-sufficient-length-9876"

# An 8-digit legacy number whose 0-padded 9-digit form passes the elfproef:
# 0*9 + 1*8 + 1*7 + 1*6 + 2*5 + 2*4 + 2*3 + 3*2 - 7*1 = 44, divisible by 11.
LEGACY_8_DIGITS = "11122237"
# A 7-digit number whose 00-padded form would pass the elfproef: still not a BSN.
SEVEN_DIGITS_PADDABLE = "1234511"


# --- BSN: elfproef, length, characters ---------------------------------------------------------


@pytest.mark.parametrize("bsn", [BSN_A, BSN_B, BSN_C, BSN_PARENT])
def test_bsn_passing_the_elfproef_is_accepted_unchanged(bsn: str) -> None:
    assert passes_elfproef(bsn)
    assert normalize_bsn(bsn) == bsn


@pytest.mark.parametrize(
    "bsn",
    [
        "111222334",  # last digit off by one
        "123456789",  # the classic typing example: sum 147, not divisible by 11
        "999999999",
        "111222343",  # two digits swapped
        "000000000",  # sum 0 is divisible by 11, but no BSN is all zeros
    ],
)
def test_bsn_failing_the_elfproef_is_refused(bsn: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_bsn(bsn)
    assert caught.value.field == "BSN"
    assert "elfproef" in caught.value.message


def test_eight_digit_bsn_gets_a_leading_zero() -> None:
    assert passes_elfproef("0" + LEGACY_8_DIGITS)
    assert normalize_bsn(LEGACY_8_DIGITS) == "0" + LEGACY_8_DIGITS


def test_eight_digit_bsn_whose_padded_form_fails_the_elfproef_is_refused() -> None:
    # '011122233': 0+8+7+6+10+8+6+6-3 = 48, not divisible by 11.
    with pytest.raises(InvalidInput, match="elfproef"):
        normalize_bsn("11122233")


@pytest.mark.parametrize("bsn", ["111 222 333", "111.222.333", "111-222-333", " 111222333 "])
def test_bsn_spaces_dots_and_dashes_are_ignored(bsn: str) -> None:
    assert normalize_bsn(bsn) == BSN_A


@pytest.mark.parametrize("bsn", ["11122233A", "abc", "BSN111222333", "111222333x"])
def test_bsn_with_letters_is_refused(bsn: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_bsn(bsn)
    assert caught.value.field == "BSN"
    assert caught.value.message == "mag alleen cijfers bevatten"


def test_bsn_with_non_ascii_digits_is_refused() -> None:
    arabic_indic = "".join(chr(0x0660 + int(d)) for d in BSN_A)  # str.isdigit() says yes
    with pytest.raises(InvalidInput, match="alleen cijfers"):
        normalize_bsn(arabic_indic)


@pytest.mark.parametrize(
    "bsn", ["1", "12", "1234567", SEVEN_DIGITS_PADDABLE, "1112223330", "0111222333", "12345678901"]
)
def test_bsn_of_wrong_length_is_refused_and_never_padded(bsn: str) -> None:
    assert passes_elfproef(SEVEN_DIGITS_PADDABLE.zfill(9))  # padding would have "helped"
    with pytest.raises(InvalidInput) as caught:
        normalize_bsn(bsn)
    assert caught.value.field == "BSN"
    assert "9 cijfers" in caught.value.message


@pytest.mark.parametrize("bsn", ["", "   ", " - . "])
def test_missing_bsn_is_refused_as_missing(bsn: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_bsn(bsn)
    assert caught.value.message == "ontbreekt"


def test_bsn_error_names_the_field_it_came_from() -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_bsn("123456789", field="BSN ouder")
    assert caught.value.field == "BSN ouder"
    assert str(caught.value).startswith("BSN ouder: ")


def _elfproef_by_the_book(digits: str) -> bool:
    weights = (9, 8, 7, 6, 5, 4, 3, 2, -1)
    total = sum(w * int(d) for w, d in zip(weights, digits, strict=True))
    return total % 11 == 0 and int(digits) != 0


def test_elfproef_agrees_with_the_weighted_sum_on_every_number_in_a_range() -> None:
    # Consecutive numbers walk every remainder, and every last digit, many times over.
    for number in [*range(0, 20_000), *range(111_200_000, 111_230_000), 999_999_999]:
        digits = f"{number:09d}"
        assert passes_elfproef(digits) == _elfproef_by_the_book(digits), digits


@pytest.mark.parametrize(
    "text",
    ["", "11122233", "1112223330", "11122233a", "１１１２２２３３３", "١١١٢٢٢٣٣٣", " 11222333"],
)
def test_elfproef_is_false_for_anything_but_nine_ascii_digits(text: str) -> None:
    assert not passes_elfproef(text)


# --- YouthIdentity ----------------------------------------------------------------------------


def test_youth_identity_normalizes_its_bsn() -> None:
    identity = YouthIdentity(bsn=LEGACY_8_DIGITS, birth_date=date(2016, 5, 1))
    assert identity.bsn == "0" + LEGACY_8_DIGITS


def test_youth_identity_with_invalid_bsn_is_refused() -> None:
    with pytest.raises(InvalidInput, match="elfproef"):
        YouthIdentity(bsn="123456789", birth_date=date(2016, 5, 1))


def test_youth_identity_without_bsn_needs_surname_and_sex() -> None:
    for surname, sex in [(None, "V"), ("Jansen", None), ("   ", "V"), (None, None)]:
        with pytest.raises(InvalidInput) as caught:
            YouthIdentity(birth_date=date(2016, 5, 1), surname=surname, sex=sex)
        assert caught.value.field == "BSN"


def test_youth_identity_sex_must_be_m_v_or_x() -> None:
    assert YouthIdentity(birth_date=date(2016, 5, 1), surname="Jansen", sex=" v ").sex == "V"
    with pytest.raises(InvalidInput) as caught:
        YouthIdentity(birth_date=date(2016, 5, 1), surname="Jansen", sex="F")
    assert caught.value.field == "Geslacht"


# --- keyed digest -----------------------------------------------------------------------------


def test_bsn_digest_is_stable_for_the_same_secret() -> None:
    first = IdentityKeys(SECRET).bsn_digest(BSN_A)
    again = IdentityKeys(SECRET).bsn_digest(BSN_A)
    assert first == again
    assert len(first) == 64 and int(first, 16) >= 0  # hex SHA-256
    assert BSN_A not in first


def test_bsn_digest_differs_per_secret_and_per_bsn() -> None:
    keys = IdentityKeys(SECRET)
    assert keys.bsn_digest(BSN_A) != IdentityKeys(OTHER_SECRET).bsn_digest(BSN_A)
    assert keys.bsn_digest(BSN_A) != keys.bsn_digest(BSN_B)


def test_bsn_digest_is_the_same_for_the_eight_and_nine_digit_forms() -> None:
    keys = IdentityKeys(SECRET)
    assert keys.bsn_digest(LEGACY_8_DIGITS) == keys.bsn_digest("0" + LEGACY_8_DIGITS)
    assert keys.bsn_digest("111 222 333") == keys.bsn_digest(BSN_A)


def test_digest_of_a_normalized_bsn_is_its_bsn_digest() -> None:
    keys = IdentityKeys(SECRET)
    for raw in (BSN_A, BSN_C, LEGACY_8_DIGITS, "111 222 333"):
        assert keys.normalized_bsn_digest(normalize_bsn(raw)) == keys.bsn_digest(raw)


def test_identity_key_of_an_eight_digit_bsn_is_that_of_its_nine_digit_form() -> None:
    keys = IdentityKeys(SECRET)
    short = YouthIdentity(bsn=LEGACY_8_DIGITS, birth_date=date(2016, 5, 1))
    assert keys.identity_key(short) == keys.bsn_digest("0" + LEGACY_8_DIGITS)


def test_identity_key_of_a_youth_with_bsn_is_its_bsn_digest() -> None:
    keys = IdentityKeys(SECRET)
    identity = YouthIdentity(bsn=BSN_A, birth_date=date(2016, 5, 1), name="Testkind")
    assert keys.identity_key(identity) == keys.bsn_digest(BSN_A)
    # Name and birth date do not change who a youth with a BSN is.
    other_details = YouthIdentity(bsn=BSN_A, birth_date=date(2016, 5, 2), name="Anders")
    assert keys.identity_key(other_details) == keys.identity_key(identity)


# --- substitute identity (no BSN): surname + birth date + sex ----------------------------------


@pytest.mark.parametrize(
    "surname", ["De Bruïn", "de bruin", "DE BRUIN", "  de   Bruin ", "de\tbruïn", "Dé Brüin"]
)
def test_substitute_identity_ignores_accents_case_and_whitespace(surname: str) -> None:
    keys = IdentityKeys(SECRET)
    reference = YouthIdentity(birth_date=date(2015, 6, 7), surname="De Bruin", sex="V")
    variant = YouthIdentity(birth_date=date(2015, 6, 7), surname=surname, sex="v")
    assert keys.identity_key(variant) == keys.identity_key(reference)


def test_substitute_identity_differs_by_birth_date_sex_and_surname() -> None:
    keys = IdentityKeys(SECRET)
    base = YouthIdentity(birth_date=date(2015, 6, 7), surname="De Bruin", sex="V")
    others = [
        YouthIdentity(birth_date=date(2015, 6, 8), surname="De Bruin", sex="V"),
        YouthIdentity(birth_date=date(2015, 6, 7), surname="De Bruin", sex="M"),
        YouthIdentity(birth_date=date(2015, 6, 7), surname="De Bruijn", sex="V"),
        YouthIdentity(birth_date=date(2015, 6, 7), surname="Debruin", sex="V"),
    ]
    assert len({keys.identity_key(i) for i in [base, *others]}) == 5


def test_substitute_identity_never_collides_with_a_bsn_digest() -> None:
    keys = IdentityKeys(SECRET)
    without = YouthIdentity(birth_date=date(2016, 5, 1), surname=BSN_A, sex="X")
    assert keys.identity_key(without) != keys.bsn_digest(BSN_A)


# --- encryption of identity fields ------------------------------------------------------------


def test_encryption_round_trips() -> None:
    keys = IdentityKeys(SECRET)
    for plaintext in [BSN_A, "Eline de Bruïn", ""]:
        assert keys.decrypt(keys.encrypt(plaintext)) == plaintext


def test_encryption_uses_a_fresh_nonce_so_ciphertexts_differ() -> None:
    keys = IdentityKeys(SECRET)
    first, second = keys.encrypt(BSN_A), keys.encrypt(BSN_A)
    assert first != second
    assert first[:12] != second[:12]  # the random 96-bit nonce leads the ciphertext
    assert BSN_A.encode() not in first


def test_encrypted_identity_cannot_be_read_with_another_secret() -> None:
    ciphertext = IdentityKeys(SECRET).encrypt(BSN_A)
    with pytest.raises(SystemError_):
        IdentityKeys(OTHER_SECRET).decrypt(ciphertext)


def test_altered_ciphertext_is_detected() -> None:
    keys = IdentityKeys(SECRET)
    ciphertext = bytearray(keys.encrypt(BSN_A))
    ciphertext[-1] ^= 0x01
    with pytest.raises(SystemError_):
        keys.decrypt(bytes(ciphertext))


# --- age: only youths under 23 (Jeugdwet 7.1.1.1) ---------------------------------------------


def test_youth_of_22_years_and_364_days_is_accepted() -> None:
    today = date(2026, 3, 2)
    born = date(2003, 3, 3)  # 23 tomorrow
    assert age_on(born, today) == 22
    check_youth_age(born, today)


def test_youth_on_the_23rd_birthday_is_refused() -> None:
    today = date(2026, 3, 2)
    born = date(2003, 3, 2)
    assert age_on(born, today) == 23
    with pytest.raises(InvalidInput) as caught:
        check_youth_age(born, today)
    assert caught.value.field == "Geboortedatum"
    assert "23" in caught.value.message


def test_youth_older_than_23_is_refused() -> None:
    with pytest.raises(InvalidInput):
        check_youth_age(date(1990, 1, 1), date(2026, 3, 2))


def test_birth_date_in_the_future_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_youth_age(date(2026, 3, 3), date(2026, 3, 2))
    assert caught.value.field == "Geboortedatum"
    assert caught.value.message == "ligt in de toekomst"


def test_youth_born_today_is_accepted() -> None:
    check_youth_age(date(2026, 3, 2), date(2026, 3, 2))
    assert age_on(date(2026, 3, 2), date(2026, 3, 2)) == 0


def test_born_on_29_february_turns_23_on_1_march_in_a_common_year() -> None:
    born = date(2004, 2, 29)
    assert twenty_third_birthday(born) == date(2027, 3, 1)
    assert age_on(born, date(2027, 2, 28)) == 22
    assert age_on(born, date(2027, 3, 1)) == 23
    check_youth_age(born, date(2027, 2, 28))
    with pytest.raises(InvalidInput):
        check_youth_age(born, date(2027, 3, 1))


@pytest.mark.parametrize("year", [1996, 2000, 2004, 2008, 2012])
def test_born_on_29_february_the_23rd_birthday_is_always_1_march(year: int) -> None:
    # Birth year + 23 is never a leap year (23 is odd), so there is no 29 February to use.
    assert twenty_third_birthday(date(year, 2, 29)) == date(year + 23, 3, 1)


def test_born_on_28_february_turns_23_on_28_february() -> None:
    assert twenty_third_birthday(date(2005, 2, 28)) == date(2028, 2, 28)  # 2028 is a leap year


def test_age_counts_whole_years_around_the_birthday() -> None:
    born = date(2014, 6, 15)
    assert age_on(born, date(2026, 6, 14)) == 11
    assert age_on(born, date(2026, 6, 15)) == 12
