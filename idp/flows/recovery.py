"""The recovery flows, on the step engine of ``idp.flows.base``:

- 忘记用户名: 验证身份 → 验证手机校验码 → 找回用户名成功 (个人用户 by 姓名 and document, 单位用户
  by 单位名称 and 统一社会信用代码; a unit's code goes to its handler's phone)
- 忘记密码:   输入用户名 → 选择找回方式 → 验证身份 (证件号码+手机验证码 | 密保问题) → 重置密码 → 重置成功
  (a unit's 证件号码 is its 统一社会信用代码, offered in the same 证件类型 list for every username)
- 手机号已停用? (from the SMS step of either): a new phone proven by SMS and by the bank
  four-element check replaces the registered one; the interrupted flow then goes on at its SMS step.

Every first step starts a fresh flow, so going back and typing other details never keeps proofs
gathered for the previous ones.  Until the visitor proves something, an unknown account is
answered exactly like a known one, with the same pages, messages and work:

- 忘记用户名 never shows the registered phone before the code sent to it was typed back: the SMS
  step says a code goes to the registered phone "if the details match"; with no match a decoy
  code (``DecoyCode``) is kept instead of sent, and fails the way a wrong code does.
- 忘记密码 → 密保问题 asks three questions of every username: the account's own, or decoys for an
  unknown name and for an account without questions (staff accounts have none), and a decoy never
  passes.  未设置密保 is said only to a visitor who proved the identity in this flow.

Budgets (SMS sends, evaluated proofs, bank checks) are the flow budgets of the services, taken
before the work.  Every outcome is audited with reason codes, never personal data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NoReturn

from ..errors import UserError
from ..extensions import db
from ..models import User
from ..recovery.forms import (
    AnswersForm,
    IdPhoneForm,
    MethodForm,
    PasswordUsernameForm,
    PhoneChangeForm,
    ResetPasswordForm,
    UnitUsernameIdentityForm,
    UsernameIdentityForm,
    UsernameSmsForm,
)
from ..services import flow_budgets, recovery
from ..services.accounts import lockout
from ..services.accounts.security import AnswerMissing, set_new_password
from ..services.audit import events as audit
from ..services.identity import pii
from ..services.identity.rules import check_document, check_mobile, username_key
from ..services.identity.units import UNIT_ID_TYPES, check_uscc
from ..services.registration import check_card, check_verification_info, refuse_unusable_card
from ..services.verification.bank import BankCheckFailed, BankUnavailable
from ..services.verification.phone_proof import CodeMissing, DecoyCode, prove
from ..services.verification.sms import SmsCode, SmsCodeInvalid, SmsCodeNotRequested, SmsPolicy, SmsSent
from .base import Flow, FlowDefinition, FlowExpired, Step

WORDING = flow_budgets.Wording(task="本次找回", again="重新开始")
METHODS: dict[str, str] = {"id_sms": "证件号码+手机验证码", "questions": "密保问题"}
# how the citizen proved themself (RFC 8176), for the login that follows a reset
AMR: dict[str, list[str]] = {"id_sms": ["pwd", "sms"], "questions": ["pwd", "kba"]}


@dataclass
class UsernameRecoveryState:
    user_id: int | None = None  # None: the details match no account (nobody can tell)
    key: str = ""  # what the failure counters are keyed on (a keyed hash of the document or code typed)
    draft: dict[str, str] = field(default_factory=dict)  # what was typed at 验证身份 (上一步)
    sms_requested: bool = False
    proven: bool = False  # the code passed (sending the username may be retried without a new one)
    masked_phone: str = ""  # the registered phone, masked: shown once the visitor proved it (手机号已停用?, the code)


@dataclass
class PasswordRecoveryState:
    user_id: int | None = None
    key: str = ""  # a keyed hash of the username typed
    username: str = ""
    method: str | None = None
    sms_phone: str | None = None
    phone_verified: str | None = None
    identity_proven: bool = False  # a 验证身份 passed in this flow
    amr: list[str] = field(default_factory=list)


@dataclass
class PhoneChangeState:
    origin: str = ""  # "username" or "password": the interrupted flow
    origin_id: str = ""
    user_id: int | None = None
    key: str = ""
    sms_phone: str | None = None
    phone_verified: str | None = None


def _audit(event: str, outcome: str, user: User | None, **details) -> None:
    audit.add(event, outcome, actor=user.username if user else None, subject=user.sub if user else None,
              **details)
    db.session.commit()


def _evaluate(flow: Flow) -> None:
    """Before a proof is evaluated: one unit of the flow's budget (a parallel request that finds
    it spent ends the flow like the last failure does)."""
    try:
        flow_budgets.FAILURES_PER_FLOW.take(flow.id)
    except UserError:
        flow.discard()
        raise


def _fail(flow: Flow, attempt: recovery.ProofAttempt, event: str, exc: UserError, user: User | None, /,
          reason: str | None = None, **details) -> NoReturn:
    """A proof failed: audited (``reason`` when the log knows more than the visitor may),
    counted against the account (or the unknown name); the flow ends when that was its last
    allowed proof."""
    attempt.failed()
    _audit(event, "failure", user, reason=reason or exc.reason_code, **details)
    if flow_budgets.FAILURES_PER_FLOW.used(flow.id) >= flow_budgets.FAILURES_PER_FLOW.amount:
        flow.discard()
        raise flow_budgets.FAILURES_PER_FLOW.exceeded()
    raise exc


def _send(flow: Flow, sms: SmsCode, phone: str, actor: str | None) -> SmsSent:
    """One 发送短信验证 press, paid from the flow's SMS budget unless nothing was sent."""
    flow_budgets.SMS_PER_FLOW.take(flow.id, wording=WORDING)
    try:
        return sms.send(phone, actor=actor)
    except UserError:
        flow_budgets.SMS_PER_FLOW.give_back(flow.id)  # cooldown, daily cap, gateway down
        raise


