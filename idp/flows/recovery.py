"""The recovery flows (SPEC §4), on the step machinery of ``idp.flows.base``:

- 忘记用户名: 验证身份 → 验证手机校验码 → 找回用户名成功
- 忘记密码:   输入用户名 → 选择找回方式 → 验证身份 → 重置密码 → 重置成功
- 手机号已停用? (from the SMS step of either): a new phone proven by SMS and by the bank
  four-element check replaces the registered one; the interrupted flow then goes on at its SMS step.

Every first step starts a fresh flow, so going back and typing other details never keeps proofs
gathered for the previous ones.  Up to the SMS step an unknown account is answered exactly like a
known one: the flow records ``user_id=None`` and goes on; the 忘记用户名 SMS step then says a code
was sent "if the details match" and sends nothing, checking typed codes against a decoy that
fails the way a real code does.  Every outcome is audited with reason codes, never personal data.
"""

from __future__ import annotations

import math
import time
from typing import NoReturn

from ..errors import InvalidField, UserError
from ..models import User
from ..services.audit import events as audit
from ..services.accounts import lockout
from ..services.identity import pii
from ..services import recovery
from ..services.accounts.security import set_new_password
from ..services.verification.bank import BankCheckFailed
from ..services.identity.rules import check_document, check_mobile, username_key
from ..services.registration import check_verification_info
from ..services.verification.sms import (
    SmsCode,
    SmsCodeExhausted,
    SmsCodeExpired,
    SmsCodeInvalid,
    SmsCodeNotRequested,
    SmsResendTooSoon,
    SmsPolicy,
    SmsSent,
)
from .base import Flow, FlowDefinition, FlowExpired, StepNotReached

USERNAME_RECOVERY = FlowDefinition("recover_username", ("identity", "sms", "done"), idle_ttl=15 * 60, max_age=3600)
PASSWORD_RECOVERY = FlowDefinition(
    "recover_password", ("username", "method", "verify", "reset", "done"), idle_ttl=15 * 60, max_age=3600
)
PHONE_CHANGE = FlowDefinition("recover_phone", ("verify", "done"), idle_ttl=15 * 60, max_age=3600)

USERNAME_STEPS: dict[str, str] = {"identity": "验证身份", "sms": "验证手机校验码", "done": "找回用户名成功"}
PASSWORD_STEPS: dict[str, str] = {
    "username": "输入用户名",
    "method": "选择找回方式",
    "verify": "验证身份",
    "reset": "重置密码",
    "done": "重置成功",
}
METHODS: dict[str, str] = {"id_sms": "证件号码+手机验证码", "questions": "密保问题"}
# how the citizen proved themself (RFC 8176), for the login that follows a reset
AMR: dict[str, list[str]] = {"id_sms": ["pwd", "sms"], "questions": ["pwd", "kba"]}

MAX_SMS_PER_FLOW = 5
MAX_FAILURES_PER_FLOW = 5
MAX_BANK_CHECKS_PER_FLOW = 3


class TooManySmsInFlow(UserError):
    message = "本次找回获取短信验证码的次数过多，请稍后重新开始"
    status = 429


class TooManyFailuresInFlow(UserError):
    message = "验证失败次数过多，请重新开始"
    status = 429


class TooManyBankChecksInFlow(UserError):
    message = "银行核验次数过多，请稍后再试"
    status = 429


class MethodInvalid(InvalidField):
    message = "请选择找回方式"


class CodeMissing(SmsCodeInvalid):
    message = "请输入短信验证码"


class AnswersMissing(InvalidField):
    message = "请依次输入3个密保问题的答案"


def _audit(event: str, outcome: str, user: User | None, **details) -> None:
    audit.record(event, outcome, actor=user.username if user else None, subject=user.sub if user else None,
                 **details)


def _fail(flow: Flow, attempt: recovery.ProofAttempt, event: str, exc: UserError, user: User | None, /,
          **details) -> NoReturn:
    """Audit a failed proof, count it against the account (or the unknown name) and the flow."""
    attempt.failed()
    _audit(event, "failure", user, reason=exc.reason_code, **details)
    if flow.count("failures") >= MAX_FAILURES_PER_FLOW:
        flow.discard()
        raise TooManyFailuresInFlow()
    raise exc


def _cooldown(flow: Flow) -> None:
    sent_at = flow.data.get("sms_sent_at")
    wait = SmsPolicy.current().resend_after
    if sent_at is not None and time.time() - sent_at < wait:
        raise SmsResendTooSoon(max(1, math.ceil(wait - (time.time() - sent_at))))


