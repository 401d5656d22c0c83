"""注销账号 (PIPL Art. 47): the holder closes the account.

Re-authentication first — the password (under the login lockout) and an SMS code sent to the
registered phone — then one transaction:

- every token revoked durably (database record and the Redis deny-list), unused codes spent;
- the authorisations (consents) and the security answers deleted;
- the account row reduced to what the audit trail needs: its pseudonymous ``sub``, the status
  ``closed`` and when; the username, name, password hash, document, phone and card (ciphertexts
  and lookup hashes) erased, so the username, document and phone are free to register again —
  as a new account with a new ``sub`` (the closed row keeps its own, so it is never issued again);
- the audit trail's references to the username replaced by the ``sub``;
- the ``account.closed`` event.

After the commit: every login session ended (which sends back-channel logout to the relying
systems, as a password change does), the released name's lockout counters forgotten, and an SMS
notice to the former phone.  The separate privacy consents stay, tied to the pseudonymous row:
the proof that what was processed had its consent, with nothing personal in it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import delete, or_, update

from ...errors import UserError
from ...extensions import db
from ...models import AuditEvent, AuthorizationCode, Consent, SecurityAnswer, User, UserStatus
from ..audit import events as audit
from ..verification.sms import SIGNATURE, SmsCode, SmsSent, SmsUnavailable, sms_sender
from . import lockout
from .records import decrypted
from .revocation import revoke_user_tokens
from .security import confirm_password
from .sessions import revoke_all_logins

log = logging.getLogger(__name__)

SMS_PURPOSE = "account_closure"


class StaffAccountCannotClose(UserError):
    message = "管理人员的账户不能自行注销，请联系系统管理员"
    status = 403


class NoPhoneOnFile(UserError):
    message = "账号未登记手机号码，无法发送短信验证码，请联系客服（12333）办理注销"


class AccountNotActive(UserError):
    message = "账号当前不能注销，请联系客服（12333）"
    status = 409


@dataclass(frozen=True)
class ClosedAccount:
    sub: str
    tokens_revoked: int
    sessions_ended: int
    notice_sent: bool


def _closable(user: User) -> str:
    """The registered phone, once the account may be closed by its holder."""
    if user.role:
        raise StaffAccountCannotClose()
    if user.status != UserStatus.ACTIVE:
        raise AccountNotActive()
    phone = decrypted(user, "phone")
    if not phone:
        raise NoPhoneOnFile()
    return phone


def send_closure_code(user: User) -> SmsSent:
    """A code to the registered phone (the resend delay, the daily cap and the per-code tries of
    every SMS code apply)."""
    phone = _closable(user)
    return SmsCode(SMS_PURPOSE).send(phone, actor=user.username)


def close_account(user: User, password: str, sms_code: str) -> ClosedAccount:
    """Check the password, then the code, then close (see the module's description)."""
    phone = _closable(user)
    confirm_password(user, password)
    SmsCode(SMS_PURPOSE).verify(phone, sms_code)

    username, name_key, sub = user.username, user.username_key, user.sub
    now = datetime.now(timezone.utc)
    revoked = revoke_user_tokens(user.id)
    db.session.execute(
        update(AuthorizationCode)
        .where(AuthorizationCode.user_id == user.id, AuthorizationCode.used_at.is_(None))
        .values(used_at=now)
    )
    consents = db.session.execute(delete(Consent).where(Consent.user_id == user.id)).rowcount
    db.session.execute(delete(SecurityAnswer).where(SecurityAnswer.user_id == user.id))
    _erase(user, now)
    # the username may be registered again by someone else: the trail must not point at them
    names = [n for n in {username, name_key} if n]
    if names:
        db.session.execute(
            update(AuditEvent).where(AuditEvent.actor.in_(names)).values(actor=sub)
            .execution_options(synchronize_session=False)
        )
    audit.add("account.closed", actor=sub, subject=sub, revoked_tokens=revoked, consents_deleted=consents,
              )
    db.session.commit()

    ended = revoke_all_logins(user.id, reason="account_closed")
    db.session.commit()  # what back-channel logout recorded
    if name_key:
        lockout.unlock(name_key)  # whoever registers the name next starts without its failures
    return ClosedAccount(sub, revoked, ended, _notify(phone, sub))


def _erase(user: User, now: datetime) -> None:
    for column in ("username", "username_key", "password_hash", "name", "gender", "birthdate", "id_type",
                   "id_number_enc", "id_number_hash", "phone_enc", "phone_hash", "bank_code", "card_enc",
                   "card_last4", "real_name_verified_at", "last_login_at", "role"):
        setattr(user, column, None)
    user.phone_verified = False
    user.real_name_verified = False
    user.status = UserStatus.CLOSED
    user.closed_at = now
    user.password_changed_at = now  # when the last secret went


def _notify(phone: str, sub: str) -> bool:
    """The notice to the former phone; the account is closed whether or not it arrives."""
    text = (f"{SIGNATURE}您在人社局社会统一用户管理平台的账号已注销，个人信息已删除。"
            f"如非本人操作，请立即致电12333。")
    try:
        sms_sender().send(phone, text, purpose=SMS_PURPOSE)
    except SmsUnavailable:
        log.warning("account closure notice not sent (subject %s)", sub)
        audit.add("account.closed_notice", "error", actor="system", subject=sub, reason="gateway")
        db.session.commit()
        return False
    audit.add("account.closed_notice", actor="system", subject=sub)
    db.session.commit()
    return True