# == 忘记用户名 =======================================================================================
def submit_username_identity(_flow: None, form: UsernameIdentityForm | UnitUsernameIdentityForm
                             ) -> Flow[UsernameRecoveryState]:
    """验证身份 (个人用户: 姓名 and the document; 单位用户: 单位名称 and the code).  Raises only for
    badly formed input; any well-formed details go on to the SMS step, matching or not."""
    unit = isinstance(form, UnitUsernameIdentityForm)
    if unit:
        draft = {"user_type": "unit", "unit_name": form.unit_name.data, "unit_id_type": form.unit_id_type.data,
                 "uscc": form.uscc.data}
    else:
        draft = {"name": form.name.data, "user_type": form.user_type.data, "id_type": form.id_type.data,
                 "id_number": form.id_number.data}
    try:
        if unit:
            user, key = recovery.find_unit(draft["unit_name"], draft["unit_id_type"], draft["uscc"])
        else:
            user, key = recovery.find_by_identity(draft["name"], draft["user_type"], draft["id_type"],
                                                  draft["id_number"])
    except UserError as exc:
        _audit("recovery.lookup", "failure", None, flow="username", reason=exc.reason_code)
        raise
    flow = USERNAME_RECOVERY.start()
    flow.complete("identity")
    flow.state.user_id, flow.state.key, flow.state.draft = (user.id if user else None), key, draft
    _audit("recovery.lookup", "success" if user else "failure", user, flow="username",
           user_type=draft["user_type"], **({} if user else {"reason": "no_match"}))
    return flow


def username_target(flow: Flow[UsernameRecoveryState]) -> tuple[User | None, str | None]:
    """The account being recovered and its registered phone (None, None when nothing matched)."""
    user = recovery.account(flow.state.user_id)
    return user, recovery.registered_phone(user)


