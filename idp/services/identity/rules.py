"""Identity rules: usernames, names, document types and numbers, birth date and gender, mobile
phones and bank card numbers.  Pure functions, no database: the registration wizard,
``idp users create``, recovery and profile changes all call these.

Built on well-kept libraries where they exist: python-stdnum for the resident ID number
(GB 11643 check digit, birth date, region) and the Luhn check of card numbers, phonenumbers for
mainland mobiles.  Each failure a user can see is one exception class with its message.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

import phonenumbers
from stdnum import luhn, numdb
from stdnum.cn import ric
from stdnum.exceptions import ValidationError

from ...errors import InvalidField

USERNAME_MIN, USERNAME_MAX = 4, 20
USERNAME_RE = re.compile(rf"^[A-Za-z][A-Za-z0-9_]{{{USERNAME_MIN - 1},{USERNAME_MAX - 1}}}$")
USERNAME_RULE = f"用户名须为{USERNAME_MIN}–{USERNAME_MAX}位字母、数字或下划线，并以字母开头"
CARD_MIN_DIGITS, CARD_MAX_DIGITS = 13, 19
MOBILE_DIGITS = 11

ID_TYPES: dict[str, str] = {
    "resident_id": "居民身份证",
    "hk_macao_permit": "港澳居民来往内地通行证",
    "taiwan_permit": "台湾居民来往大陆通行证",
    "hmt_residence_permit": "港澳台居民居住证",
    "foreign_permanent_id": "外国人永久居留身份证",
    "passport": "护照",
}

USER_TYPES: dict[str, str] = {"personal": "个人用户", "unit": "单位用户"}
GENDERS: dict[str, str] = {"M": "男", "F": "女"}

NAME_MAX = 50
EARLIEST_BIRTHDATE = date(1900, 1, 1)


# -- failures a citizen sees -------------------------------------------------------------------
class NameInvalid(InvalidField):
    message = "姓名只能包含文字和间隔号（·），请按证件上的姓名填写"
    field = "name"


class NameMissing(InvalidField):
    message = "请输入姓名"
    field = "name"


class NameTooLong(InvalidField):
    message = f"姓名不能超过{NAME_MAX}个字"
    field = "name"


class IdTypeInvalid(InvalidField):
    message = "请选择证件类型"
    field = "id_type"


class IdNumberMissing(InvalidField):
    message = "请输入证件号"
    field = "id_number"


class IdNumberInvalid(InvalidField):
    """The number breaks the format of its document type; the message names the format."""

    field = "id_number"


class IdNumberChecksum(InvalidField):
    message = "证件号校验位不正确，请核对证件号"
    field = "id_number"


class BirthdateMismatch(InvalidField):
    message = "出生日期与证件号不一致"
    field = "birthdate"


class BirthdateInvalid(InvalidField):
    message = "请输入正确的出生日期"
    field = "birthdate"


class GenderMismatch(InvalidField):
    message = "性别与证件号不一致"
    field = "gender"


class GenderMissing(InvalidField):
    message = "请选择性别"
    field = "gender"


class PhoneInvalid(InvalidField):
    message = f"请输入正确的{MOBILE_DIGITS}位手机号码"
    field = "phone"


class CardNumberInvalid(InvalidField):
    message = f"银行账号须为{CARD_MIN_DIGITS}–{CARD_MAX_DIGITS}位数字"
    field = "card_number"


class CardNumberChecksum(InvalidField):
    message = "银行账号校验位不正确，请核对银行账号"
    field = "card_number"


# -- usernames ---------------------------------------------------------------------------------
def username_key(username: str) -> str:
    """The case-insensitive identity of a username."""
    return username.strip().casefold()


def username_problem(username: str) -> str | None:
    if not USERNAME_RE.match(username or ""):
        return USERNAME_RULE
    return None


# -- names -------------------------------------------------------------------------------------
# The middle dot of minority and transliterated names as input methods type it: U+00B7 is the
# standard one; the others are what some keyboards produce.  Stored as typed, never rewritten:
# the bank compares the name it holds, and the citizen sees their name back unchanged.
MIDDLE_DOTS = frozenset("\u00b7\u30fb\u2027\uff65")
# Latin-script names (passports, permits of Hong Kong, Macao and Taiwan residents, foreigners)
LATIN_SEPARATORS = frozenset(" -'.")


def normalise_name(name: str) -> str:
    """Names are stored exactly as typed, in NFC (rare characters outside the BMP kept)."""
    return unicodedata.normalize("NFC", (name or "").strip())


def _is_name_letter(ch: str) -> bool:
    category = unicodedata.category(ch)
    if category[0] in "LM":
        return True
    # CJK extension planes (U+20000–U+3FFFD): an ideograph newer than this Python's Unicode
    # database (Extension H and later) is still an ideograph, not garbage.
    return category == "Cn" and 0x20000 <= ord(ch) <= 0x3FFFD


def check_name(name: str, id_type: str | None = None) -> str:
    """The name in NFC, or a ``NameInvalid``/``NameMissing``/``NameTooLong``."""
    value = normalise_name(name)
    if not value:
        raise NameMissing()
    if len(value) > NAME_MAX:
        raise NameTooLong()
    latin_ok = id_type not in (None, "resident_id")
    previous: str | None = None  # the previous character; None at the start
    for ch in value:
        if _is_name_letter(ch):
            if unicodedata.category(ch)[0] == "M" and (previous is None or not _is_name_letter(previous)):
                raise NameInvalid()  # a combining mark needs a letter to sit on
        elif ch in MIDDLE_DOTS or (latin_ok and ch in LATIN_SEPARATORS):
            # separators stand between letters: never first, never doubled ("J. SMITH" aside)
            if previous is None or (not _is_name_letter(previous) and not (previous == "." and ch == " ")):
                raise NameInvalid()
        else:
            raise NameInvalid()
        previous = ch
    if not (_is_name_letter(value[-1]) or (latin_ok and value[-1] == ".")):
        raise NameInvalid()
    return value


# -- documents ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class DocumentFacts:
    """What a document number itself says: the number in its canonical form, and where the
    number encodes them, the holder's birth date and gender."""

    id_type: str
    number: str
    birthdate: date | None = None
    gender: str | None = None


