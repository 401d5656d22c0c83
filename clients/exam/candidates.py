"""The candidate record (考生信息), kept up to date from the claims the platform sends at each login.

Only what the service shows is kept, and personal numbers only masked: the service has no use for
a full ID number or phone number, so it never stores one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select

from .extensions import db
from .models import Candidate

# the platform's published vocabulary for the ``id_type`` and ``gender`` claims
ID_TYPES = {
    "resident_id": "居民身份证",
    "hk_macao_permit": "港澳居民来往内地通行证",
    "taiwan_permit": "台湾居民来往大陆通行证",
    "hmt_residence_permit": "港澳台居民居住证",
    "foreign_permanent_id": "外国人永久居留身份证",
    "passport": "护照",
}
GENDERS = {"male": "男", "female": "女"}


def mask_id_number(value: str) -> str:
    value = value.strip()
    if len(value) <= 6:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_phone(value: str) -> str:
    digits = "".join(ch for ch in value if ch.isdigit())
    if value.startswith("+86") and len(digits) == 13:
        digits = digits[2:]
    return digits[:3] + "****" + digits[-4:] if len(digits) >= 7 else "*" * len(digits)


def _text(claims: dict[str, Any], name: str, limit: int) -> str | None:
    value = claims.get(name)
    return value[:limit] if isinstance(value, str) and value else None


def record_login(claims: dict[str, Any]) -> Candidate:
    """Create or refresh the candidate keyed by ``sub``; the caller commits."""
    now = datetime.now(timezone.utc)
    candidate = db.session.scalar(select(Candidate).where(Candidate.sub == claims["sub"]))
    if candidate is None:
        candidate = Candidate(sub=claims["sub"], first_login_at=now, login_count=0)
        db.session.add(candidate)
    # a claim the platform did not send this time (scope not granted) leaves nothing behind
    candidate.username = _text(claims, "preferred_username", 64)
    candidate.name = _text(claims, "name", 100)
    candidate.gender = _text(claims, "gender", 16)
    candidate.birthdate = _text(claims, "birthdate", 10)
    phone = _text(claims, "phone_number", 32)
    candidate.phone_masked = mask_phone(phone) if phone else None
    id_number = _text(claims, "id_number", 64)
    candidate.id_type = _text(claims, "id_type", 32) if id_number else None
    candidate.id_number_masked = mask_id_number(id_number) if id_number else None
    verified = claims.get("real_name_verified")
    candidate.real_name_verified = verified if isinstance(verified, bool) else None
    candidate.last_login_at = now
    candidate.login_count = (candidate.login_count or 0) + 1
    return candidate


@dataclass(frozen=True)
class CandidateView:
    """The candidate page's rows, in Chinese, every personal number masked."""

    name: str
    username: str
    gender: str
    birthdate: str
    phone: str
    id_type: str
    id_number: str
    real_name: str
    realname_granted: bool


def candidate_view(candidate: Candidate) -> CandidateView:
    realname_granted = candidate.real_name_verified is not None
    if not realname_granted:
        real_name = "未授权本系统读取"
    else:
        real_name = "已通过银行实名认证" if candidate.real_name_verified else "未实名认证"
    return CandidateView(
        name=candidate.name or "—",
        username=candidate.username or "—",
        gender=GENDERS.get(candidate.gender or "", "—"),
        birthdate=candidate.birthdate or "—",
        phone=candidate.phone_masked or "—",
        id_type=ID_TYPES.get(candidate.id_type or "", candidate.id_type or "—"),
        id_number=candidate.id_number_masked or ("—" if realname_granted else "未授权本系统读取"),
        real_name=real_name,
        realname_granted=realname_granted,
    )