def username_sms_notice(flow: Flow[UsernameRecoveryState], *, sent: bool) -> str:
    """One notice for every visitor: the registered phone is not shown before the visitor proved
    it (a phone replaced through 手机号已停用? was proven by SMS and by the bank)."""
    if masked := flow.state.masked_phone:
        if sent:
            return f"短信验证码已发送至{masked}，{SmsPolicy.current().code_ttl // 60}分钟内有效"
        return f"短信验证码将发送至您注册时填写的手机号码{masked}"
    if sent:
        return f"若您填写的信息与注册信息一致，短信验证码已发送至注册时填写的手机号码，{SmsPolicy.current().code_ttl // 60}分钟内有效"
    return "若您填写的信息与注册信息一致，短信验证码将发送至注册时填写的手机号码"


def _username_code(flow: Flow[UsernameRecoveryState], phone: str | None) -> tuple[SmsCode, str]:
    if phone:
        return SmsCode("recovery"), phone
    return DecoyCode("recovery"), DecoyCode.number_for(flow.state.key)


def send_username_code(flow: Flow[UsernameRecoveryState]) -> str:
    """发送短信验证: a code to the registered phone, or a decoy kept (not sent) when nothing
    matched; the page, the cooldown and the budgets are the same."""
    flow.require("sms")
    user, phone = username_target(flow)
    sms, number = _username_code(flow, phone)
    _send(flow, sms, number, user.username if user else None)
    flow.state.sms_requested = True
    return username_sms_notice(flow, sent=True)


def submit_username_code(flow: Flow[UsernameRecoveryState], form: UsernameSmsForm) -> None:
    """验证手机校验码 → 找回用户名成功: the username goes to the registered phone by SMS."""
    flow.require("sms")
    state = flow.state
    user, phone = username_target(flow)
    if not state.proven:
        if not state.sms_requested:
            raise SmsCodeNotRequested()
        code = form.sms_code.data or ""
        if not code.strip():
            raise CodeMissing()
        sms, number = _username_code(flow, phone)
        try:
            sms.verify(number, code)
        except SmsCodeInvalid as exc:
            _audit("recovery.verify", "failure", user, flow="username", reason=exc.reason_code)
            raise
        _audit("recovery.verify", "success", user, flow="username", method="sms")
        state.proven = True  # if sending the username fails, 下一步 retries without a new code
    recovery.send_username(user, phone)
    flow.finish(masked_phone=pii.mask_phone(phone))


# == 忘记密码 =========================================================================================
def submit_password_username(_flow: None, form: PasswordUsernameForm) -> Flow[PasswordRecoveryState]:
    """输入用户名: any username goes on to 选择找回方式."""
    username = form.username.data
    try:
        user, key = recovery.find_by_login_name(username)
    except UserError as exc:
        _audit("recovery.lookup", "failure", None, flow="password", reason=exc.reason_code)
        raise
    flow = PASSWORD_RECOVERY.start()
    flow.complete("username")
    flow.state.user_id, flow.state.key, flow.state.username = (user.id if user else None), key, username.strip()
    _audit("recovery.lookup", "success" if user else "failure", user, flow="password",
           **({} if user else {"reason": "no_match"}))
    return flow


def password_account(flow: Flow[PasswordRecoveryState]) -> User | None:
    return recovery.account(flow.state.user_id)


def choose_method(flow: Flow[PasswordRecoveryState], form: MethodForm) -> str:
    """选择找回方式.  Choosing again starts 验证身份 over.  An account without security questions
    learns so only once it proved its identity in this flow; before, it is asked decoys."""
    flow.require("method")
    method = form.method.data or ""
    if method not in METHODS:
        raise recovery.MethodInvalid()
    flow.reopen("verify")
    flow.state.method, flow.state.sms_phone, flow.state.phone_verified = None, None, None
    if method == "questions" and flow.state.identity_proven:
        user = password_account(flow)
        if not recovery.has_security_questions(user):
            exc = recovery.SecurityQuestionsNotSet()
            _audit("recovery.verify", "failure", user, flow="password", method=method, reason=exc.reason_code)
            raise exc
    flow.state.method = method
    flow.complete("method")
    return method


# -- 验证身份: 密保问题 --------------------------------------------------------------------------------
def security_question_texts(flow: Flow[PasswordRecoveryState]) -> list[str]:
    return recovery.questions_for(password_account(flow), flow.state.key)


