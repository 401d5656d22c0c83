"""个人信息与隐私 (PIPL Art. 44, 45): what the platform holds about a citizen, which relying systems
received which of it and when, and 下载我的数据 — a copy of it all, decrypted, for the holder.

What the page shows is masked as everywhere else (``profile.masked_profile``); only the download
decrypts, and only after re-authentication: the password (the view checks the captcha), or a
login not older than ``PRIVACY_REAUTH_MAX_AGE``.  The download is audited.

Who received what comes from the audit log: every token issued to a relying system is recorded
as ``token.issued`` with the client and the scopes granted (never the claims' values); the scopes
say which claims went out (``oauth.claims``).  Consents (the systems authorised) add when the
citizen agreed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone

from flask import current_app
from sqlalchemy import select

from ...extensions import db
from ...models import AuditEvent, Client, Consent, User
from ..audit import events as audit
from ..identity import pii
from ..identity.rules import GENDERS, ID_TYPES, USER_TYPES
from ..verification.banks import bank_name
from .privacy_consents import CONSENT_PURPOSES, consents_of
from .profile import masked_profile
from .records import decrypted
from .security import SECURITY_QUESTIONS, confirm_password, security_questions
from .sessions import LoginSession, user_logins

EXPORT_FORMAT = "hrss-identity-personal-data/1"


@dataclass(frozen=True)
class Holding:
    """One item the platform holds, as the page shows it."""

    label: str
    value: str
    note: str = ""


@dataclass(frozen=True)
class Disclosure:
    """A relying system received the claims of ``scopes`` at ``at`` (a token was issued to it)."""

    client_id: str
    client_name: str
    scopes: list[str]
    at: datetime
    grant_type: str


def _when(moment: datetime | None) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds") if moment else ""


def holdings(user: User) -> list[Holding]:
    """Every item of the account, masked where the user centre masks it."""
    profile = masked_profile(user)
    questions = security_questions(user)
    items = [
        Holding("用户名", profile.username),
        Holding("姓名", profile.name),
        Holding("用户类型", profile.user_type),
        Holding("证件类型", profile.id_type or "—"),
        Holding("证件号码", profile.id_number or "—", "加密保存，页面仅显示部分号码"),
        Holding("性别", profile.gender or "—"),
        Holding("出生日期", profile.birthdate or "—"),
        Holding("银行", profile.bank or "—"),
        Holding("银行账号", profile.card or "—", "加密保存，仅用于银行实名核验"),
        Holding("手机号码", profile.phone or "—", "加密保存" + ("，已验证" if user.phone_verified else "")),
        Holding("实名认证", "已通过银行实名认证" if user.real_name_verified else "未实名认证"),
        Holding("登录密码", "已设置", "以不可逆的方式保存（argon2id），平台也无法得知您的密码"),
        Holding("密保问题", f"已设置{len(questions)}个" if questions else "未设置",
                "答案以不可逆的方式保存" if questions else ""),
        Holding("当前登录", f"{len(user_logins(user.id))}个", "登录时间、IP地址和设备，登录结束后删除"),
        Holding("安全日志", "登录、修改信息、授权等操作记录", "含时间、IP地址和设备，依法保存不少于180天"),
    ]
    return items


def disclosures(user: User, limit: int | None = None) -> list[Disclosure]:
    """Tokens issued to relying systems for this user, newest first (``limit`` of them)."""
    query = (
        select(AuditEvent)
        .where(AuditEvent.subject == user.sub, AuditEvent.event == "token.issued",
               AuditEvent.outcome == "success")
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    events = list(db.session.scalars(query))
    names = _client_names({e.client_id for e in events if e.client_id})
    return [
        Disclosure(
            client_id=e.client_id or "",
            client_name=names.get(e.client_id or "", e.client_id or ""),
            scopes=str((e.details or {}).get("scope") or "").split(),
            at=e.at,
            grant_type=str((e.details or {}).get("grant_type") or ""),
        )
        for e in events
    ]


def _client_names(client_ids: set[str]) -> dict[str, str]:
    if not client_ids:
        return {}
    return dict(db.session.execute(
        select(Client.client_id, Client.name).where(Client.client_id.in_(client_ids))
    ).all())


def disclosure_limit() -> int:
    return int(current_app.config["PRIVACY_DISCLOSURE_LIMIT"])


# -- 下载我的数据 --------------------------------------------------------------------------------------
def recently_authenticated(login: LoginSession | None) -> bool:
    """A login this recent counts as re-authentication for the download."""
    if login is None:
        return False
    return time.time() - login.auth_time <= int(current_app.config["PRIVACY_REAUTH_MAX_AGE"])


def download_my_data(user: User, *, login: LoginSession | None, password: str | None,
                     scope_claims: dict[str, list[str]] | None = None) -> dict:
    """The holder's copy of everything the platform holds, decrypted.  Re-authentication first:
    a recent login, or else the password (``WrongCurrentPassword`` under the login lockout).
    ``scope_claims`` names the claims each scope released (the protocol layer knows them)."""
    recent = recently_authenticated(login)
    if not recent:
        confirm_password(user, password or "")
    data = export_data(user, scope_claims=scope_claims or {})
    audit.add("privacy.data_exported", actor=user.username, subject=user.sub,
              reauth="recent_login" if recent else "password")
    db.session.commit()
    return data


def export_data(user: User, *, scope_claims: dict[str, list[str]]) -> dict:
    """Everything held about ``user``, personal data decrypted.  Secrets are described, never
    exported (the password and the security answers are irreversible hashes)."""
    id_number = decrypted(user, "id_number")
    phone = decrypted(user, "phone")
    card = decrypted(user, "card")
    consents = list(db.session.scalars(select(Consent).where(Consent.user_id == user.id)
                                       .order_by(Consent.granted_at)))
    names = _client_names({c.client_id for c in consents})
    activity = db.session.scalars(
        select(AuditEvent).where(AuditEvent.subject == user.sub).order_by(AuditEvent.at, AuditEvent.id)
    )
    return {
        "format": EXPORT_FORMAT,
        "generated_at": _when(datetime.now(timezone.utc)),
        "privacy_notice_version": str(current_app.config["PRIVACY_NOTICE_VERSION"]),
        "account": {
            "username": user.username,
            "sub": user.sub,
            "user_type": user.user_type,
            "user_type_label": USER_TYPES.get(user.user_type, user.user_type),
            "status": user.status.value,
            "created_at": _when(user.created_at),
            "updated_at": _when(user.updated_at),
            "last_login_at": _when(user.last_login_at),
            "password": "以不可逆的方式保存（argon2id），无法导出",
            "password_changed_at": _when(user.password_changed_at),
        },
        "identity": {
            "name": user.name,
            "id_type": user.id_type,
            "id_type_label": ID_TYPES.get(user.id_type or "", ""),
            "id_number": id_number,
            "gender": user.gender,
            "gender_label": GENDERS.get(user.gender or "", ""),
            "birthdate": user.birthdate.isoformat() if user.birthdate else None,
            "real_name_verified": bool(user.real_name_verified),
            "real_name_verified_at": _when(user.real_name_verified_at),
        },
        "contact": {"phone": phone, "phone_verified": bool(user.phone_verified)},
        "bank": {
            "bank_code": user.bank_code,
            "bank_name": bank_name(user.bank_code) if user.bank_code else None,
            "card_number": card,
            "purpose": "仅用于银行四要素实名核验",
        },
        "security_questions": [
            {"position": q.position, "question": SECURITY_QUESTIONS.get(q.question, q.question),
             "answer": "以不可逆的方式保存，无法导出", "set_at": _when(q.created_at)}
            for q in security_questions(user)
        ],
        "privacy_consents": [
            {"purpose": c.purpose, "statement": CONSENT_PURPOSES.get(c.purpose, ""),
             "notice_version": c.notice_version, "granted_at": _when(c.granted_at)}
            for c in consents_of(user)
        ],
        "authorised_systems": [
            {"client_id": c.client_id, "name": names.get(c.client_id, c.client_id), "scopes": c.scope.split(),
             "granted_at": _when(c.granted_at), "expires_at": _when(c.expires_at)}
            for c in consents
        ],
        "disclosures": [
            {"client_id": d.client_id, "name": d.client_name, "at": _when(d.at), "grant_type": d.grant_type,
             "scopes": d.scopes,
             "claims": sorted({claim for s in d.scopes for claim in scope_claims.get(s, [])})}
            for d in disclosures(user)
        ],
        "login_sessions": [
            {"logged_in_at": _when(datetime.fromtimestamp(s["auth_time"], timezone.utc)), "ip": s.get("ip"),
             "user_agent": s.get("ua")}
            for s in user_logins(user.id)
        ],
        "activity": [
            {"at": _when(e.at), "event": e.event, "outcome": e.outcome, "client_id": e.client_id, "ip": e.ip,
             "user_agent": e.user_agent}
            for e in activity
        ],
    }


def masked_phone(user: User) -> str:
    """The registered phone as pages show it (the closure page says where its code goes)."""
    phone = decrypted(user, "phone")
    return pii.mask_phone(phone) if phone else ""
