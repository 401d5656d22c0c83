"""变更经办人 (a unit account's 变更用户信息) as a flow: 填写经办人信息 → 短信验证.

The details step checks the new handler by the identity rules and the bank four-element check;
the change then waits in the flow, bank-verified, until an SMS code sent to the new handler's
phone proves it; only then is anything written (one transaction).  The flow belongs to the
signed-in account: another account's session never sees it.  变更单位名称 needs no flow (one
page, one registry check, one transaction: ``services.accounts.unit_change``).
The SMS step is ``sms_confirmed_change``'s, shared with 变更用户信息.
"""

from __future__ import annotations

from ..account.forms import UnitHandlerForm
from ..models import User
from ..services import flow_budgets
from ..services.accounts import unit_change
from ..services.accounts.unit_change import HandlerChange
from .base import Flow, Step
from .sms_confirmed_change import SmsChangeState, SmsConfirmedChange


def form_values(user: User) -> dict[str, str]:
    """A change waiting for its SMS code (上一步), else the current handler's name and bank (the
    document, card and phone are typed again: the page shows them masked)."""
    flow = flow_of(user)
    if flow is not None and flow.is_complete("details"):
        change = pending_change(flow)
        return {"name": change.name, "id_type": change.id_type, "id_number": change.id_number,
                "bank_code": change.bank_code, "card_number": change.card_number, "phone": change.phone}
    return {"name": user.name or "", "id_type": user.handler_id_type or "resident_id", "bank_code": user.bank_code or ""}


def submit_details(user: User, form: UnitHandlerForm) -> Flow[SmsChangeState]:
    change = unit_change.prepare_handler(user, form.name.data, form.id_type.data, form.id_number.data,
                                         form.bank_code.data, form.card_number.data, form.phone.data)
    unit_change.verify_handler_with_bank(user, change)
    return CHANGE.start(user, change)  # another details step starts over: no older change survives


CHANGE: SmsConfirmedChange[HandlerChange] = SmsConfirmedChange(
    "unit_handler_change",
    Step("details", "填写经办人信息", "account.unit_handler", UnitHandlerForm, "account/unit_handler.html",
         submit_details),
    sms_endpoint="account.unit_handler_sms",
    sms_template="account/unit_handler_sms.html",
    change_type=HandlerChange.from_dict,
    apply=unit_change.apply_handler,
    failure_event="unit.handler_change",
    wording=flow_budgets.Wording(task="", again="重新填写"),
)
UNIT_HANDLER_CHANGE = CHANGE.definition
flow_of = CHANGE.flow_of
pending_change = CHANGE.pending_change
