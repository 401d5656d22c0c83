"""The identity rules service: pure functions, no app.  The check-digit and Luhn rules are
tested as properties (hypothesis) against implementations written here from the standards."""

from __future__ import annotations

import unicodedata
from datetime import date, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from stdnum.cn import ric

from idp.services.identity import rules as identity
from idp.services.identity.rules import (
    BirthdateInvalid,
    BirthdateMismatch,
    CardNumberChecksum,
    CardNumberInvalid,
    GenderMismatch,
    GenderMissing,
    IdNumberChecksum,
    IdNumberInvalid,
    IdNumberMissing,
    IdTypeInvalid,
    NameInvalid,
    NameMissing,
    NameTooLong,
    PhoneInvalid,
)

# -- GB 11643 from the standard, independent of python-stdnum -------------------------------
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK = "10X98765432"


def gb11643_check(first17: str) -> str:
    return CHECK[sum(int(d) * w for d, w in zip(first17, WEIGHTS)) % 11]


def luhn_check(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return str((10 - total % 10) % 10)


# regions that exist since before 1990 (python-stdnum's full check also looks at the county)
REGIONS = ["110101", "310101", "440303", "440301", "420106", "650102", "510104"]
births = st.dates(min_value=date(1990, 1, 1), max_value=date.today() - timedelta(days=1))


@st.composite
def resident_ids(draw):
    region = draw(st.sampled_from(REGIONS))
    born = draw(births)
    seq = draw(st.integers(0, 999))
    first17 = f"{region}{born:%Y%m%d}{seq:03d}"
    return first17 + gb11643_check(first17), born, "M" if seq % 2 else "F"


@given(resident_ids())
def test_every_valid_resident_id_is_accepted_with_birthdate_and_gender(case):
    number, born, gender = case
    facts = identity.check_document("resident_id", number)
    assert (facts.number, facts.birthdate, facts.gender) == (number, born, gender)
    assert ric.is_valid(number)
    assert identity.check_document("resident_id", number.lower()).number == number  # x → X


@given(resident_ids(), st.integers(0, 16), st.integers(1, 9))
def test_any_single_digit_error_is_caught(case, position, delta):
    number = case[0]
    changed = number[:position] + str((int(number[position]) + delta) % 10) + number[position + 1:]
    with pytest.raises((IdNumberChecksum, IdNumberInvalid)):
        identity.check_document("resident_id", changed)


@given(resident_ids(), st.sampled_from("0123456789X"))
def test_a_wrong_check_digit_is_caught(case, digit):
    number = case[0]
    assume(digit != number[-1])
    with pytest.raises(IdNumberChecksum):
        identity.check_document("resident_id", number[:-1] + digit)


@given(resident_ids(), st.integers(0, 15))
def test_adjacent_transpositions_are_caught(case, position):
    number = case[0]
    assume(number[position] != number[position + 1])
    swapped = number[:position] + number[position + 1] + number[position] + number[position + 2:]
    with pytest.raises((IdNumberChecksum, IdNumberInvalid)):
        identity.check_document("resident_id", swapped)


def test_resident_id_formats_and_messages():
    with pytest.raises(IdNumberMissing):
        identity.check_document("resident_id", "  ")
    with pytest.raises(IdNumberInvalid, match="居民身份证号码须为18位"):
        identity.check_document("resident_id", "44030419900307213")
    with pytest.raises(IdNumberInvalid, match="居民身份证号码须为18位"):
        identity.check_document("resident_id", "4403041990030721X3")
    first17 = "44030419901332001"  # 13th month
    with pytest.raises(IdNumberInvalid, match="出生日期无效"):
        identity.check_document("resident_id", first17 + gb11643_check(first17))
    tomorrow = date.today() + timedelta(days=1)
    first17 = f"440304{tomorrow:%Y%m%d}001"
    with pytest.raises(IdNumberInvalid, match="出生日期无效"):
        identity.check_document("resident_id", first17 + gb11643_check(first17))
    first17 = "99010419900307001"  # no province 99
    with pytest.raises(IdNumberInvalid, match="地区码无效"):
        identity.check_document("resident_id", first17 + gb11643_check(first17))
    with pytest.raises(IdTypeInvalid):
        identity.check_document("driving_licence", "440304199003072136")
    # spaces and dashes from copy-paste are dropped
    assert identity.check_document("resident_id", "440304 19900307 2136").number == "440304199003072136"


def test_district_created_after_the_holders_birth_is_accepted():
    """Bao'an district (440306) dates from 1993; citizens born earlier got numbers there."""
    first17 = "44030619850211355"
    number = first17 + gb11643_check(first17)
    assert not ric.is_valid(number)  # python-stdnum's county-by-birth-year rule refuses it
    facts = identity.check_document("resident_id", number)
    assert facts.birthdate == date(1985, 2, 11) and facts.gender == "M"


def test_other_document_types():
    check = identity.check_document
    assert check("hk_macao_permit", "h60012345").number == "H60012345"
    assert check("hk_macao_permit", "M1234567801").number == "M1234567801"
    for bad in ("60012345", "H6001234", "X60012345"):
        with pytest.raises(IdNumberInvalid, match="港澳居民来往内地通行证"):
            check("hk_macao_permit", bad)
    assert check("taiwan_permit", "12345678").number == "12345678"
    with pytest.raises(IdNumberInvalid, match="台湾居民来往大陆通行证"):
        check("taiwan_permit", "1234567")
    assert check("passport", "e12345678").number == "E12345678"
    with pytest.raises(IdNumberInvalid, match="护照"):
        check("passport", "E1234!")
    # HMT residence permit: GB 11643 with 810000 / 820000 / 830000
    first17 = "83000019880314128"
    facts = check("hmt_residence_permit", first17 + gb11643_check(first17))
    assert (facts.birthdate, facts.gender) == (date(1988, 3, 14), "F")
    first17 = "44030419880314128"
    with pytest.raises(IdNumberInvalid, match="810000"):
        check("hmt_residence_permit", first17 + gb11643_check(first17))
    valid = "83000019880314128" + gb11643_check("83000019880314128")
    with pytest.raises(IdNumberChecksum):
        check("hmt_residence_permit", valid[:-1] + ("0" if valid[-1] != "0" else "1"))
    # foreign permanent residence: 2023 (18 digits, 9…) and 2017 (3 letters + 12 digits)
    first17 = "91440319751212051"
    facts = check("foreign_permanent_id", first17 + gb11643_check(first17))
    assert (facts.birthdate, facts.gender) == (date(1975, 12, 12), "M")
    assert check("foreign_permanent_id", "usa440375121201").birthdate is None
    with pytest.raises(IdNumberInvalid, match="外国人永久居留身份证"):
        check("foreign_permanent_id", "440304199003072136")


def test_prefill():
    assert identity.document_prefill("resident_id", "440304199003072136").birthdate == date(1990, 3, 7)
    assert identity.document_prefill("resident_id", "4403041990") is None
    assert identity.document_prefill("passport", "E12345678").gender is None


# -- birth date and gender agreement ----------------------------------------------------------------
def test_identity_takes_or_checks_birthdate_and_gender():
    number = "440304199003072136"
    taken = identity.check_identity("王小明", "resident_id", number, None, None)
    assert (taken.gender, taken.birthdate) == ("M", date(1990, 3, 7))
    assert identity.check_identity("王小明", "resident_id", number, "M", date(1990, 3, 7)) == taken
    with pytest.raises(BirthdateMismatch):
        identity.check_identity("王小明", "resident_id", number, "M", date(1990, 3, 8))
    with pytest.raises(GenderMismatch):
        identity.check_identity("王小明", "resident_id", number, "F", None)
    with pytest.raises(GenderMissing):
        identity.check_identity("陈大文", "hk_macao_permit", "H60012345", None, date(1980, 1, 1))
    with pytest.raises(GenderMissing):
        identity.check_identity("陈大文", "hk_macao_permit", "H60012345", "X", date(1980, 1, 1))
    with pytest.raises(BirthdateInvalid):
        identity.check_identity("陈大文", "hk_macao_permit", "H60012345", "M", None)
    with pytest.raises(BirthdateInvalid):
        identity.check_identity("陈大文", "hk_macao_permit", "H60012345", "M", date.today() + timedelta(days=1))
    hk = identity.check_identity("陈大文", "hk_macao_permit", "H60012345", "M", date(1980, 1, 1))
    assert (hk.gender, hk.birthdate) == ("M", date(1980, 1, 1))


# -- names ----------------------------------------------------------------------------------------------
cjk = st.sampled_from(list("王李张刘陈杨黄赵吴周") + ["𠮷", "䶮", "\U0002A6A5", "\U00030EDD"])


@given(st.lists(st.lists(cjk, min_size=1, max_size=4), min_size=1, max_size=3), st.sampled_from("·・‧"))
def test_names_of_letters_and_middle_dots_are_kept_exactly(parts, dot):
    name = dot.join("".join(p) for p in parts)
    assume(len(name) <= identity.NAME_MAX)
    assert identity.check_name(name) == name
    assert identity.check_name(f"  {name} ") == name


def test_name_rules():
    assert identity.check_name("杨𠮷") == "杨𠮷" and len("杨𠮷") == 2
    assert identity.check_name("买买提·艾力") == "买买提·艾力"
    decomposed = "Jose\u0301 Garci\u0301a"
    assert identity.check_name(decomposed, "passport") == unicodedata.normalize("NFC", decomposed) == "José García"
    assert identity.check_name("J. R. SMITH", "passport") == "J. R. SMITH"
    assert identity.check_name("O'NEIL-KAY", "passport") == "O'NEIL-KAY"
    with pytest.raises(NameMissing):
        identity.check_name("   ")
    with pytest.raises(NameTooLong):
        identity.check_name("王" * 51)
    for bad in ("王1", "·王", "王·", "王··明", "王 明", "王\u200b明", "王\ue000", "John Smith", "王😀"):
        with pytest.raises(NameInvalid):
            identity.check_name(bad, "resident_id")
    for bad in ("John  Smith", " -John", "John-", "\u0301John"):
        with pytest.raises(NameInvalid):
            identity.check_name(bad, "passport")


# -- phones ------------------------------------------------------------------------------------------------
def test_mainland_mobiles():
    for raw in ("13800138000", "+86 138 0013 8000", "138-0013-8000", "8613800138000", "19912345678"):
        assert identity.check_mobile(raw) in ("13800138000", "19912345678")
    for bad in ("", "1380013800", "138001380001", "075588100099", "+852 9123 4567", "10086000000", "abc"):
        with pytest.raises(PhoneInvalid):
            identity.check_mobile(bad)


# -- bank cards -----------------------------------------------------------------------------------------
@given(st.text("0123456789", min_size=10, max_size=16))
def test_unionpay_numbers_with_their_luhn_digit_pass(digits):
    body = "62" + digits
    card = identity.check_card_number(body + luhn_check(body))
    assert card.luhn_ok and card.scheme == "unionpay" and card.warning is None
    assert card.last4 == (body + luhn_check(body))[-4:]


@given(st.text("0123456789", min_size=10, max_size=16), st.data())
def test_any_single_digit_error_in_a_unionpay_number_is_refused(digits, data):
    number = "62" + digits + luhn_check("62" + digits)
    position = data.draw(st.integers(2, len(number) - 1))
    delta = data.draw(st.integers(1, 9))
    changed = number[:position] + str((int(number[position]) + delta) % 10) + number[position + 1:]
    with pytest.raises(CardNumberChecksum):
        identity.check_card_number(changed)


@given(st.text("0123456789", min_size=10, max_size=16))
def test_domestic_numberings_only_warn(digits):
    body = "60" + digits
    wrong = str((int(luhn_check(body)) + 1) % 10)
    card = identity.check_card_number(body + wrong)
    assert card.scheme is None and not card.luhn_ok
    assert card.warning == "银行账号校验位异常，请仔细核对；是否可用以银行核验结果为准"


def test_card_formats():
    assert identity.check_card_number("6217 0097 2281 8662 011").number == "6217009722818662011"
    for bad in ("", "123456789012", "62170097228186620111", "6217abc", "６２１７００９７２２８１８６６２０１１"):
        with pytest.raises(CardNumberInvalid):
            identity.check_card_number(bad)
    assert identity.card_scheme("4111111111111111") == "visa"
    assert identity.card_scheme("5500000000000004") == "mastercard"
    assert identity.card_scheme("2221000000000009") == "mastercard"
    assert identity.card_scheme("6013820000000000") is None


# -- usernames ---------------------------------------------------------------------------------------------
@given(st.from_regex(r"\A[A-Za-z][A-Za-z0-9_]{3,19}\Z"))
def test_valid_usernames(name):
    assert identity.username_problem(name) is None
    assert identity.username_key(name.upper()) == identity.username_key(name.lower())


def test_invalid_usernames():
    for bad in ("abc", "1abcd", "_abcd", "abcd-e", "a" * 21, "ab cd", "张三abcd", ""):
        assert identity.username_problem(bad) == "用户名须为4–20位字母、数字或下划线，并以字母开头"
