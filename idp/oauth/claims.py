"""Claims by scope (SPEC §5), shared by the ID token and the userinfo endpoint.

Only what a scope grants is decrypted: a relying system that asked for ``profile`` never causes
the phone or the ID number to be decrypted.
"""

from __future__ import annotations

import phonenumbers
from authlib.oauth2.rfc6749 import scope_to_list
from authlib.oidc.core import UserInfo

from ..models import User
from ..services.identity import pii
from .subjects import subject_for

SCOPE_LABELS: dict[str, str] = {
    "openid": "识别您的身份（用户标识）",
    "profile": "基本信息：姓名、用户名、性别、出生日期",
    "phone": "手机号码",
    "realname": "实名认证信息：证件类型、证件号码",
    "offline_access": "在您未登录时保持访问（刷新令牌）",
}

#: the claims each scope may release (what 个人信息与隐私 says a relying system received)
SCOPE_CLAIMS: dict[str, list[str]] = {
    "openid": ["sub"],
    "profile": ["name", "preferred_username", "gender", "birthdate", "updated_at"],
    "phone": ["phone_number", "phone_number_verified"],
    "realname": ["real_name_verified", "id_type", "id_number"],
}

_GENDER = {"M": "male", "F": "female"}


def user_claims(user: User, scope: str | list[str], client=None) -> UserInfo:
    """``client``: whose ``sub`` to give (pairwise subjects differ per sector)."""
    scopes = set(scope_to_list(scope) if isinstance(scope, str) else scope)
    claims: dict = {"sub": subject_for(client, user)}
    if "profile" in scopes:
        claims.update(
            name=user.name,
            preferred_username=user.username,
            updated_at=int(user.updated_at.timestamp()),
        )
        if user.gender in _GENDER:
            claims["gender"] = _GENDER[user.gender]
        if user.birthdate:
            claims["birthdate"] = user.birthdate.isoformat()
    if "phone" in scopes and user.phone_enc:
        phone = pii.cipher().decrypt("phone", user.phone_enc)
        claims["phone_number"] = _e164(phone)
        claims["phone_number_verified"] = bool(user.phone_verified)
    if "realname" in scopes:
        claims["real_name_verified"] = bool(user.real_name_verified)
        if user.id_type and user.id_number_enc:
            claims["id_type"] = user.id_type
            claims["id_number"] = pii.cipher().decrypt("id_number", user.id_number_enc)
    return UserInfo(claims)


def _e164(phone: str) -> str:
    try:
        number = phonenumbers.parse(phone, "CN")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        return phone