def _count_sms(flow: Flow) -> None:
    if flow.count("sms") > MAX_SMS_PER_FLOW:
        raise TooManySmsInFlow()


def _prove_phone(flow: Flow, sms: SmsCode, phone: str, code: str, user: User | None, event: str) -> None:
    """The code sent to ``phone`` in this flow; once proven the phone stays proven (the citizen
    may fix a mistyped document without a new code), another phone needs its own code."""
    if flow.data.get("phone_verified") == phone:
        return
    if flow.data.get("sms_phone") != phone:
        raise SmsCodeNotRequested()
    if not (code or "").strip():
        raise CodeMissing()
    try:
        sms.verify(phone, code)
    except SmsCodeInvalid as exc:
        _audit(event, "failure", user, reason=exc.reason_code)
        raise
    flow.remember(phone_verified=phone)


# == 忘记用户名 =======================================================================================
def submit_username_identity(name: str, user_type: str, id_type: str, id_number: str) -> Flow:
    """验证身份.  Raises only for badly formed input; any well-formed details go on to the SMS
    step, matching or not."""
    try:
        user, key = recovery.find_by_identity(name, user_type, id_type, id_number)
    except UserError as exc:
        _audit("recovery.lookup", "failure", None, flow="username", reason=exc.reason_code)
        raise
    flow = USERNAME_RECOVERY.start()
    flow.complete("identity", user_id=user.id if user else None, key=key,
                  draft={"name": name, "user_type": user_type, "id_type": id_type, "id_number": id_number})
    _audit("recovery.lookup", "success" if user else "failure", user, flow="username",
           **({} if user else {"reason": "no_match"}))
    return flow


def username_target(flow: Flow) -> tuple[User | None, str | None]:
    """The account being recovered and its registered phone (None, None when nothing matched)."""
    user = recovery.account(flow.data.get("user_id"))
    return user, recovery.registered_phone(user)


def username_sms_notice(flow: Flow, *, sent: bool) -> str:
    _, phone = username_target(flow)
    if phone:
        if sent:
            return f"短信验证码已发送至{pii.mask_phone(phone)}，{SmsPolicy.current().code_ttl // 60}分钟内有效"
        return f"短信验证码将发送至您注册时填写的手机号码{pii.mask_phone(phone)}"
    if sent:
        return f"若您填写的信息与注册信息一致，短信验证码已发送至注册时填写的手机号码，{SmsPolicy.current().code_ttl // 60}分钟内有效"
    return "若您填写的信息与注册信息一致，短信验证码将发送至注册时填写的手机号码"


def send_username_code(flow: Flow) -> str:
    """发送短信验证: a code to the registered phone; with no matching account, nothing is sent but
    the page, the cooldown and the limits are the same."""
    flow.require("sms")
    _cooldown(flow)
    _count_sms(flow)
    user, phone = username_target(flow)
    if phone:
        SmsCode("recovery").send(phone, actor=user.username)
    else:
        audit.record("sms.sent", "skipped", purpose="recovery", reason="no_account")
    flow.data.setdefault("_counters", {})["decoy_tries"] = 0
    flow.remember(sms_sent_at=time.time(), decoy_spent=False)
    return username_sms_notice(flow, sent=True)


def _decoy_verify(flow: Flow) -> NoReturn:
    """What ``SmsCode.verify`` answers to wrong codes, for a code that was never sent."""
    if flow.data.get("decoy_spent"):
        raise SmsCodeInvalid()
    tries = flow.count("decoy_tries")
    if time.time() > flow.data["sms_sent_at"] + SmsPolicy.current().code_ttl:
        flow.remember(decoy_spent=True)
        raise SmsCodeExpired()
    if tries >= SmsPolicy.current().max_tries:
        flow.remember(decoy_spent=True)
        raise SmsCodeExhausted()
    raise SmsCodeInvalid()


