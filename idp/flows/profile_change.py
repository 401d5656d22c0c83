"""变更用户信息 as a flow (SPEC §3): 填写信息 → (only when the phone changes) 短信验证.

The details step checks the new values with the bank; when the phone is unchanged the change is
written at once.  A new phone waits in the flow, already bank-verified, until an SMS code sent to
that new phone proves it; only then is anything written.  The flow belongs to the signed-in
account: another account's session never sees it (a login rotates the session anyway).
"""

from __future__ import annotations

from ..errors import UserError
from ..models import User
from ..services.audit import events as audit
from ..services.accounts import profile_change
from ..services.accounts.profile_change import ProfileChange
from ..services.verification.sms import SmsCode, SmsCodeInvalid, SmsCodeNotRequested, SmsSent
from .base import Flow, FlowDefinition
from .recovery import CodeMissing

PROFILE_CHANGE = FlowDefinition("profile_change", ("details", "sms"), idle_ttl=15 * 60, max_age=3600)
MAX_SMS_PER_FLOW = 5


class TooManySmsInFlow(UserError):
    message = "获取短信验证码的次数过多，请稍后重新修改"
    status = 429


def flow_of(user: User) -> Flow | None:
    flow = PROFILE_CHANGE.load()
    if flow is not None and flow.data.get("user_id") != user.id:
        flow.discard()
        return None
    return flow


def pending_change(flow: Flow) -> ProfileChange:
    return ProfileChange.from_dict(flow.data["change"])


def form_values(user: User) -> dict[str, str]:
    """What the details form shows: a change waiting for its SMS code (上一步), else the account."""
    flow = flow_of(user)
    if flow is not None and flow.is_complete("details"):
        change = pending_change(flow)
        return {"name": change.name, "bank_code": change.bank_code, "card_number": change.card_number,
                "phone": change.phone}
    return profile_change.current_values(user)


def submit_details(user: User, name: str, bank_code: str | None, card_number: str, phone: str) -> Flow | None:
    """Check and bank-verify the new values.  Without a new phone they are written now (returns
    None); with one, a flow waits for the SMS step."""
    change = profile_change.prepare(user, name, bank_code, card_number, phone)
    profile_change.verify_with_bank(user, change)
    if "phone" not in change.changed:
        profile_change.apply(user, change)
        if (old := flow_of(user)) is not None:
            old.discard()
        return None
    flow = PROFILE_CHANGE.start()
    flow.complete("details", user_id=user.id, change=change.as_dict())
    return flow


def send_code(flow: Flow, user: User) -> SmsSent:
    flow.require("sms")
    if flow.count("sms") > MAX_SMS_PER_FLOW:
        raise TooManySmsInFlow()
    sent = SmsCode("profile").send(pending_change(flow).phone, actor=user.username)
    flow.remember(sms_sent=True)
    return sent


def submit_code(flow: Flow, user: User, code: str) -> ProfileChange:
    flow.require("sms")
    change = pending_change(flow)
    if not flow.data.get("sms_sent"):
        raise SmsCodeNotRequested()
    if not (code or "").strip():
        raise CodeMissing()
    try:
        SmsCode("profile").verify(change.phone, code)
    except SmsCodeInvalid as exc:
        audit.record("profile.change", "failure", actor=user.username, subject=user.sub,
                     reason=exc.reason_code, fields=list(change.changed))
        raise
    profile_change.apply(user, change)
    flow.discard()
    return change
