"""Identity rules: usernames, document types and numbers, names, phones (SPEC §2).

Built on well-kept libraries where they exist: python-stdnum for the resident ID number
(GB 11643 check digit, birth date), phonenumbers for mainland mobiles.
"""

from __future__ import annotations

import re
import unicodedata

USERNAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,19}$")

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


def username_key(username: str) -> str:
    """The case-insensitive identity of a username."""
    return username.strip().casefold()


def username_problem(username: str) -> str | None:
    if not USERNAME_RE.match(username or ""):
        return "用户名须为4–20位字母、数字或下划线，并以字母开头"
    return None


def normalise_name(name: str) -> str:
    """Names are stored exactly as typed, in NFC (rare characters outside the BMP kept)."""
    return unicodedata.normalize("NFC", (name or "").strip())