def submit_answers(flow: Flow[PasswordRecoveryState], form: AnswersForm) -> None:
    flow.require("verify")
    state = flow.state
    user = password_account(flow)
    answers = [form.answer_1.data, form.answer_2.data, form.answer_3.data]
    with recovery.proof_attempt(state.key) as attempt:
        if not all((a or "").strip() for a in answers):
            raise AnswerMissing("请依次输入3个密保问题的答案")
        _evaluate(flow)
        if not recovery.answers_right(user, answers):
            # the audit log (never the visitor) says why an account without questions failed
            reason = None if user is None or recovery.has_security_questions(user) else \
                recovery.SecurityQuestionsNotSet().reason_code
            _fail(flow, attempt, "recovery.verify", recovery.SecurityAnswersWrong(), user, reason=reason,
                  flow="password", method="questions")
    _audit("recovery.verify", "success", user, flow="password", method="questions")
    flow.complete("verify")
    state.amr, state.identity_proven = AMR["questions"], True


# -- 验证身份: 证件号码+手机验证码 ------------------------------------------------------------------------
def send_password_code(flow: Flow[PasswordRecoveryState], phone: str) -> SmsSent:
    """The code goes to the phone typed, whichever it is (the manual: another number receives a
    code but does not pass 下一步)."""
    flow.require("verify")
    phone = check_mobile(phone)
    user = password_account(flow)
    sent = _send(flow, SmsCode("recovery"), phone, user.username if user else None)
    flow.state.sms_phone = phone
    return sent


def _document(id_type: str | None, number: str | None) -> tuple[str, str]:
    """A person's document by the identity rules, or a unit's code by GB 32100."""
    if id_type in UNIT_ID_TYPES:
        return id_type, check_uscc(id_type, number)
    facts = check_document(id_type, number)
    return facts.id_type, facts.number


def submit_id_and_phone(flow: Flow[PasswordRecoveryState], form: IdPhoneForm) -> None:
    flow.require("verify")
    state = flow.state
    id_type, id_number = _document(form.id_type.data, form.id_number.data)
    phone = check_mobile(form.phone.data)
    user = password_account(flow)
    with recovery.proof_attempt(state.key) as attempt:
        try:
            prove(SmsCode("recovery"), phone=phone, code=form.sms_code.data or "", requested=state.sms_phone,
                  proven=state.phone_verified)
        except SmsCodeInvalid as exc:
            if not isinstance(exc, (SmsCodeNotRequested, CodeMissing)):
                _audit("recovery.verify", "failure", user, reason=exc.reason_code)
            raise
        state.phone_verified = phone
        _evaluate(flow)
        if not recovery.identity_and_phone_match(user, id_type, id_number, phone):
            _fail(flow, attempt, "recovery.verify", recovery.IdentityNotMatched(), user, flow="password",
                  method="id_sms")
    _audit("recovery.verify", "success", user, flow="password", method="id_sms")
    flow.complete("verify")
    state.amr, state.identity_proven = AMR["id_sms"], True


# -- 重置密码 ----------------------------------------------------------------------------------------
def reset_username(flow: Flow[PasswordRecoveryState]) -> str:
    flow.require("reset")
    user = password_account(flow)
    if user is None:  # disabled by an operator meanwhile
        flow.discard()
        raise FlowExpired()
    return user.username


def reset_password(flow: Flow[PasswordRecoveryState], form: ResetPasswordForm) -> tuple[User, list[str]]:
    """The new password, then every session and token of the account ends (``set_new_password``);
    a lockout earned by forgetting the password is lifted, since the holder just proved who they are."""
    flow.require("reset")
    user = password_account(flow)
    if user is None:
        flow.discard()
        raise FlowExpired()
    set_new_password(user, form.new_password.data, form.confirm_password.data, event="password.reset")
    lockout.unlock(username_key(user.username))
    recovery.clear_failures(flow.state.key)
    amr = list(flow.state.amr)
    flow.finish(username=user.username)
    return user, amr


