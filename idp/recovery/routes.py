"""忘记用户名, 忘记密码 and 手机号已停用?: one page per step of the flows in
``idp.flows.recovery``.  Views read the form, call the flow step, render or redirect; every page
works without JavaScript (``static/js/register.js`` only sends the SMS without a reload).

The first step of each flow is rate limited per client IP and asks for a captcha; the SMS buttons
share a per-IP limit; the flows and services add per-account, per-phone and per-flow limits.
"""

from __future__ import annotations

import functools

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, session, url_for

from ..services.accounts.resume import pop_resume_url
from ..errors import CaptchaInvalid, UserError
from ..extensions import limiter
from ..form_feedback import attach_error, not_sending_sms, run_sms_step, sms_ip_limit, sms_json
from ..flows import FlowDefinition, FlowExpired, StepNotReached
from ..flows.recovery import (
    METHODS,
    PASSWORD_RECOVERY,
    PASSWORD_STEPS,
    PHONE_CHANGE,
    USERNAME_RECOVERY,
    USERNAME_STEPS,
    choose_method,
    phone_change_for,
    reset_password,
    reset_username,
    security_question_texts,
    send_password_code,
    send_phone_change_code,
    send_username_code,
    submit_answers,
    submit_id_and_phone,
    submit_password_username,
    submit_phone_change,
    submit_username_code,
    submit_username_identity,
    username_sms_notice,
)
from ..services.verification import captcha
from ..services.accounts.sessions import start_login
from .forms import (
    AnswersForm,
    IdPhoneForm,
    MethodForm,
    PasswordUsernameForm,
    PhoneChangeForm,
    ResetPasswordForm,
    UsernameIdentityForm,
    UsernameSmsForm,
)

bp = Blueprint("recovery", __name__, url_prefix="/recovery")

USERNAME_ENDPOINTS = {"identity": "recovery.username", "sms": "recovery.username_sms", "done": "recovery.username_done"}
PASSWORD_ENDPOINTS = {"username": "recovery.password", "method": "recovery.password_method",
                      "reset": "recovery.password_reset", "done": "recovery.password_done"}
VERIFY_ENDPOINTS = {"id_sms": "recovery.password_verify_id", "questions": "recovery.password_verify_questions"}
# where 手机号已停用? returns: the SMS step of the interrupted flow
SMS_STEP_ENDPOINTS = {"username": "recovery.username_sms", "password": "recovery.password_verify_id"}


def _recovery_ip_limit() -> str:
    return current_app.config["RECOVERY_IP_LIMIT"]



def _step_endpoint(definition: FlowDefinition, flow, step: str) -> str:
    if definition is USERNAME_RECOVERY:
        return USERNAME_ENDPOINTS[step]
    if step == "verify":
        return VERIFY_ENDPOINTS.get(flow.data.get("method"), PASSWORD_ENDPOINTS["method"])
    return PASSWORD_ENDPOINTS[step]


