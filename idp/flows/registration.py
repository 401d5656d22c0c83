"""The registration flow (SPEC §2): 填写登录信息 → 填写身份信息 → 填写验证信息 → 注册成功.

Each step's handler takes what its form gathered, checks it through the services and records it
in the flow; nothing touches the account table before the last step, which proves the phone with
an SMS code, then runs ``register_account`` (bank check, one transaction).

The flow keeps no plaintext password: step 1 stores its argon2 hash.  Per-flow limits stop the
wizard from being used as a free bank-verification oracle or an SMS pump: the SMS code must pass
before the bank is asked, and both have a small budget per flow on top of the per-phone and
per-IP limits.
"""

from __future__ import annotations

from datetime import date
from typing import Any, NoReturn

from ..errors import InvalidField, UserError
from ..models import User
from ..services.identity import passwords
from ..services import registration
from ..services.accounts.records import NewAccount
from ..services.identity.rules import Identity, check_mobile
from ..services.verification.sms import SmsCode, SmsCodeInvalid, SmsCodeNotRequested, SmsSent
from .base import Flow, FlowDefinition

REGISTRATION = FlowDefinition("register", ("login_info", "identity", "verification", "done"))

STEP_TITLES: dict[str, str] = {
    "login_info": "填写登录信息",
    "identity": "填写身份信息",
    "verification": "填写验证信息",
    "done": "注册成功",
}

MAX_SMS_PER_FLOW = 5
MAX_BANK_CHECKS_PER_FLOW = 5
AMR = ["pwd", "sms", "bank"]  # how the citizen proved themself by the end of the wizard


class KeepPasswordRefused(InvalidField):
    message = "修改了用户名，请重新输入密码"
    field = "password"


class TooManySmsInFlow(UserError):
    message = "本次注册获取短信验证码的次数过多，请稍后重新注册"
    status = 429


# -- step 1 --------------------------------------------------------------------------------------
def submit_login_info(flow: Flow, username: str, password: str, confirm: str) -> None:
    """Username and password.  Coming back to this step with the password fields left empty
    keeps the password already set (the page says so)."""
    if not password and not confirm and flow.data.get("password_hash"):
        username = registration.check_username(username)
        if username.casefold() != flow.data.get("username", "").casefold():
            # the policy forbids a password containing the username: re-check with the new one
            raise KeepPasswordRefused()
        password_hash = flow.data["password_hash"]
    else:
        username = registration.check_login_info(username, password, confirm)
        password_hash = passwords.hash_password(password)
    flow.complete("login_info", username=username, password_hash=password_hash)


# -- step 2 --------------------------------------------------------------------------------------
def submit_identity(flow: Flow, name: str, id_type: str, id_number: str, gender: str | None,
                    birthdate: date | None) -> Identity:
    identity = registration.check_identity_info(
        name, id_type, id_number, gender, birthdate, actor=flow.data.get("username")
    )
    flow.complete(
        "identity",
        name=identity.name, id_type=identity.id_type, id_number=identity.id_number,
        gender=identity.gender, birthdate=identity.birthdate.isoformat(), draft_identity=None,
    )
    return identity


# -- step 3 --------------------------------------------------------------------------------------
def send_code(flow: Flow, phone: str) -> SmsSent:
    flow.require("verification")
    phone = check_mobile(phone)
    if flow.count("sms") > MAX_SMS_PER_FLOW:
        raise TooManySmsInFlow()
    sent = SmsCode("register").send(phone, actor=flow.data.get("username"))
    flow.remember(sms_phone=phone)
    return sent


def submit_verification(flow: Flow, bank_code: str, card_number: str, phone: str, sms_code: str) -> User:
    flow.require("verification")
    info = registration.check_verification_info(bank_code, card_number, phone)
    username = flow.data["username"]
    _prove_phone(flow, info.phone, sms_code, username)
    if flow.count("bank_checks") > MAX_BANK_CHECKS_PER_FLOW:
        _refuse(registration.TooManyBankChecks(), username)
    user = registration.register_account(
        NewAccount(
            username=username, password="", password_hash=flow.data["password_hash"],
            name=flow.data["name"], id_type=flow.data["id_type"], id_number=flow.data["id_number"],
            gender=flow.data["gender"], birthdate=date.fromisoformat(flow.data["birthdate"]),
            bank_code=info.bank_code, card_number=info.card.number, phone=info.phone,
        ),
        actor=username, channel="web",
    )
    flow.finish(keep={"username": user.username})
    return user


def _prove_phone(flow: Flow, phone: str, sms_code: str, username: str) -> None:
    """A phone proven once in this flow stays proven (the citizen may go back and fix their
    identity after a mismatch); another phone needs its own code."""
    if flow.data.get("phone_verified") == phone:
        return
    if flow.data.get("sms_phone") != phone:
        _refuse(SmsCodeNotRequested(), username)
    if not (sms_code or "").strip():
        _refuse(SmsCodeInvalid("请输入短信验证码"), username)
    registration.verify_phone_code(phone, sms_code, actor=username)  # audits a wrong code itself
    flow.remember(phone_verified=phone)


def _refuse(exc: UserError, username: str) -> NoReturn:
    registration.audit_failure(exc, username, "web")
    raise exc


# -- drafts: 上一步 keeps what was typed, even when it does not validate yet ---------------------------
DRAFT_FIELDS: dict[str, tuple[str, ...]] = {
    "identity": ("name", "id_type", "id_number", "gender", "birthdate"),
    "verification": ("bank_code", "card_number", "phone"),
}


def save_draft(flow: Flow, step: str, values: dict[str, Any]) -> None:
    flow.remember(**{f"draft_{step}": {k: values.get(k) or "" for k in DRAFT_FIELDS[step]}})


def step_values(flow: Flow, step: str) -> dict[str, Any]:
    """What the step's form shows: the last draft if any, else what the step recorded."""
    draft = flow.data.get(f"draft_{step}")
    if draft:
        return dict(draft)
    return {k: flow.data.get(k) or "" for k in DRAFT_FIELDS.get(step, ())}