# == 手机号已停用? ======================================================================================
def interrupted_flow(origin: str) -> Flow | None:
    """The recovery flow whose SMS step sent the citizen here, if it is at that step."""
    definition = ORIGINS.get(origin)
    flow = definition.load() if definition else None
    if flow is None or flow.finished:
        return None
    if origin == "username" and flow.is_complete("identity"):
        return flow
    if origin == "password" and flow.is_complete("method") and flow.state.method == "id_sms":
        return flow
    return None


def phone_change_for(origin: str) -> Flow[PhoneChangeState] | None:
    """This session's phone change for the interrupted ``origin`` flow: the one under way, or a
    new one.  None when that flow is not at its SMS step."""
    interrupted = interrupted_flow(origin)
    if interrupted is None:
        return None
    flow = PHONE_CHANGE.load()
    if flow is not None and flow.state.origin_id == interrupted.id:
        return flow
    flow = PHONE_CHANGE.start()
    flow.state = PhoneChangeState(origin=origin, origin_id=interrupted.id, user_id=interrupted.state.user_id,
                                  key=interrupted.state.key)
    return flow


def _interrupted_of(flow: Flow[PhoneChangeState]) -> Flow:
    interrupted = interrupted_flow(flow.state.origin)
    if interrupted is None or interrupted.id != flow.state.origin_id:
        flow.discard()
        raise FlowExpired()
    return interrupted


def send_phone_change_code(flow: Flow[PhoneChangeState], phone: str, *, bank_code: str | None = None,
                           card_number: str | None = None) -> SmsSent:
    """发送短信验证.  With the card typed, the bank is asked first what card it is: a credit,
    inactive or unknown card is refused before a code is spent on it.  The lookup is paid from
    the flow's SMS budget (kept on a refusal), so it is no free way to probe cards."""
    flow.require("verify")
    _interrupted_of(flow)
    phone = check_mobile(phone)
    card = check_card(bank_code, card_number or "") if (card_number or "").strip() else None
    user = recovery.account(flow.state.user_id)
    if card is None:
        sent = _send(flow, SmsCode("phone_change"), phone, user.username if user else None)
    else:
        flow_budgets.SMS_PER_FLOW.take(flow.id, wording=WORDING)
        try:
            refuse_unusable_card(*card)
        except BankUnavailable:
            pass  # the lookup is a courtesy: 提交's four-element check still decides
        except UserError as exc:
            _audit("phone.change", "failure", user, channel="recovery", reason=exc.reason_code)
            raise
        try:
            sent = SmsCode("phone_change").send(phone, actor=user.username if user else None)
        except UserError:
            flow_budgets.SMS_PER_FLOW.give_back(flow.id)  # nothing was sent (cooldown, cap, gateway)
            raise
    flow.state.sms_phone = phone
    return sent


def submit_phone_change(flow: Flow[PhoneChangeState], form: PhoneChangeForm) -> tuple[str, str]:
    """The new phone proven by SMS, then by the bank with the account's name and document; the
    registered phone is replaced and the interrupted flow is set back to its SMS step.  Returns the
    origin ("username" or "password") and the new phone masked."""
    flow.require("verify")
    state = flow.state
    interrupted = _interrupted_of(flow)
    info = check_verification_info(form.bank_code.data, form.card_number.data, form.phone.data)
    user = recovery.account(state.user_id)
    try:
        prove(SmsCode("phone_change"), phone=info.phone, code=form.sms_code.data or "",
              requested=state.sms_phone, proven=state.phone_verified)
    except SmsCodeInvalid as exc:
        if not isinstance(exc, (SmsCodeNotRequested, CodeMissing)):
            _audit("phone.change", "failure", user, reason=exc.reason_code)
        raise
    state.phone_verified = info.phone
    if user is None:
        _audit("phone.change", "failure", None, channel="recovery", reason="no_account")
        raise recovery.RecoveryAccountUnknown()
    flow_budgets.BANK_CHECKS_PER_FLOW.take(flow.id, wording=WORDING)
    _evaluate(flow)
    try:
        with recovery.proof_attempt(state.key) as attempt:
            try:
                recovery.verify_new_phone(user, info.bank_code, info.card.number, info.phone)
            except BankCheckFailed as exc:
                _fail(flow, attempt, "phone.change", exc, user, channel="recovery")
    except BankUnavailable as exc:  # the platform did not answer: not the citizen's failure, nor a check
        flow_budgets.BANK_CHECKS_PER_FLOW.give_back(flow.id)
        flow_budgets.FAILURES_PER_FLOW.give_back(flow.id)
        _audit("phone.change", "error", user, channel="recovery", reason=exc.reason_code)
        raise
    recovery.replace_phone(user, info.phone, channel="recovery")
    # back at its SMS step: a code sent to the old phone no longer counts
    if isinstance(interrupted.state, UsernameRecoveryState):
        interrupted.state.sms_requested, interrupted.state.proven = False, False
        interrupted.state.masked_phone = pii.mask_phone(info.phone)
    else:
        interrupted.state.sms_phone, interrupted.state.phone_verified = None, None
    origin = state.origin
    flow.discard()
    return origin, pii.mask_phone(info.phone)