_PATTERNS: dict[str, tuple[re.Pattern, str]] = {
    # 回乡证: H (Hong Kong) or M (Macao) + 8 digits; the older booklet adds a 2-digit issue count
    "hk_macao_permit": (re.compile(r"^[HM]\d{8}(\d{2})?$"), "港澳居民来往内地通行证号码须为H或M加8位（或10位）数字"),
    # 台胞证: 8 digits since 2015, 10 digits before
    "taiwan_permit": (re.compile(r"^\d{8}(\d{2})?$"), "台湾居民来往大陆通行证号码须为8位（或10位）数字"),
    # passports of any country: letters and digits (Chinese ones are E/G + 8 characters)
    "passport": (re.compile(r"^[A-Z0-9]{5,17}$"), "护照号码须为5–17位字母或数字"),
}
# the 2017 foreign permanent residence card: ISO 3166 alpha-3 nationality + 12 digits
_FOREIGN_PR_2017 = re.compile(r"^[A-Z]{3}\d{12}$")
_EIGHTEEN = re.compile(r"^\d{17}[\dX]$")
_HMT_PREFIXES = ("810000", "820000", "830000")  # Hong Kong, Macao, Taiwan


def compact_document_number(number: str) -> str:
    """Spaces and dashes dropped, letters upper-cased (``x`` → ``X``): the stored form."""
    return re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", number or "")).upper()


def _gb11643(number: str, what: str) -> DocumentFacts:
    """The 18-character structure of GB 11643 shared by the resident ID, the HMT residence
    permit and the 2023 foreign permanent residence card: region, birth date, sequence (odd for
    men), check digit."""
    if len(number) != 18 or not _EIGHTEEN.match(number):
        raise IdNumberInvalid(f"{what}号码须为18位，最后一位可以是数字或X")
    if ric.calc_check_digit(number) != number[-1]:
        raise IdNumberChecksum()
    try:
        born = ric.get_birth_date(number)
    except ValidationError:
        raise IdNumberInvalid(f"{what}号码中的出生日期无效") from None
    if not EARLIEST_BIRTHDATE <= born <= date.today():
        raise IdNumberInvalid(f"{what}号码中的出生日期无效")
    gender = "M" if int(number[16]) % 2 else "F"
    return DocumentFacts("", number, born, gender)


def _resident_region_known(number: str) -> bool:
    """The region code names a real province.  python-stdnum's full check also requires the
    county to have existed in the birth year, which refuses real citizens whose first card was
    issued by a district created after they were born (e.g. Shenzhen's districts, 1979–1990):
    we keep its province check and leave the county to the bank."""
    try:
        ric.validate(number)
        return True
    except ValidationError:
        info = dict(kv for _, props in numdb.get("cn/loc").info(number[:6]) for kv in props.items())
        return "province" in info


