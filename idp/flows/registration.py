"""The registration flow: 填写登录信息 → 填写身份信息 → 填写验证信息 → 注册成功.

Each step's handler takes its submitted form, checks it through the services and records it in
the flow's state; nothing touches the account table before the last step, which proves the phone
with an SMS code, then runs ``register_account`` (bank check, one transaction).

The flow keeps no plaintext password: step 1 stores its argon2 hash.  Its budgets (SMS sends,
bank checks, document checks per solved captcha) are the flow budgets of the services, taken
before the work: the wizard is neither a free bank-verification oracle, nor an SMS pump, nor a
way to learn which document numbers are registered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, NoReturn

from flask import request

from ..errors import UserError
from ..models import User
from ..register.forms import IdentityForm, LoginInfoForm, VerificationForm
from ..services import flow_budgets, registration
from ..services.accounts.privacy_consents import ConsentRequired, claim_consents, has_consent, record_consent
from ..services.accounts.records import NewAccount
from ..services.identity import passwords
from ..services.identity.rules import BirthdateInvalid, Identity, check_mobile
from ..services.verification.bank import BankUnavailable
from ..services.verification.phone_proof import prove
from ..services.verification.sms import SmsCode, SmsSent
from .base import Flow, FlowDefinition, Step

AMR = ["pwd", "sms", "bank"]  # how the citizen proved themself by the end of the wizard
WORDING = flow_budgets.Wording(task="本次注册", again="重新注册")
CARD_CONSENT = "bank_card_realname"  # the purpose the citizen consents to at 填写验证信息

# what 上一步 keeps of a step's form even when it does not validate yet
DRAFT_FIELDS: dict[str, tuple[str, ...]] = {
    "identity": ("name", "id_type", "id_number", "gender", "birthdate"),
    "verification": ("bank_code", "card_number", "phone", "consent"),
}


@dataclass
class RegistrationState:
    username: str = ""
    password_hash: str = ""
    name: str = ""
    id_type: str = ""
    id_number: str = ""
    gender: str = ""
    birthdate: str = ""  # ISO date
    captcha_round: int = 0  # captchas solved at step 1: each buys a few document checks at step 2
    drafts: dict[str, dict[str, str]] = field(default_factory=dict)
    sms_phone: str | None = None  # the phone the last code was sent to
    phone_verified: str | None = None  # the phone a code proved


# -- step 1 --------------------------------------------------------------------------------------
def submit_login_info(flow: Flow[RegistrationState], form: LoginInfoForm) -> None:
    """Username and password (the captcha was checked by the page).  Coming back to this step
    with the password fields left empty keeps the password already set (the page says so)."""
    state = flow.state
    password, confirm = form.password.data or "", form.confirm.data or ""
    if not password and not confirm and state.password_hash:
        username = registration.check_username(form.username.data)
        if username.casefold() != state.username.casefold():
            # the policy forbids a password containing the username: re-check with the new one
            raise registration.KeepPasswordRefused()
        password_hash = state.password_hash
    else:
        username = registration.check_login_info(form.username.data, password, confirm)
        password_hash = passwords.hash_password(password)
    flow.complete("login_info")
    state.username, state.password_hash = username, password_hash
    state.captcha_round += 1


# -- step 2 --------------------------------------------------------------------------------------
def submit_identity(flow: Flow[RegistrationState], form: IdentityForm) -> Identity:
    """The identity rules first (they say nothing about accounts), then the document check, which
    does: it is paid from the budget of the captcha solved at step 1 and of the client's IP."""
    state = flow.state
    flow.require("identity")
    identity = registration.check_identity(form.name.data, form.id_type.data, form.id_number.data,
                                           form.gender.data or None, parse_birthdate(form.birthdate.data))
    try:
        flow_budgets.DOCUMENT_CHECKS_PER_IP.take(request.remote_addr or "-")
        flow_budgets.DOCUMENT_CHECKS_PER_CAPTCHA.take(flow.id, str(state.captcha_round))
    except UserError as exc:
        _refuse(exc, state.username)
    registration.check_document_free(identity, actor=state.username)
    flow.complete("identity")
    state.name, state.id_type, state.id_number = identity.name, identity.id_type, identity.id_number
    state.gender, state.birthdate = identity.gender, identity.birthdate.isoformat()
    state.drafts.pop("identity", None)
    return identity


# -- step 3 --------------------------------------------------------------------------------------
def send_code(flow: Flow[RegistrationState], phone: str, *, bank_code: str | None = None,
              card_number: str | None = None, consent: bool = False) -> SmsSent:
    """发送短信验证.  With the card typed and the consent given, the bank is asked first what card
    it is: a credit, inactive or unknown card is refused before a code is spent on it.  The
    lookup is paid from the flow's SMS budget (not given back on a refusal), so it cannot become a
    free way to probe cards."""
    flow.require("verification")
    return send_registration_code(flow, phone, bank_code=bank_code, card_number=card_number, consent=consent)