# == the flows, step by step ============================================================================
USERNAME_RECOVERY: FlowDefinition[UsernameRecoveryState] = FlowDefinition(
    "recover_username",
    (
        Step("identity", "验证身份", "recovery.username", UsernameIdentityForm, "recovery/username_identity.html",
             submit_username_identity, entry="open"),
        Step("sms", "验证手机校验码", "recovery.username_sms", UsernameSmsForm, "recovery/username_sms.html",
             submit_username_code),
        Step("done", "找回用户名成功", "recovery.username_done", template="recovery/username_done.html",
             path="/username/done", context=lambda flow: {"masked_phone": flow.state.masked_phone}),
    ),
    UsernameRecoveryState,
    idle_ttl="RECOVERY_FLOW_IDLE_TIMEOUT",
    max_age="RECOVERY_FLOW_LIFETIME",
)

PASSWORD_RECOVERY: FlowDefinition[PasswordRecoveryState] = FlowDefinition(
    "recover_password",
    (
        Step("username", "输入用户名", "recovery.password", PasswordUsernameForm, "recovery/password_username.html",
             submit_password_username, entry="open"),
        Step("method", "选择找回方式", "recovery.password_method", MethodForm, "recovery/password_method.html",
             choose_method, path="/password/method",
             context=lambda flow: {"methods": METHODS, "username": flow.state.username}),
        Step("verify", "验证身份", "recovery.password_verify_id", IdPhoneForm, "recovery/password_verify_id.html",
             submit_id_and_phone, variant="id_sms"),
        Step("verify", "验证身份", "recovery.password_verify_questions", AnswersForm,
             "recovery/password_verify_questions.html", submit_answers, variant="questions",
             path="/password/verify/questions", secrets=("answer_1", "answer_2", "answer_3"),
             context=lambda flow: {"questions": security_question_texts(flow)}),
        Step("reset", "重置密码", "recovery.password_reset", ResetPasswordForm, "recovery/password_reset.html",
             reset_password),
        Step("done", "重置成功", "recovery.password_done", template="recovery/password_done.html",
             path="/password/done"),
    ),
    PasswordRecoveryState,
    idle_ttl="RECOVERY_FLOW_IDLE_TIMEOUT",
    max_age="RECOVERY_FLOW_LIFETIME",
    variant_of=lambda state: state.method,
)

PHONE_CHANGE: FlowDefinition[PhoneChangeState] = FlowDefinition(
    "recover_phone",
    (Step("verify", "更换手机号", "recovery.phone_change", PhoneChangeForm, "recovery/phone_change.html",
          submit_phone_change),),
    PhoneChangeState,
    idle_ttl="RECOVERY_FLOW_IDLE_TIMEOUT",
    max_age="RECOVERY_FLOW_LIFETIME",
)

ORIGINS: dict[str, FlowDefinition] = {"username": USERNAME_RECOVERY, "password": PASSWORD_RECOVERY}