def submit_username_code(flow: Flow, code: str) -> None:
    """验证手机校验码 → 找回用户名成功: the username goes to the registered phone by SMS."""
    flow.require("sms")
    user, phone = username_target(flow)
    if not flow.data.get("proven"):
        if not flow.data.get("sms_sent_at"):
            raise SmsCodeNotRequested()
        if not (code or "").strip():
            raise CodeMissing()
        try:
            if phone:
                SmsCode("recovery").verify(phone, code)
            else:
                _decoy_verify(flow)
        except SmsCodeInvalid as exc:
            _audit("recovery.verify", "failure", user, flow="username", reason=exc.reason_code)
            raise
        _audit("recovery.verify", "success", user, flow="username", method="sms")
        flow.remember(proven=True)  # if sending the username fails, 下一步 retries without a new code
    recovery.send_username(user, phone)
    flow.finish(keep={"masked_phone": pii.mask_phone(phone)})


# == 忘记密码 =========================================================================================
def submit_password_username(username: str) -> Flow:
    """输入用户名: any username goes on to 选择找回方式."""
    try:
        user, key = recovery.find_by_login_name(username)
    except UserError as exc:
        _audit("recovery.lookup", "failure", None, flow="password", reason=exc.reason_code)
        raise
    flow = PASSWORD_RECOVERY.start()
    flow.complete("username", user_id=user.id if user else None, key=key, username=username.strip())
    _audit("recovery.lookup", "success" if user else "failure", user, flow="password",
           **({} if user else {"reason": "no_match"}))
    return flow


def password_account(flow: Flow) -> User | None:
    return recovery.account(flow.data.get("user_id"))


def choose_method(flow: Flow, method: str) -> None:
    """选择找回方式.  Choosing again starts 验证身份 over."""
    flow.require("method")
    if method not in METHODS:
        raise MethodInvalid()
    user = password_account(flow)
    if method == "questions":
        try:
            recovery.questions_for(user, flow.data["key"])
        except recovery.SecurityQuestionsNotSet as exc:
            _audit("recovery.verify", "failure", user, flow="password", method=method,
                   reason=exc.reason_code)
            raise
    later = PASSWORD_RECOVERY.steps[PASSWORD_RECOVERY.steps.index("method"):]
    flow.completed = [step for step in flow.completed if step not in later]
    flow.data.update(sms_phone=None, phone_verified=None)
    flow.complete("method", method=method)


def require_method(flow: Flow, method: str) -> None:
    flow.require("verify")
    if flow.data.get("method") != method:
        raise StepNotReached("method")


# -- 验证身份: 密保问题 --------------------------------------------------------------------------------
def security_question_texts(flow: Flow) -> list[str]:
    require_method(flow, "questions")
    return recovery.questions_for(password_account(flow), flow.data["key"])


def submit_answers(flow: Flow, answers: list[str]) -> None:
    require_method(flow, "questions")
    user = password_account(flow)
    with recovery.proof_attempt(flow.data["key"]) as attempt:
        recovery.questions_for(user, flow.data["key"])
        if len(answers) != 3 or not all((a or "").strip() for a in answers):
            raise AnswersMissing()
        if not recovery.answers_right(user, answers):
            _fail(flow, attempt, "recovery.verify", recovery.SecurityAnswersWrong(), user, flow="password",
                  method="questions")
    _audit("recovery.verify", "success", user, flow="password", method="questions")
    flow.complete("verify", amr=AMR["questions"])


# -- 验证身份: 证件号码+手机验证码 ------------------------------------------------------------------------
def send_password_code(flow: Flow, phone: str) -> SmsSent:
    """The code goes to the phone typed, whichever it is (the manual: another number receives a
    code but does not pass 下一步)."""
    require_method(flow, "id_sms")
    phone = check_mobile(phone)
    _count_sms(flow)
    user = password_account(flow)
    sent = SmsCode("recovery").send(phone, actor=user.username if user else None)
    flow.remember(sms_phone=phone)
    return sent


def submit_id_and_phone(flow: Flow, id_type: str, id_number: str, phone: str, code: str) -> None:
    require_method(flow, "id_sms")
    facts = check_document(id_type, id_number)
    phone = check_mobile(phone)
    user = password_account(flow)
    with recovery.proof_attempt(flow.data["key"]) as attempt:
        _prove_phone(flow, SmsCode("recovery"), phone, code, user, "recovery.verify")
        if not recovery.identity_and_phone_match(user, facts.id_type, facts.number, phone):
            _fail(flow, attempt, "recovery.verify", recovery.IdentityNotMatched(), user, flow="password",
                  method="id_sms")
    _audit("recovery.verify", "success", user, flow="password", method="id_sms")
    flow.complete("verify", amr=AMR["id_sms"])


