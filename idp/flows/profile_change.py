"""变更用户信息 as a flow: 填写信息 → (only when the phone changes) 短信验证.

The details step checks the new values with the bank; when the phone is unchanged the change is
written at once.  A new phone waits in the flow, already bank-verified, until an SMS code sent to
that new phone proves it; only then is anything written.  The flow belongs to the signed-in
account: another account's session never sees it (a login rotates the session anyway).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..account.forms import ProfileEditForm, ProfileSmsForm
from ..errors import UserError
from ..extensions import db
from ..models import User
from ..services import flow_budgets
from ..services.accounts import profile_change
from ..services.accounts.profile_change import ProfileChange
from ..services.audit import events as audit
from ..services.verification.phone_proof import CodeMissing
from ..services.verification.sms import SmsCode, SmsCodeInvalid, SmsCodeNotRequested, SmsSent
from .base import Flow, FlowDefinition, Step

WORDING = flow_budgets.Wording(task="", again="重新修改")


@dataclass
class ProfileChangeState:
    user_id: int | None = None
    change: dict[str, Any] = field(default_factory=dict)  # ProfileChange.as_dict(), bank-verified
    sms_sent: bool = False


def flow_of(user: User) -> Flow[ProfileChangeState] | None:
    flow = PROFILE_CHANGE.load()
    if flow is not None and flow.state.user_id != user.id:
        flow.discard()
        return None
    return flow


def pending_change(flow: Flow[ProfileChangeState]) -> ProfileChange:
    return ProfileChange.from_dict(flow.state.change)


def form_values(user: User) -> dict[str, str]:
    """What the details form shows: a change waiting for its SMS code (上一步), else the account."""
    flow = flow_of(user)
    if flow is not None and flow.is_complete("details"):
        change = pending_change(flow)
        return {"name": change.name, "bank_code": change.bank_code, "card_number": change.card_number,
                "phone": change.phone}
    return profile_change.current_values(user)


def submit_details(user: User, form: ProfileEditForm) -> Flow[ProfileChangeState] | None:
    """Check and bank-verify the new values.  Without a new phone they are written now (returns
    None); with one, a flow waits for the SMS step."""
    change = profile_change.prepare(user, form.name.data, form.bank_code.data, form.card_number.data or "",
                                    form.phone.data or "")
    profile_change.verify_with_bank(user, change)
    if "phone" not in change.changed:
        profile_change.apply(user, change)
        if (old := flow_of(user)) is not None:
            old.discard()
        return None
    flow = PROFILE_CHANGE.start()
    flow.complete("details")
    flow.state.user_id, flow.state.change = user.id, change.as_dict()
    return flow


def send_code(flow: Flow[ProfileChangeState], user: User) -> SmsSent:
    flow.require("sms")
    flow_budgets.SMS_PER_FLOW.take(flow.id, wording=WORDING)
    try:
        sent = SmsCode("profile").send(pending_change(flow).phone, actor=user.username)
    except UserError:
        flow_budgets.SMS_PER_FLOW.give_back(flow.id)  # nothing was sent (cooldown, cap, gateway)
        raise
    flow.state.sms_sent = True
    return sent


def submit_code(flow: Flow[ProfileChangeState], user: User, form: ProfileSmsForm) -> ProfileChange:
    flow.require("sms")
    change = pending_change(flow)
    code = form.sms_code.data or ""
    if not flow.state.sms_sent:
        raise SmsCodeNotRequested()
    if not code.strip():
        raise CodeMissing()
    try:
        SmsCode("profile").verify(change.phone, code)
    except SmsCodeInvalid as exc:
        audit.add("profile.change", "failure", actor=user.username, subject=user.sub,
                  reason=exc.reason_code, fields=list(change.changed))
        db.session.commit()
        raise
    profile_change.apply(user, change)
    flow.discard()
    return change


PROFILE_CHANGE: FlowDefinition[ProfileChangeState] = FlowDefinition(
    "profile_change",
    (
        Step("details", "填写信息", "account.edit", ProfileEditForm, "account/edit.html", submit_details),
        Step("sms", "短信验证", "account.edit_sms", ProfileSmsForm, "account/edit_sms.html", submit_code),
    ),
    ProfileChangeState,
    idle_ttl="PROFILE_FLOW_IDLE_TIMEOUT",
    max_age="PROFILE_FLOW_LIFETIME",
)