def check_document(id_type: str, number: str) -> DocumentFacts:
    """The document number in canonical form with what it encodes, or a typed error."""
    if id_type not in ID_TYPES:
        raise IdTypeInvalid()
    value = compact_document_number(number)
    if not value:
        raise IdNumberMissing()
    if id_type == "resident_id":
        facts = _gb11643(value, "居民身份证")
        if not _resident_region_known(value):
            raise IdNumberInvalid("居民身份证号码的地区码无效")
    elif id_type == "hmt_residence_permit":
        facts = _gb11643(value, "港澳台居民居住证")
        if not value.startswith(_HMT_PREFIXES):
            raise IdNumberInvalid("港澳台居民居住证号码须以810000、820000或830000开头")
    elif id_type == "foreign_permanent_id":
        if _FOREIGN_PR_2017.match(value):
            return DocumentFacts(id_type, value)
        if not value.startswith("9"):
            raise IdNumberInvalid("外国人永久居留身份证号码须为以9开头的18位号码，或3位字母加12位数字")
        facts = _gb11643(value, "外国人永久居留身份证")
    else:
        pattern, message = _PATTERNS[id_type]
        if not pattern.match(value):
            raise IdNumberInvalid(message)
        return DocumentFacts(id_type, value)
    return DocumentFacts(id_type, value, facts.birthdate, facts.gender)


def document_prefill(id_type: str, number: str) -> DocumentFacts | None:
    """Birth date and gender read from a document number, for prefilling the form; None when
    the number is not (yet) valid."""
    try:
        return check_document(id_type, number)
    except InvalidField:
        return None


@dataclass(frozen=True)
class Identity:
    """A citizen's identity as checked: NFC name, canonical document number, and birth date and
    gender that agree with the document."""

    name: str
    id_type: str
    id_number: str
    gender: str
    birthdate: date


def check_identity(
    name: str, id_type: str, id_number: str, gender: str | None, birthdate: date | None
) -> Identity:
    """Every identity rule of a registration.  A birth date or gender left empty is taken from the
    document number where it carries one (the page prefills them; this covers a browser
    without JavaScript); one that was given must agree with the number."""
    clean_name = check_name(name, id_type)
    facts = check_document(id_type, id_number)
    if gender not in (None, "") and gender not in GENDERS:
        raise GenderMissing()
    if facts.birthdate is not None:
        if birthdate is not None and birthdate != facts.birthdate:
            raise BirthdateMismatch()
        birthdate = facts.birthdate
    if facts.gender is not None:
        if gender and gender != facts.gender:
            raise GenderMismatch()
        gender = facts.gender
    if not gender:
        raise GenderMissing()
    if birthdate is None or not EARLIEST_BIRTHDATE <= birthdate <= date.today():
        raise BirthdateInvalid()
    return Identity(clean_name, id_type, facts.number, gender, birthdate)


# -- phones ------------------------------------------------------------------------------------
_MOBILE_TYPES = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)


def check_mobile(phone: str) -> str:
    """A mainland mobile number as its 11 digits (accepts +86, spaces and dashes)."""
    raw = (phone or "").strip()
    if not raw:
        raise PhoneInvalid("请输入手机号码")
    try:
        parsed = phonenumbers.parse(raw, "CN")
    except phonenumbers.NumberParseException:
        raise PhoneInvalid() from None
    national = str(parsed.national_number)
    if (
        parsed.country_code != 86
        or len(national) != MOBILE_DIGITS
        or not national.startswith("1")
        or not phonenumbers.is_valid_number(parsed)
        or phonenumbers.number_type(parsed) not in _MOBILE_TYPES
    ):
        raise PhoneInvalid()
    return national


# -- bank cards --------------------------------------------------------------------------------
@dataclass(frozen=True)
class CardNumber:
    number: str
    scheme: str | None  # unionpay, visa, mastercard, amex, jcb; None: a domestic numbering
    luhn_ok: bool

    @property
    def warning(self) -> str | None:
        if self.luhn_ok:
            return None
        return "银行账号校验位异常，请仔细核对；是否可用以银行核验结果为准"

    @property
    def last4(self) -> str:
        return self.number[-4:]


def card_scheme(number: str) -> str | None:
    """The international scheme of a card number by its issuer prefix, or None."""
    if number.startswith("62"):
        return "unionpay"
    if number.startswith("4"):
        return "visa"
    if number[:2] in ("51", "52", "53", "54", "55") or 2221 <= int(number[:4] or 0) <= 2720:
        return "mastercard"
    if number[:2] in ("34", "37"):
        return "amex"
    if 3528 <= int(number[:4] or 0) <= 3589:
        return "jcb"
    return None


def check_card_number(card_number: str) -> CardNumber:
    """Debit card or Shenzhen financial social-security card number.  The Luhn digit is
    enforced where the card scheme uses it; older domestic numberings that do not get only a
    warning — the bank check is the authority on whether the card exists."""
    digits = re.sub(r"[\s\-]", "", card_number or "")
    if not digits:
        raise CardNumberInvalid("请输入银行账号")
    if not digits.isascii() or not digits.isdigit() or not CARD_MIN_DIGITS <= len(digits) <= CARD_MAX_DIGITS:
        raise CardNumberInvalid()
    scheme = card_scheme(digits)
    ok = luhn.is_valid(digits)
    if scheme is not None and not ok:
        raise CardNumberChecksum()
    return CardNumber(digits, scheme, ok)
