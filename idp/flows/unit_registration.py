"""单位用户注册: 填写登录信息 → 填写单位信息 → 填写经办人信息 → 注册成功.

The same engine and step bar as the personal wizard (``flows.registration``), whose first step
it shares.  填写单位信息 checks the unit's rules and code, then asks the enterprise credit
registry (paid from the flow's registry budget; a registry that did not answer costs nothing);
the flow keeps the unit as the registry confirmed it.  填写经办人信息 is the personal wizard's
填写身份信息 and 填写验证信息 on one page for the handler, asking what they ask (gender and birth
date where the document does not carry them, the card's separate consent recorded with the
notice's version, the card looked up before a code is spent): the SMS code to the reserved
phone, then the bank four-element check and, on a match, the account in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import request

from ..errors import UserError
from ..models import User
from ..register.forms import LoginInfoForm
from ..register.units.forms import HandlerForm, UnitInfoForm
from ..services import flow_budgets, unit_registration
from ..services.accounts.privacy_consents import claim_consents
from ..services.accounts.records import NewAccount
from ..services.identity.units import UnitInfo
from ..services.identity.rules import check_identity
from ..services.registration import audit_failure, check_verification_info
from ..services.verification.bank import BankUnavailable
from ..services.verification.phone_proof import prove
from ..services.verification.registry import RegistryUnavailable
from ..services.verification.sms import SmsCode, SmsSent
from .base import Flow, FlowDefinition, Step
from .registration import give_card_consent, parse_birthdate, send_registration_code, submit_login_info

AMR = ["pwd", "sms", "bank"]
WORDING = flow_budgets.Wording(task="本次注册", again="重新注册")
UNIT_FIELDS = ("unit_name", "unit_id_type", "uscc", "unit_type", "legal_rep_name")
HANDLER_DRAFT = ("name", "id_type", "id_number", "gender", "birthdate", "bank_code", "card_number", "phone", "consent")


@dataclass
class UnitRegistrationState:
    username: str = ""
    password_hash: str = ""
    captcha_round: int = 0
    # the unit as the registry confirmed it (empty until it did)
    unit_name: str = ""
    unit_id_type: str = ""
    uscc: str = ""
    unit_type: str = ""
    legal_rep_name: str = ""
    drafts: dict[str, dict[str, str]] = field(default_factory=dict)
    sms_phone: str | None = None
    phone_verified: str | None = None

    def unit(self) -> UnitInfo:
        return UnitInfo(self.unit_name, self.unit_id_type, self.uscc, self.unit_type, self.legal_rep_name)


# -- 填写单位信息 ----------------------------------------------------------------------------------
def submit_unit(flow: Flow[UnitRegistrationState], form: UnitInfoForm) -> None:
    state = flow.state
    flow.require("unit")
    unit = unit_registration.check_unit(form.unit_name.data, form.unit_id_type.data, form.uscc.data,
                                        form.unit_type.data, form.legal_rep_name.data)
    try:
        flow_budgets.DOCUMENT_CHECKS_PER_IP.take(request.remote_addr or "-")
        flow_budgets.DOCUMENT_CHECKS_PER_CAPTCHA.take(flow.id, str(state.captcha_round))
    except UserError as exc:
        _refuse(exc, state.username)
    unit_registration.check_uscc_free(unit, actor=state.username)
    flow_budgets.REGISTRY_CHECKS_PER_FLOW.take(flow.id, wording=WORDING)
    try:
        unit_registration.verify_unit(unit, actor=state.username)
    except RegistryUnavailable:
        flow_budgets.REGISTRY_CHECKS_PER_FLOW.give_back(flow.id)  # no answer: not a check
        raise
    flow.complete("unit")
    for name in UNIT_FIELDS:
        setattr(state, name, getattr(unit, name))


def prefill_unit(flow: Flow[UnitRegistrationState], form: UnitInfoForm) -> None:
    for name in UNIT_FIELDS:
        if value := getattr(flow.state, name):
            getattr(form, name).data = value


# -- 填写经办人信息 ------------------------------------------------------------------------------
def send_handler_code(flow: Flow[UnitRegistrationState], phone: str, *, bank_code: str | None = None,
                      card_number: str | None = None, consent: bool = False) -> SmsSent:
    """发送短信验证, exactly as at 填写验证信息: with the card typed and the consent given, the bank
    is asked what card it is first, so a credit, inactive or unknown card is refused before a code
    is spent on it."""
    flow.require("handler")
    return send_registration_code(flow, phone, bank_code=bank_code, card_number=card_number, consent=consent)


def submit_handler(flow: Flow[UnitRegistrationState], form: HandlerForm) -> User:
    flow.require("handler")
    state = flow.state
    # the identity rules only: a handler may hold a personal account of their own
    identity = check_identity(form.name.data, form.id_type.data, form.id_number.data, form.gender.data or None,
                              parse_birthdate(form.birthdate.data))
    info = check_verification_info(form.bank_code.data, form.card_number.data, form.phone.data)
    try:
        give_card_consent(flow, bool(form.consent.data))  # before the code is spent or the bank asked
        prove(SmsCode("register"), phone=info.phone, code=form.sms_code.data or "",
              requested=state.sms_phone, proven=state.phone_verified)
        state.phone_verified = info.phone
        flow_budgets.BANK_CHECKS_PER_FLOW.take(flow.id, wording=WORDING)
    except UserError as exc:
        _refuse(exc, state.username)
    try:
        user = unit_registration.register_unit(
            NewAccount(username=state.username, password="", password_hash=state.password_hash,
                       name=identity.name, id_type=identity.id_type, id_number=identity.id_number,
                       gender=identity.gender, birthdate=identity.birthdate, bank_code=info.bank_code,
                       card_number=info.card.number, phone=info.phone, unit=state.unit()),
            actor=state.username, channel="web",
        )
    except BankUnavailable:
        flow_budgets.BANK_CHECKS_PER_FLOW.give_back(flow.id)
        raise
    claim_consents(flow.id, user)
    flow.finish(username=user.username)
    return user


def save_draft(flow: Flow[UnitRegistrationState], values: Any) -> None:
    flow.state.drafts["handler"] = {k: values.get(k) or "" for k in HANDLER_DRAFT}


def handler_values(flow: Flow[UnitRegistrationState]) -> dict[str, Any]:
    return dict(flow.state.drafts.get("handler") or {})


def _refuse(exc: UserError, username: str):
    audit_failure(exc, username, "web")
    raise exc


def _heading(flow) -> dict[str, Any]:
    return {"heading": "单位用户注册", "action_endpoint": "register.unit_login_info",
            "password_kept": bool(flow.state.password_hash)}


UNIT_REGISTRATION: FlowDefinition[UnitRegistrationState] = FlowDefinition(
    "register_unit",
    (
        Step("login_info", "填写登录信息", "register.unit_login_info", LoginInfoForm, "register/login_info.html",
             submit_login_info, entry="start", path="/unit/login-info", context=_heading,
             prefill=lambda flow, form: setattr(form.username, "data", flow.state.username),
             secrets=("password", "confirm")),
        Step("unit", "填写单位信息", "register.unit_info", UnitInfoForm, "register/unit_info.html", submit_unit,
             path="/unit/unit-info", prefill=prefill_unit),
        Step("handler", "填写经办人信息", "register.unit_handler", HandlerForm, "register/unit_handler.html",
             submit_handler),
        Step("done", "注册成功", "register.unit_done", template="register/done.html"),
    ),
    UnitRegistrationState,
    idle_ttl="REGISTRATION_FLOW_IDLE_TIMEOUT",
    max_age="REGISTRATION_FLOW_LIFETIME",
    start_endpoint="register.unit_start",
)
