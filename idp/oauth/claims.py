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
from .subjects import subject_for

SCOPE_LABELS: dict[str, str] = {
    "openid": "识别您的身份（用户标识）",
    "profile": "基本信息：姓名、用户名、性别、出生日期",
    "phone": "手机号码",
    "realname": "实名认证信息：证件类型、证件号码",
    "unit": "单位信息：单位名称、统一社会信用代码、单位类型、经办人姓名",
    "offline_access": "在您未登录时保持访问（刷新令牌）",
}

#: the claims each scope may release (what 个人信息与隐私 says a relying system received)
SCOPE_CLAIMS: dict[str, list[str]] = {
    "openid": ["sub", "user_type"],
    "profile": ["name", "preferred_username", "gender", "birthdate", "updated_at"],
    "phone": ["phone_number", "phone_number_verified"],
    "realname": ["real_name_verified", "id_type", "id_number"],
    # with realname as well: the handler's document type and its number masked
    "unit": ["unit_name", "uscc", "unit_type", "handler_name", "handler_id_type", "handler_id_number"],
}

_GENDER = {"M": "male", "F": "female"}


def user_claims(user: User | CachedUser, scope: str | list[str], client=None) -> UserInfo:
    """``client``: whose ``sub`` to give (pairwise subjects differ per sector)."""
    scopes = set(scope_to_list(scope) if isinstance(scope, str) else scope)
    # personal | unit: a relying system that serves both tells them apart without another scope
    claims: dict = {"sub": subject_for(client, user), "user_type": user.user_type or "personal"}
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
    if "unit" in scopes and user.user_type == "unit":
        claims.update(unit_name=user.unit_name, uscc=user.uscc, unit_type=user.unit_type, handler_name=user.name)
        handler_number = _clear(user, "handler_id_number", "handler_id_number_enc", "id_number")
        if "realname" in scopes and handler_number:
            # the handler is a person acting for the unit: the unit's systems see who, not the number
            claims["handler_id_type"] = user.handler_id_type
            claims["handler_id_number"] = pii.mask_id_number(handler_number)
    return UserInfo(claims)


def _clear(user: User | CachedUser, field: str, column: str, kind: str | None = None) -> str | None:
    """A personal field in clear: userinfo's cached user holds it decrypted already.  ``kind`` is
    what the ciphertext is bound to, when not the field's own name (a handler's document number
    is an ``id_number``)."""
    if isinstance(user, CachedUser):
        return getattr(user, field)
    blob = getattr(user, column)
    return pii.cipher().decrypt(kind or field, blob) if blob else None


def _e164(phone: str) -> str:
    try:
        number = phonenumbers.parse(phone, "CN")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        return phone
