"""Claims by scope (SPEC §5), shared by the ID token and the userinfo endpoint.

Only what a scope grants is decrypted: a relying system that asked for ``profile`` never causes
the phone or the ID number to be decrypted.
"""

from __future__ import annotations

import phonenumbers
from authlib.oauth2.rfc6749 import scope_to_list
from authlib.oidc.core import UserInfo

from ..models import User
from ..services.accounts.claims_cache import CachedUser
from ..services.identity import pii

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


def user_claims(user: User | CachedUser, scope: str | list[str]) -> UserInfo:
    scopes = set(scope_to_list(scope) if isinstance(scope, str) else scope)
    claims: dict = {"sub": user.sub}
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
    if "phone" in scopes and (phone := _clear(user, "phone", "phone_enc")):
        claims["phone_number"] = _e164(phone)
        claims["phone_number_verified"] = bool(user.phone_verified)
    if "realname" in scopes:
        claims["real_name_verified"] = bool(user.real_name_verified)
        if user.id_type and (id_number := _clear(user, "id_number", "id_number_enc")):
            claims["id_type"] = user.id_type
            claims["id_number"] = id_number
    return UserInfo(claims)


def _clear(user: User | CachedUser, field: str, column: str) -> str | None:
    """A personal field in clear: userinfo's cached user holds it decrypted already."""
    if isinstance(user, CachedUser):
        return getattr(user, field)
    blob = getattr(user, column)
    return pii.cipher().decrypt(field, blob) if blob else None


def _e164(phone: str) -> str:
    try:
        number = phonenumbers.parse(phone, "CN")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        return phone
