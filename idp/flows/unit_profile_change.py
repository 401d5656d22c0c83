"""变更经办人 (a unit account's 变更用户信息) as a flow: 填写经办人信息 → 短信验证.

The details step checks the new handler by the identity rules and the bank four-element check;
the change then waits in the flow, bank-verified, until an SMS code sent to the new handler's
phone proves it; only then is anything written (one transaction).  The flow belongs to the
signed-in account: another account's session never sees it.  变更单位名称 needs no flow (one
page, one registry check, one transaction: ``services.accounts.unit_change``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..account.forms import ProfileSmsForm, UnitHandlerForm
from ..errors import UserError
from ..extensions import db
from ..models import User
from ..services import flow_budgets
from ..services.accounts import unit_change
from ..services.accounts.unit_change import HandlerChange
from ..services.audit import events as audit
from ..services.verification.phone_proof import CodeMissing
from ..services.verification.sms import SmsCode, SmsCodeInvalid, SmsCodeNotRequested, SmsSent
from .base import Flow, FlowDefinition, Step

WORDING = flow_budgets.Wording(task="", again="重新填写")


@dataclass
class HandlerChangeState:
    user_id: int | None = None
    change: dict[str, Any] = field(default_factory=dict)  # HandlerChange.as_dict(), bank-verified
    sms_sent: bool = False


def flow_of(user: User) -> Flow[HandlerChangeState] | None:
    flow = UNIT_HANDLER_CHANGE.load()
    if flow is not None and flow.state.user_id != user.id:
        flow.discard()
        return None
    return flow


def pending_change(flow: Flow[HandlerChangeState]) -> HandlerChange:
    return HandlerChange.from_dict(flow.state.change)


def form_values(user: User) -> dict[str, str]:
    """A change waiting for its SMS code (上一步), else the current handler's name and bank (the
    document, card and phone are typed again: the page shows them masked)."""
    flow = flow_of(user)
    if flow is not None and flow.is_complete("details"):
        change = pending_change(flow)
        return {"name": change.name, "id_type": change.id_type, "id_number": change.id_number,
                "bank_code": change.bank_code, "card_number": change.card_number, "phone": change.phone}
    return {"name": user.name or "", "id_type": user.handler_id_type or "resident_id", "bank_code": user.bank_code or ""}


def submit_details(user: User, form: UnitHandlerForm) -> Flow[HandlerChangeState]:
    change = unit_change.prepare_handler(user, form.name.data, form.id_type.data, form.id_number.data,
                                         form.bank_code.data, form.card_number.data, form.phone.data)
    unit_change.verify_handler_with_bank(user, change)
    flow = UNIT_HANDLER_CHANGE.start()  # another details step starts over: no older change survives
    flow.complete("details")
    flow.state.user_id, flow.state.change = user.id, change.as_dict()
    return flow


def send_code(flow: Flow[HandlerChangeState], user: User) -> SmsSent:
    flow.require("sms")
    flow_budgets.SMS_PER_FLOW.take(flow.id, wording=WORDING)
    try:
        sent = SmsCode("profile").send(pending_change(flow).phone, actor=user.username)
    except UserError:
        flow_budgets.SMS_PER_FLOW.give_back(flow.id)  # nothing was sent (cooldown, cap, gateway)
        raise
    flow.state.sms_sent = True
    return sent


def submit_code(flow: Flow[HandlerChangeState], user: User, form: ProfileSmsForm) -> HandlerChange:
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
        audit.add("unit.handler_change", "failure", actor=user.username, subject=user.sub,
                  reason=exc.reason_code, fields=list(change.changed))
        db.session.commit()
        raise
    unit_change.apply_handler(user, change)
    flow.discard()
    return change


UNIT_HANDLER_CHANGE: FlowDefinition[HandlerChangeState] = FlowDefinition(
    "unit_handler_change",
    (
        Step("details", "填写经办人信息", "account.unit_handler", UnitHandlerForm, "account/unit_handler.html",
             submit_details),
        Step("sms", "短信验证", "account.unit_handler_sms", ProfileSmsForm, "account/unit_handler_sms.html",
             submit_code),
    ),
    HandlerChangeState,
    idle_ttl="PROFILE_FLOW_IDLE_TIMEOUT",
    max_age="PROFILE_FLOW_LIFETIME",
)