def flow_step(definition: FlowDefinition, step: str, method: str | None = None):
    """Load this session's flow and make sure ``step`` (and for 验证身份, the ``method`` chosen)
    may be shown; otherwise send the visitor where they belong: the first step, or the first
    step still missing."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(**kwargs):
            had_flow = definition.in_session()
            flow = definition.load()
            first = definition.steps[0]
            if flow is None or (flow.finished and step != definition.steps[-1]):
                if flow is None and had_flow:
                    flash(FlowExpired.message, "error")
                return redirect(url_for(_step_endpoint(definition, flow, first)))
            try:
                flow.require(step)
            except StepNotReached as missing:
                return redirect(url_for(_step_endpoint(definition, flow, missing.step)))
            if method is not None and flow.data.get("method") != method:
                return redirect(url_for(_step_endpoint(definition, flow, "verify")))
            return view(flow, **kwargs)

        return wrapped

    return decorator


# the password policy names its field "password"; on the reset form it is 新密码
_FIELD_ALIASES = {"password": "new_password"}


def _steps(titles: dict[str, str]) -> list[tuple[str, str]]:
    return list(titles.items())


def _render_username(template: str, step: str, status: int = 200, **context):
    return render_template(template, steps=_steps(USERNAME_STEPS), current=step, **context), status


def _render_password(template: str, step: str, status: int = 200, **context):
    return render_template(template, steps=_steps(PASSWORD_STEPS), current=step, **context), status


# == 忘记用户名 ====================================================================================
@bp.route("/username", methods=["GET", "POST"])
@limiter.limit(_recovery_ip_limit, methods=["POST"])
def username():
    """验证身份: 姓名, 用户类型, 证件类型, 证件号, 验证码."""
    form = UsernameIdentityForm()
    error = None
    if form.validate_on_submit():
        try:
            if not captcha.check_captcha(form.captcha_id.data, form.captcha.data):
                raise CaptchaInvalid()
            submit_username_identity(form.name.data, form.user_type.data, form.id_type.data, form.id_number.data)
        except UserError as exc:
            error = attach_error(form, exc, _FIELD_ALIASES)
        else:
            return redirect(url_for("recovery.username_sms"))
    elif not form.is_submitted():
        flow = USERNAME_RECOVERY.load()
        if flow is not None and not flow.finished:  # back from the SMS step: what was typed
            form.process(data=flow.data.get("draft"))
    failed = form.is_submitted()
    form.captcha.data = ""
    form.captcha_id.data = captcha.issue_captcha()
    return _render_username("recovery/username_identity.html", "identity", 400 if failed else 200,
                            form=form, error=error)


@bp.route("/username/sms", methods=["GET", "POST"])
@limiter.shared_limit(sms_ip_limit, scope="recovery-sms", exempt_when=not_sending_sms)
@flow_step(USERNAME_RECOVERY, "sms")
def username_sms(flow):
    """验证手机校验码: a code to the registered phone (shown masked), typed into 动态验证."""
    form = UsernameSmsForm()
    outcome = run_sms_step(
        form, aliases=_FIELD_ALIASES,
        send=lambda: send_username_code(flow),
        submit=lambda: submit_username_code(flow, form.sms_code.data or ""),
    )
    if outcome.done:
        return redirect(url_for("recovery.username_done"))
    return _render_username("recovery/username_sms.html", "sms", outcome.status, form=form, error=outcome.error,
                            notice=outcome.sms_status or username_sms_notice(flow, sent=False),
                            sent=outcome.sent is not None)


@bp.get("/username/done")
@flow_step(USERNAME_RECOVERY, "done")
def username_done(flow):
    return _render_username("recovery/username_done.html", "done", masked_phone=flow.data.get("masked_phone", ""))


# == 忘记密码 =====================================================================================
@bp.route("/password", methods=["GET", "POST"])
@limiter.limit(_recovery_ip_limit, methods=["POST"])
def password():
    """输入用户名: 用户名, 验证码."""
    form = PasswordUsernameForm()
    error = None
    if form.validate_on_submit():
        try:
            if not captcha.check_captcha(form.captcha_id.data, form.captcha.data):
                raise CaptchaInvalid()
            submit_password_username(form.username.data)
        except UserError as exc:
            error = attach_error(form, exc, _FIELD_ALIASES)
        else:
            return redirect(url_for("recovery.password_method"))
    elif not form.is_submitted():
        flow = PASSWORD_RECOVERY.load()
        if flow is not None and not flow.finished:
            form.username.data = flow.data.get("username", "")
    failed = form.is_submitted()
    form.captcha.data = ""
    form.captcha_id.data = captcha.issue_captcha()
    return _render_password("recovery/password_username.html", "username", 400 if failed else 200,
                            form=form, error=error)


@bp.route("/password/method", methods=["GET", "POST"])
@flow_step(PASSWORD_RECOVERY, "method")
def password_method(flow):
    """选择找回方式: 证件号码+手机验证码 or 密保问题."""
    form = MethodForm()
    error, status = None, 200
    if form.validate_on_submit():
        try:
            choose_method(flow, form.method.data or "")
        except UserError as exc:
            error, status = exc.message, exc.status
        else:
            return redirect(url_for(VERIFY_ENDPOINTS[form.method.data]))
    elif form.is_submitted():
        status = 400
    return _render_password("recovery/password_method.html", "method", status, form=form, error=error,
                            methods=METHODS, username=flow.data.get("username", ""))


@bp.route("/password/verify/id", methods=["GET", "POST"])
@limiter.shared_limit(sms_ip_limit, scope="recovery-sms", exempt_when=not_sending_sms)
@flow_step(PASSWORD_RECOVERY, "verify", method="id_sms")
def password_verify_id(flow):
    """验证身份 (证件号码+手机验证码): 证件类型, 证件号, 手机号码, 发送短信验证, 动态验证."""
    form = IdPhoneForm()
    outcome = run_sms_step(
        form, aliases=_FIELD_ALIASES,
        send=lambda: send_password_code(flow, form.phone.data or ""),
        submit=lambda: submit_id_and_phone(flow, form.id_type.data, form.id_number.data, form.phone.data,
                                           form.sms_code.data or ""),
    )
    if outcome.done:
        return redirect(url_for("recovery.password_reset"))
    if not PASSWORD_RECOVERY.in_session():  # too many failures ended the flow
        flash(outcome.error or FlowExpired.message, "error")
        return redirect(url_for("recovery.password"))
    return _render_password("recovery/password_verify_id.html", "verify", outcome.status, form=form,
                            error=outcome.error, sms_status=outcome.sms_status)


@bp.post("/password/verify/id/sms")
@limiter.shared_limit(sms_ip_limit, scope="recovery-sms")
def password_verify_id_sms():
    flow = PASSWORD_RECOVERY.load()
    if flow is None:
        return jsonify(error="flow_expired", message=FlowExpired.message), 400
    return sms_json(lambda: send_password_code(flow, request.form.get("phone", "")))


@bp.route("/password/verify/questions", methods=["GET", "POST"])
@flow_step(PASSWORD_RECOVERY, "verify", method="questions")
def password_verify_questions(flow):
    """验证身份 (密保问题): the three answers."""
    form = AnswersForm()
    error, status = None, 200
    try:
        questions = security_question_texts(flow)
    except UserError as exc:
        flash(exc.message, "error")
        return redirect(url_for("recovery.password_method"))
    if form.validate_on_submit():
        try:
            submit_answers(flow, [form.answer_1.data, form.answer_2.data, form.answer_3.data])
        except UserError as exc:
            error, status = exc.message, exc.status
        else:
            return redirect(url_for("recovery.password_reset"))
    elif form.is_submitted():
        status = 400
    if not PASSWORD_RECOVERY.in_session():
        flash(error or FlowExpired.message, "error")
        return redirect(url_for("recovery.password"))
    for answer in (form.answer_1, form.answer_2, form.answer_3):
        answer.data = ""  # answers are secrets: never sent back
    return _render_password("recovery/password_verify_questions.html", "verify", status, form=form, error=error,
                            questions=questions)


@bp.route("/password/reset", methods=["GET", "POST"])
@flow_step(PASSWORD_RECOVERY, "reset")
def password_reset(flow):
    """重置密码: 用户名 shown, 新密码, 确认新密码 (and the captcha of every password form)."""
    form = ResetPasswordForm()
    error = None
    if form.validate_on_submit():
        try:
            if not captcha.check_captcha(form.captcha_id.data, form.captcha.data):
                raise CaptchaInvalid()
            user, amr = reset_password(flow, form.new_password.data, form.confirm_password.data)
        except UserError as exc:
            error = attach_error(form, exc, _FIELD_ALIASES)
        else:
            resume = pop_resume_url()
            if resume:  # came from a relying system: back there, signed in
                start_login(user, amr=amr)
                return redirect(resume)
            session["login_hint"] = user.username  # the login page offers the username
            return redirect(url_for("recovery.password_done"))
    failed = form.is_submitted()
    form.new_password.data = form.confirm_password.data = form.captcha.data = ""
    form.captcha_id.data = captcha.issue_captcha()
    return _render_password("recovery/password_reset.html", "reset", 400 if failed else 200, form=form, error=error,
                            username=reset_username(flow))


@bp.get("/password/done")
@flow_step(PASSWORD_RECOVERY, "done")
def password_done(flow):
    return _render_password("recovery/password_done.html", "done")


# == 手机号已停用? ==================================================================================
def _interrupted_definition(origin: str) -> FlowDefinition:
    return USERNAME_RECOVERY if origin == "username" else PASSWORD_RECOVERY


@bp.route("/phone/<origin>", methods=["GET", "POST"])
@limiter.shared_limit(sms_ip_limit, scope="recovery-sms", exempt_when=not_sending_sms)
def phone_change(origin: str):
    """更换手机号: a bank card whose reserved phone is the new number, and an SMS code to it."""
    if origin not in SMS_STEP_ENDPOINTS:
        abort(404)
    flow = phone_change_for(origin)
    if flow is None:  # the interrupted flow is not at its SMS step (or expired)
        return redirect(url_for(SMS_STEP_ENDPOINTS[origin]))
    form = PhoneChangeForm()
    outcome = run_sms_step(
        form, aliases=_FIELD_ALIASES,
        send=lambda: send_phone_change_code(flow, form.phone.data or ""),
        submit=lambda: submit_phone_change(flow, form.bank_code.data, form.card_number.data, form.phone.data,
                                           form.sms_code.data or ""),
    )
    if outcome.done:
        origin, masked = outcome.result
        flash(f"手机号码已更换为{masked}，请继续完成验证", "ok")
        return redirect(url_for(SMS_STEP_ENDPOINTS[origin]))
    if not PHONE_CHANGE.in_session():  # ended by too many failures, or the interrupted flow expired
        flash(outcome.error or FlowExpired.message, "error")
        return redirect(url_for(SMS_STEP_ENDPOINTS[origin]))
    titles = USERNAME_STEPS if origin == "username" else PASSWORD_STEPS
    return render_template("recovery/phone_change.html", form=form, error=outcome.error,
                           sms_status=outcome.sms_status, origin=origin, steps=_steps(titles),
                           current="sms" if origin == "username" else "verify",
                           back_url=url_for(SMS_STEP_ENDPOINTS[origin])), outcome.status


@bp.post("/phone/<origin>/sms")
@limiter.shared_limit(sms_ip_limit, scope="recovery-sms")
def phone_change_sms(origin: str):
    if origin not in SMS_STEP_ENDPOINTS:
        abort(404)
    flow = phone_change_for(origin)
    if flow is None:
        return jsonify(error="step_not_reached", message="请先完成前面的步骤"), 409
    return sms_json(lambda: send_phone_change_code(flow, request.form.get("phone", "")))