# -- 重置密码 ----------------------------------------------------------------------------------------
def reset_username(flow: Flow) -> str:
    flow.require("reset")
    user = password_account(flow)
    if user is None:  # disabled by an operator meanwhile
        flow.discard()
        raise FlowExpired()
    return user.username


def reset_password(flow: Flow, new: str, confirm: str) -> tuple[User, list[str]]:
    """The new password, then every session and token of the account ends (``set_new_password``);
    a lockout earned by forgetting the password is lifted, since the holder just proved who they are."""
    flow.require("reset")
    user = password_account(flow)
    if user is None:
        flow.discard()
        raise FlowExpired()
    set_new_password(user, new, confirm, event="password.reset")
    lockout.unlock(username_key(user.username))
    recovery.clear_failures(flow.data["key"])
    amr = list(flow.data["amr"])
    flow.finish(keep={"username": user.username})
    return user, amr


# == 手机号已停用? ======================================================================================
ORIGINS: dict[str, FlowDefinition] = {"username": USERNAME_RECOVERY, "password": PASSWORD_RECOVERY}


def interrupted_flow(origin: str) -> Flow | None:
    """The recovery flow whose SMS step sent the citizen here, if it is at that step."""
    definition = ORIGINS.get(origin)
    flow = definition.load() if definition else None
    if flow is None or flow.finished:
        return None
    if origin == "username" and flow.is_complete("identity"):
        return flow
    if origin == "password" and flow.is_complete("method") and flow.data.get("method") == "id_sms":
        return flow
    return None


def phone_change_for(origin: str) -> Flow | None:
    """This session's phone change for the interrupted ``origin`` flow: the one under way, or a
    new one.  None when that flow is not at its SMS step."""
    interrupted = interrupted_flow(origin)
    if interrupted is None:
        return None
    flow = PHONE_CHANGE.load()
    if flow is not None and flow.data.get("origin_id") == interrupted.id:
        return flow
    flow = PHONE_CHANGE.start()
    flow.remember(origin=origin, origin_id=interrupted.id, user_id=interrupted.data.get("user_id"),
                  key=interrupted.data["key"])
    return flow


def _interrupted_of(flow: Flow) -> Flow:
    interrupted = interrupted_flow(flow.data.get("origin", ""))
    if interrupted is None or interrupted.id != flow.data.get("origin_id"):
        flow.discard()
        raise FlowExpired()
    return interrupted


def send_phone_change_code(flow: Flow, phone: str) -> SmsSent:
    flow.require("verify")
    _interrupted_of(flow)
    phone = check_mobile(phone)
    _count_sms(flow)
    user = recovery.account(flow.data.get("user_id"))
    sent = SmsCode("phone_change").send(phone, actor=user.username if user else None)
    flow.remember(sms_phone=phone)
    return sent


def submit_phone_change(flow: Flow, bank_code: str, card_number: str, phone: str, code: str) -> tuple[str, str]:
    """The new phone proven by SMS, then by the bank with the account's name and document; the
    registered phone is replaced and the interrupted flow is set back to its SMS step.  Returns the
    origin ("username" or "password") and the new phone masked."""
    flow.require("verify")
    interrupted = _interrupted_of(flow)
    info = check_verification_info(bank_code, card_number, phone)
    user = recovery.account(flow.data.get("user_id"))
    with recovery.proof_attempt(flow.data["key"]) as attempt:
        _prove_phone(flow, SmsCode("phone_change"), info.phone, code, user, "phone.change")
        if user is None:
            _audit("phone.change", "failure", None, channel="recovery", reason="no_account")
            raise recovery.RecoveryAccountUnknown()
        if flow.count("bank_checks") > MAX_BANK_CHECKS_PER_FLOW:
            raise TooManyBankChecksInFlow()
        try:
            recovery.verify_new_phone(user, info.bank_code, info.card.number, info.phone)
        except BankCheckFailed as exc:
            _fail(flow, attempt, "phone.change", exc, user, channel="recovery")
        except UserError as exc:  # the platform is unreachable: not the citizen's failure
            _audit("phone.change", "error", user, channel="recovery", reason=exc.reason_code)
            raise
    recovery.replace_phone(user, info.phone, channel="recovery")
    # back at its SMS step: a code sent to the old phone no longer counts
    interrupted.remember(sms_sent_at=None, proven=False, sms_phone=None, phone_verified=None)
    origin = flow.data["origin"]
    flow.discard()
    return origin, pii.mask_phone(info.phone)
