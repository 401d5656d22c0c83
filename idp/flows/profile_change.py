"""变更用户信息 as a flow: 填写信息 → (only when the phone changes) 短信验证.

The details step checks the new values with the bank; when the phone is unchanged the change is
written at once.  A new phone waits in the flow, already bank-verified, until an SMS code sent to
that new phone proves it; only then is anything written.  The flow belongs to the signed-in
account: another account's session never sees it (a login rotates the session anyway).
The SMS step is ``sms_confirmed_change``'s, shared with 变更经办人.
"""

from __future__ import annotations

from ..account.forms import ProfileEditForm
from ..models import User
from ..services import flow_budgets
from ..services.accounts import profile_change
from ..services.accounts.profile_change import ProfileChange
from .base import Flow, Step
from .sms_confirmed_change import SmsChangeState, SmsConfirmedChange


def form_values(user: User) -> dict[str, str]:
    """What the details form shows: a change waiting for its SMS code (上一步), else the account."""
    flow = flow_of(user)
    if flow is not None and flow.is_complete("details"):
        change = pending_change(flow)
        return {"name": change.name, "bank_code": change.bank_code, "card_number": change.card_number,
                "phone": change.phone}
    return profile_change.current_values(user)


def submit_details(user: User, form: ProfileEditForm) -> Flow[SmsChangeState] | None:
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
    return CHANGE.start(user, change)


CHANGE: SmsConfirmedChange[ProfileChange] = SmsConfirmedChange(
    "profile_change",
    Step("details", "填写信息", "account.edit", ProfileEditForm, "account/edit.html", submit_details),
    sms_endpoint="account.edit_sms",
    sms_template="account/edit_sms.html",
    change_type=ProfileChange.from_dict,
    apply=profile_change.apply,
    failure_event="profile.change",
    wording=flow_budgets.Wording(task="", again="重新修改"),
)
PROFILE_CHANGE = CHANGE.definition
flow_of = CHANGE.flow_of
pending_change = CHANGE.pending_change
