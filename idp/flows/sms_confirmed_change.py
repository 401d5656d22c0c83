"""A change to the signed-in account that waits for an SMS code sent to its new phone.

变更用户信息 (a new phone) and 变更经办人 work the same way once their details step has checked the
new values with the bank: the change waits in the flow, bank-verified, until a code sent to the
new phone proves it; only then is it written.  The flow belongs to the signed-in account: another
account's session never sees it.  ``SmsConfirmedChange`` is that shared part: the flow definition
(the caller's details step, then 短信验证) and the SMS step's work; each flow module supplies its
details step, its change type, how the change is written and the audit event of a wrong code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from ..account.forms import ProfileSmsForm
from ..errors import UserError
from ..extensions import db
from ..models import User
from ..services import flow_budgets
from ..services.audit import events as audit
from ..services.verification.phone_proof import CodeMissing
from ..services.verification.sms import SmsCode, SmsCodeInvalid, SmsCodeNotRequested, SmsSent
from .base import Flow, FlowDefinition, Step


class PendingChange(Protocol):
    phone: str
    changed: tuple[str, ...]

    def as_dict(self) -> dict: ...


C = TypeVar("C", bound=PendingChange)


@dataclass
class SmsChangeState:
    user_id: int | None = None
    change: dict[str, Any] = field(default_factory=dict)  # the change's as_dict(), bank-verified
    sms_sent: bool = False


class SmsConfirmedChange(Generic[C]):
    def __init__(self, kind: str, details: Step, *, sms_endpoint: str, sms_template: str,
                 change_type: Callable[[dict], C], apply: Callable[[User, C], None], failure_event: str,
                 wording: flow_budgets.Wording) -> None:
        self._from_dict = change_type
        self._apply = apply
        self._failure_event = failure_event
        self._wording = wording
        self.definition: FlowDefinition[SmsChangeState] = FlowDefinition(
            kind,
            (details, Step("sms", "短信验证", sms_endpoint, ProfileSmsForm, sms_template, self.submit_code)),
            SmsChangeState,
            idle_ttl="PROFILE_FLOW_IDLE_TIMEOUT",
            max_age="PROFILE_FLOW_LIFETIME",
        )

    def flow_of(self, user: User) -> Flow[SmsChangeState] | None:
        flow = self.definition.load()
        if flow is not None and flow.state.user_id != user.id:
            flow.discard()
            return None
        return flow

    def pending_change(self, flow: Flow[SmsChangeState]) -> C:
        return self._from_dict(flow.state.change)

    def start(self, user: User, change: C) -> Flow[SmsChangeState]:
        """The details step is done: the change waits for its code (a new start drops any older one)."""
        flow = self.definition.start()
        flow.complete("details")
        flow.state.user_id, flow.state.change = user.id, change.as_dict()
        return flow

    def send_code(self, flow: Flow[SmsChangeState], user: User) -> SmsSent:
        flow.require("sms")
        flow_budgets.SMS_PER_FLOW.take(flow.id, wording=self._wording)
        try:
            sent = SmsCode("profile").send(self.pending_change(flow).phone, actor=user.username)
        except UserError:
            flow_budgets.SMS_PER_FLOW.give_back(flow.id)  # nothing was sent (cooldown, cap, gateway)
            raise
        flow.state.sms_sent = True
        return sent

    def submit_code(self, flow: Flow[SmsChangeState], user: User, form: ProfileSmsForm) -> C:
        flow.require("sms")
        change = self.pending_change(flow)
        code = form.sms_code.data or ""
        if not flow.state.sms_sent:
            raise SmsCodeNotRequested()
        if not code.strip():
            raise CodeMissing()
        try:
            SmsCode("profile").verify(change.phone, code)
        except SmsCodeInvalid as exc:
            audit.add(self._failure_event, "failure", actor=user.username, subject=user.sub,
                      reason=exc.reason_code, fields=list(change.changed))
            db.session.commit()
            raise
        self._apply(user, change)
        flow.discard()
        return change