def send_registration_code(flow: Flow, phone: str, *, bank_code: str | None, card_number: str | None,
                           consent: bool) -> SmsSent:
    """发送短信验证 of both registrations (the citizen's 填写验证信息, a unit's 填写经办人信息), once
    the step is known to be reachable; ``flow.state`` has ``username`` and ``sms_phone``."""
    phone = check_mobile(phone)
    card = None
    if consent and (card_number or "").strip():
        card = registration.check_card(bank_code, card_number or "")
    flow_budgets.SMS_PER_FLOW.take(flow.id, wording=WORDING)
    if card is not None:
        try:
            registration.refuse_unusable_card(*card)
        except BankUnavailable:
            pass  # the lookup is a courtesy: 下一步's four-element check still decides
        except UserError as exc:
            _refuse(exc, flow.state.username)
    try:
        sent = SmsCode("register").send(phone, actor=flow.state.username)
    except UserError:
        flow_budgets.SMS_PER_FLOW.give_back(flow.id)  # nothing was sent (cooldown, cap, gateway)
        raise
    flow.state.sms_phone = phone
    return sent


def give_card_consent(flow: Flow[RegistrationState], ticked: bool) -> None:
    """The separate consent to use the card for the real-name check only (PIPL Art. 29): without
    it the card goes nowhere; with it, it is recorded once per flow (with the notice's version)
    and handed to the account the flow creates."""
    if not ticked:
        raise ConsentRequired()
    if not has_consent(flow.id, CARD_CONSENT):
        record_consent(flow.id, purpose=CARD_CONSENT)


def submit_verification(flow: Flow[RegistrationState], form: VerificationForm) -> User:
    flow.require("verification")
    state = flow.state
    info = registration.check_verification_info(form.bank_code.data, form.card_number.data, form.phone.data)
    try:
        give_card_consent(flow, bool(form.consent.data))  # before the code is spent or the bank asked
        prove(SmsCode("register"), phone=info.phone, code=form.sms_code.data or "",
              requested=state.sms_phone, proven=state.phone_verified)
        state.phone_verified = info.phone  # proven: the citizen may go back and fix their identity
        flow_budgets.BANK_CHECKS_PER_FLOW.take(flow.id, wording=WORDING)
    except UserError as exc:
        _refuse(exc, state.username)
    try:
        user = registration.register_account(
            NewAccount(
                username=state.username, password="", password_hash=state.password_hash,
                name=state.name, id_type=state.id_type, id_number=state.id_number,
                gender=state.gender, birthdate=date.fromisoformat(state.birthdate),
                bank_code=info.bank_code, card_number=info.card.number, phone=info.phone,
            ),
            actor=state.username, channel="web",
        )
    except BankUnavailable:
        flow_budgets.BANK_CHECKS_PER_FLOW.give_back(flow.id)  # the bank never answered: not a check
        raise
    claim_consents(flow.id, user)
    flow.finish(username=user.username)
    return user


def _refuse(exc: UserError, username: str) -> NoReturn:
    registration.audit_failure(exc, username, "web")
    raise exc


def parse_birthdate(raw: str | None) -> date | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BirthdateInvalid() from None


# -- drafts: 上一步 keeps what was typed, even when it does not validate yet ---------------------------
def save_draft(flow: Flow[RegistrationState], step: str, values: Any) -> None:
    flow.state.drafts[step] = {k: values.get(k) or "" for k in DRAFT_FIELDS[step]}


def step_values(flow: Flow[RegistrationState], step: str) -> dict[str, Any]:
    """What the step's form shows: the last draft if any, else what the step recorded."""
    if draft := flow.state.drafts.get(step):
        return dict(draft)
    return {k: getattr(flow.state, k, "") or "" for k in DRAFT_FIELDS.get(step, ())}


REGISTRATION: FlowDefinition[RegistrationState] = FlowDefinition(
    "register",
    (
        Step("login_info", "填写登录信息", "register.login_info", LoginInfoForm, "register/login_info.html",
             submit_login_info, entry="start"),
        Step("identity", "填写身份信息", "register.identity", IdentityForm, "register/identity.html", submit_identity),
        Step("verification", "填写验证信息", "register.verification", VerificationForm,
             "register/verification.html", submit_verification),
        Step("done", "注册成功", "register.done", template="register/done.html"),
    ),
    RegistrationState,
    idle_ttl="REGISTRATION_FLOW_IDLE_TIMEOUT",
    max_age="REGISTRATION_FLOW_LIFETIME",
    start_endpoint="register.start",
)
