"""Who may do what in the administration console, and the reason every action carries.

Roles are fixed and few: ``admin`` (everything), ``operator`` (users; relying systems read-only)
and ``auditor`` (the audit log only).  A role grants permissions; the web console checks a
permission on every route and the services check it again, so a view that forgot cannot act.
The command line runs as ``CLI_ACTOR``: whoever can run it already holds the database and keys.
"""

from __future__ import annotations

import getpass
import re
from dataclasses import dataclass, replace

from ...errors import InvalidField, UserError

ROLES: dict[str, str] = {"admin": "系统管理员", "operator": "运营人员", "auditor": "审计员"}

PERMISSIONS: dict[str, frozenset[str]] = {
    "console": frozenset(ROLES),
    "clients.read": frozenset({"admin", "operator"}),
    "clients.write": frozenset({"admin"}),
    "users.read": frozenset({"admin", "operator"}),
    "users.write": frozenset({"admin", "operator"}),
    "roles.write": frozenset({"admin"}),
    "audit.read": frozenset({"admin", "auditor"}),
    "audit.prune": frozenset({"admin"}),  # the retention job (CLI); deleting is not reading
}

REASON_MIN = 2
REASON_MAX = 200
# A run of 11 or more digits (phone, ID number, card number) or an 18-character resident ID:
# the reason lands in the audit log, which must never hold personal data.
_PERSONAL_DATA = re.compile(r"\d{11,}|\d{17}[\dXx]|\d{3}[\s-]?\d{4}[\s-]?\d{4}")


class PermissionDenied(UserError):
    message = "您没有权限执行该操作"
    status = 403


class ReasonMissing(InvalidField):
    message = f"请填写操作原因（{REASON_MIN}–{REASON_MAX}个字）"
    field = "reason"


class ReasonHasPersonalData(InvalidField):
    message = "操作原因中不能包含证件号、手机号或银行卡号等个人信息"
    field = "reason"


def may(role: str | None, permission: str) -> bool:
    return role is not None and role in PERMISSIONS[permission]


@dataclass(frozen=True)
class Actor:
    """The administrator behind an action: their username goes into the audit log."""

    username: str
    role: str | None
    user_id: int | None = None

    def may(self, permission: str) -> bool:
        return may(self.role, permission)

    def require(self, permission: str) -> None:
        if not self.may(permission):
            raise PermissionDenied()


CLI_ACTOR = Actor(username="cli", role="admin")


def cli_actor() -> Actor:
    """The command line as an actor, named after the operating-system user running it."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return replace(CLI_ACTOR, username=f"cli:{who}"[:128])


def actor_of(user) -> Actor:
    return Actor(username=user.username, role=user.role, user_id=user.id)


def check_reason(reason: str | None) -> str:
    """The reason as it will be stored, or a typed error."""
    text = " ".join((reason or "").split())
    if not REASON_MIN <= len(text) <= REASON_MAX:
        raise ReasonMissing()
    if _PERSONAL_DATA.search(text):
        raise ReasonHasPersonalData()
    return text
