"""用户综合管理: finding an account, looking at it (masked), and acting on it.

Search by ID number or phone goes through the keyed hash (``pii.lookup_hash``): exact match only,
and nothing is decrypted to search; an ID number also finds the unit accounts that person acts
for (经办人).  A unit's unified social credit code is public data kept in clear and unique, so it
is matched exactly on its own column (normalised as registration stores it).  Any search can be
narrowed to one user type (个人用户 / 单位用户); a user type alone lists that type.  Every action takes a reason, checks the transition first,
then writes the status, the token revocations and the audit event in one transaction; the login
sessions (in Redis) are ended after the commit, which also tells relying systems through
back-channel logout.  An account that is locked or disabled cannot keep a session anyway: the
session check refuses inactive accounts on their next request.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import func, or_, select

from ...errors import InvalidField, UserError
from ...extensions import db
from ...models import AuditEvent, Token, User, UserStatus
from ..accounts.revocation import revoke_user_tokens
from ..audit import events as audit
from ..accounts import lockout
from ..identity import pii
from .staff import CLI_ACTOR, ROLES, Actor, check_reason
from ..accounts.authorisations import AuthorisedSystem, authorised_systems
from ..identity.rules import username_key
from ..accounts.profile import MaskedProfile, masked_profile
from ..identity.rules import ID_TYPES, USER_TYPES
from ..identity.units import UNIT_ID_TYPES, UNIT_TYPES
from ..accounts.sessions import revoke_all_logins, user_logins

SEARCH_FIELDS: dict[str, str] = {
    "username": "用户名",
    "name": "姓名",
    "id_number": "证件号码",
    "phone": "手机号码",
    "uscc": "统一社会信用代码",
    "unit_name": "单位名称",
}
SEARCH_LIMIT = 50
STATUS_LABELS: dict[str, str] = {
    UserStatus.ACTIVE.value: "正常",
    UserStatus.LOCKED.value: "已锁定",
    UserStatus.DISABLED.value: "已停用",
    UserStatus.CLOSED.value: "已注销",
}
CLOSED_USERNAME = "（已注销）"  # a closed account keeps no username: shown in its place


class UserNotFound(UserError):
    message = "用户不存在"
    status = 404


class SearchTermMissing(InvalidField):
    message = "请输入检索内容"
    field = "q"


class SearchFieldInvalid(InvalidField):
    message = "请选择检索方式"
    field = "by"


class UserTypeInvalid(InvalidField):
    message = "请选择用户类型"
    field = "user_type"


class AccountAlreadyLocked(UserError):
    message = "该账户已处于锁定状态"
    status = 409


class AccountNotLocked(UserError):
    message = "该账户未被锁定"
    status = 409


class AccountAlreadyDisabled(UserError):
    message = "该账户已停用"
    status = 409


class AccountNotDisabled(UserError):
    message = "该账户未停用"
    status = 409


class AccountClosed(UserError):
    message = "该账户已注销"
    status = 409


class CannotActOnSelf(UserError):
    message = "不能对自己的账户执行此操作"
    status = 409


class AdministratorAccountProtected(UserError):
    message = "管理人员的账户只能由系统管理员操作"
    status = 403


class RoleInvalid(InvalidField):
    message = "角色无效"
    field = "role"


class RoleUnchanged(UserError):
    message = "该账户已是此角色"
    status = 409


# -- finding ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UserRow:
    sub: str
    username: str
    name: str  # masked
    status: str
    role: str | None
    real_name_verified: bool
    created_at: datetime
    last_login_at: datetime | None
    user_type: str = "personal"
    unit_name: str | None = None  # a unit account's name (public data, shown in full)


@dataclass(frozen=True)
class SearchResult:
    rows: list[UserRow]
    truncated: bool


def search_users(by: str, value: str, *, user_type: str | None = None, actor: Actor = CLI_ACTOR) -> SearchResult:
    """Usernames match case-insensitively from the start, names and unit names by containment; ID
    numbers and phones only exactly, through their keyed hash (an ID number finds the person's
    own account and the units they act for); a unified social credit code exactly.  ``user_type``
    (``personal`` or ``unit``) narrows any search, and alone lists the accounts of that type.  The
    search itself is audited (which field and type, never the value)."""
    actor.require("users.read")
    if by not in SEARCH_FIELDS:
        raise SearchFieldInvalid()
    user_type = user_type or None
    if user_type is not None and user_type not in USER_TYPES:
        raise UserTypeInvalid()
    term = (value or "").strip()
    if not term and user_type is None:
        raise SearchTermMissing()
    query = select(User)
    if user_type is not None:
        query = query.where(User.user_type == user_type)
    if term:
        query = query.where(_matching(by, term))
    users = list(db.session.scalars(query.order_by(User.username_key).limit(SEARCH_LIMIT + 1)))
    narrowed = {**({"by": by} if term else {}), **({"user_type": user_type} if user_type else {})}
    audit.add("admin.user_search", actor=actor.username, results=min(len(users), SEARCH_LIMIT), **narrowed)
    db.session.commit()
    return SearchResult([_row(u) for u in users[:SEARCH_LIMIT]], len(users) > SEARCH_LIMIT)


def _matching(by: str, term: str):
    if by == "username":
        return User.username_key.startswith(username_key(term), autoescape=True)
    if by == "name":
        return User.name.contains(term, autoescape=True)
    if by == "unit_name":
        return User.unit_name.contains(term, autoescape=True)
    if by == "id_number":
        digest = pii.cipher().lookup_hash("id_number", term)
        return or_(User.id_number_hash == digest, User.handler_id_number_hash == digest)
    if by == "uscc":
        return User.uscc == "".join(term.split()).upper()  # as registration stores it
    return User.phone_hash == pii.cipher().lookup_hash("phone", term)


def _row(user: User) -> UserRow:
    return UserRow(
        sub=user.sub,
        username=user.username or CLOSED_USERNAME,
        name=pii.mask_name(user.name or ""),
        status=user.status.value,
        role=user.role,
        real_name_verified=user.real_name_verified,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
        user_type=user.user_type or "personal",
        unit_name=user.unit_name,
    )


def count_by_status() -> dict[str, int]:
    """Accounts by status (the console's front page)."""
    rows = db.session.execute(select(User.status, func.count()).group_by(User.status)).all()
    return {UserStatus(status).value: count for status, count in rows}


def get_user(sub: str) -> User:
    user = db.session.scalar(select(User).where(User.sub == sub))
    if user is None:
        raise UserNotFound()
    return user


def find_user(username_or_sub: str) -> User:
    """For the CLI: a username, or a subject identifier."""
    user = db.session.scalar(
        select(User).where(or_(User.username_key == username_key(username_or_sub), User.sub == username_or_sub))
    )
    if user is None:
        raise UserNotFound()
    return user


# -- looking ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UnitView:
    """A unit account's unit as the registry confirmed it, and its handler (经办人), masked: the
    code is public data and shown in full, every person's data masked."""

    unit_name: str
    unit_id_type: str
    uscc: str
    unit_type: str
    legal_rep_name: str
    handler_name: str
    handler_id_type: str
    handler_id_number: str


def unit_view(user: User) -> UnitView | None:
    if not user.is_unit:
        return None
    number = (pii.cipher().decrypt("id_number", user.handler_id_number_enc)
              if user.handler_id_number_enc else "")
    return UnitView(
        unit_name=user.unit_name or "",
        unit_id_type=UNIT_ID_TYPES.get(user.unit_id_type or "", user.unit_id_type or ""),
        uscc=user.uscc or "",
        unit_type=UNIT_TYPES.get(user.unit_type or "", user.unit_type or ""),
        legal_rep_name=pii.mask_name(user.legal_rep_name or ""),
        handler_name=pii.mask_name(user.name or ""),
        handler_id_type=ID_TYPES.get(user.handler_id_type or "", ""),
        handler_id_number=pii.mask_id_number(number) if number else "",
    )


@dataclass(frozen=True)
class UserOverview:
    sub: str
    username: str
    role: str | None
    status: str
    auto_locked_seconds: int  # > 0 while an automatic lockout (failed logins) is running
    profile: MaskedProfile  # the name masked too: an operator sees what they need to tell people apart
    created_at: datetime
    last_login_at: datetime | None
    password_changed_at: datetime
    sessions: list[dict]
    systems: list[AuthorisedSystem]
    active_tokens: dict[str, int]  # client_id → live tokens
    events: list[AuditEvent]
    unit: UnitView | None = None  # a unit account's unit and handler


RECENT_EVENTS = 20


def user_overview(sub: str, *, actor: Actor = CLI_ACTOR) -> UserOverview:
    actor.require("users.read")
    user = get_user(sub)
    profile = masked_profile(user)
    profile = dataclasses.replace(profile, name=pii.mask_name(profile.name or ""))
    key = username_key(user.username or "")
    now = datetime.now(timezone.utc)
    tokens = dict(db.session.execute(
        select(Token.client_id, func.count())
        .where(Token.user_id == user.id, Token.revoked_at.is_(None),
               or_(Token.access_expires_at > now, Token.refresh_expires_at > now))
        .group_by(Token.client_id)
    ).all())
    events = list(db.session.scalars(
        select(AuditEvent)
        .where(or_(AuditEvent.subject == user.sub, AuditEvent.actor == (user.username or user.sub)))
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(RECENT_EVENTS)
    ))
    sessions = [{k: v for k, v in s.items() if k != "sid"} for s in user_logins(user.id)]
    audit.add("admin.user_viewed", actor=actor.username, subject=user.sub)
    db.session.commit()
    return UserOverview(
        sub=user.sub,
        username=user.username or CLOSED_USERNAME,
        role=user.role,
        status=user.status.value,
        auto_locked_seconds=lockout.seconds_left(key) if key and lockout.is_locked(key) else 0,
        profile=profile,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
        password_changed_at=user.password_changed_at,
        sessions=sessions,
        systems=authorised_systems(user),
        active_tokens=tokens,
        events=events,
        unit=unit_view(user),
    )


# -- acting ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ActionResult:
    user: User
    sessions_ended: int = 0
    tokens_revoked: int = 0


def _target(sub: str, actor: Actor, reason: str | None, permission: str = "users.write") -> tuple[User, str]:
    """What every action checks first: the actor's permission, the reason, the account, and
    whether this actor may act on it.  Returns the account and the reason as stored."""
    actor.require(permission)
    reason = check_reason(reason)
    user = get_user(sub)
    if user.status == UserStatus.CLOSED:
        raise AccountClosed()
    if actor.user_id is not None and actor.user_id == user.id:
        raise CannotActOnSelf()
    if user.role and actor.role != "admin":
        raise AdministratorAccountProtected()
    return user, reason


def _commit_and_end_sessions(user: User, reason_code: str) -> int:
    db.session.commit()
    ended = revoke_all_logins(user.id, reason=reason_code)
    db.session.commit()  # what back-channel logout recorded
    return ended


def lock_account(sub: str, *, actor: Actor = CLI_ACTOR, reason: str) -> ActionResult:
    """An operator's lock: no login until unlocked; sessions and tokens end now."""
    user, reason = _target(sub, actor, reason)
    if user.status == UserStatus.LOCKED:
        raise AccountAlreadyLocked()
    if user.status == UserStatus.DISABLED:
        raise AccountAlreadyDisabled()
    user.status = UserStatus.LOCKED
    revoked = revoke_user_tokens(user.id)
    audit.add("account.locked", actor=actor.username, subject=user.sub,
              reason=reason, revoked_tokens=revoked)
    return ActionResult(user, _commit_and_end_sessions(user, "account_locked"), revoked)


def unlock_account(sub: str, *, actor: Actor = CLI_ACTOR, reason: str) -> ActionResult:
    """Lift an operator's lock, and the automatic lockout after failed logins as well."""
    user, reason = _target(sub, actor, reason)
    key = username_key(user.username)
    auto_locked = lockout.is_locked(key)
    if user.status != UserStatus.LOCKED and not auto_locked:
        raise AccountNotLocked()
    lifted = []
    if user.status == UserStatus.LOCKED:
        user.status = UserStatus.ACTIVE
        lifted.append("operator")
    if auto_locked:
        lifted.append("failed_logins")
    audit.add("account.unlocked", actor=actor.username, subject=user.sub,
              reason=reason, lifted=lifted)
    db.session.commit()
    lockout.unlock(key)
    return ActionResult(user)


def force_logout(sub: str, *, actor: Actor = CLI_ACTOR, reason: str) -> ActionResult:
    """End every login session of the user and revoke every token relying systems hold."""
    user, reason = _target(sub, actor, reason)
    revoked = revoke_user_tokens(user.id)
    sessions = len(user_logins(user.id))
    audit.add("account.logged_out", actor=actor.username, subject=user.sub,
              reason=reason, revoked_tokens=revoked, sessions=sessions)
    return ActionResult(user, _commit_and_end_sessions(user, "forced_logout"), revoked)


def disable_account(sub: str, *, actor: Actor = CLI_ACTOR, reason: str) -> ActionResult:
    user, reason = _target(sub, actor, reason)
    if user.status == UserStatus.DISABLED:
        raise AccountAlreadyDisabled()
    user.status = UserStatus.DISABLED
    revoked = revoke_user_tokens(user.id)
    audit.add("account.disabled", actor=actor.username, subject=user.sub,
              reason=reason, revoked_tokens=revoked)
    return ActionResult(user, _commit_and_end_sessions(user, "account_disabled"), revoked)


def enable_account(sub: str, *, actor: Actor = CLI_ACTOR, reason: str) -> ActionResult:
    user, reason = _target(sub, actor, reason)
    if user.status != UserStatus.DISABLED:
        raise AccountNotDisabled()
    user.status = UserStatus.ACTIVE
    audit.add("account.enabled", actor=actor.username, subject=user.sub, reason=reason)
    db.session.commit()
    return ActionResult(user)


def set_role(sub: str, role: str | None, *, actor: Actor = CLI_ACTOR, reason: str) -> ActionResult:
    """Grant or take away a role (``None``: an ordinary account).  Only a system administrator
    may, and never on their own account, so the console cannot lose its last administrator by
    accident; the CLI (run by whoever holds the server) is the way back in."""
    user, reason = _target(sub, actor, reason, "roles.write")
    role = role or None
    if role is not None and role not in ROLES:
        raise RoleInvalid()
    if user.role == role:
        raise RoleUnchanged()
    previous, user.role = user.role, role
    audit.add("account.role_changed", actor=actor.username, subject=user.sub,
              reason=reason, previous_role=previous, role=role)
    db.session.commit()
    return ActionResult(user)
