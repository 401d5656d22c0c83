"""忘记用户名, 忘记密码 and 手机号已停用?: one page per step of the flows in
``idp.flows.recovery``.  Views read the form, call the flow step, render or redirect; every page
works without JavaScript (``static/js/register.js`` only sends the SMS without a reload).

The first step of each flow is rate limited per client IP and asks for a captcha; the SMS buttons
share a per-IP limit; the flows and services add per-account, per-phone and per-flow limits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, session, url_for

from ..services.accounts.resume import pop_resume_url
from ..extensions import limiter
from ..flows import FlowDefinition, FlowExpired
from ..flows.recovery import (
    PASSWORD_RECOVERY,
    PHONE_CHANGE,
    USERNAME_RECOVERY,
    phone_change_for,
    reset_username,
    send_password_code,
    send_phone_change_code,
    send_username_code,
    submit_username_identity,
    username_sms_notice,
)
from ..form_feedback import not_sending_sms, register_step_pages, run_form, run_sms_step, sms_ip_limit, sms_json
from ..form_rules import rules_context
from .forms import IDENTITY_FORMS
from ..services.verification.captcha import issue_captcha
from ..services.accounts.sessions import start_login

bp = Blueprint("recovery", __name__, url_prefix="/recovery")
bp.context_processor(rules_context)

# where 手机号已停用? returns: the SMS step of the interrupted flow
SMS_STEPS: dict[str, tuple[FlowDefinition, str, str]] = {
    "username": (USERNAME_RECOVERY, "sms", "recovery.username_sms"),
    "password": (PASSWORD_RECOVERY, "verify", "recovery.password_verify_id"),
}
# the password policy names its field "password"; on the reset form it is 新密码; a unit's code
# and its type go in 证件号 and 证件类型 where the page has no field of their own
_FIELD_ALIASES = {"password": "new_password", "uscc": "id_number", "unit_id_type": "id_type"}


def _recovery_ip_limit() -> str:
    return current_app.config["RECOVERY_IP_LIMIT"]


# the steps whose page is the standard one (选择找回方式, 密保问题, the final pages)
register_step_pages(bp, USERNAME_RECOVERY, aliases=_FIELD_ALIASES)
register_step_pages(bp, PASSWORD_RECOVERY, aliases=_FIELD_ALIASES)


def _render(definition: FlowDefinition, name: str, status: int = 200, *, variant: str | None = None, **context):
    step = next(s for s in definition.steps if s.name == name and (variant is None or s.variant == variant))
    return render_template(step.template, steps=definition.titles(), current=name, **context), status


def _form_step(definition: FlowDefinition, flow, name: str, *, variant: str | None = None,
               prefill: Callable[[Any], None] | None = None, **options):
    """The form of step ``name`` (``prefill`` fills it on a GET) and the outcome of running its
    handler."""
    step = next(s for s in definition.steps if s.name == name and (variant is None or s.variant == variant))
    form = step.form()
    if prefill is not None and not form.is_submitted():
        prefill(form)
    return form, run_form(form, lambda: step.handler(flow, form), aliases=_FIELD_ALIASES, **options)


def _ended(definition: FlowDefinition, error: str | None):
    """The flow was ended by its last allowed failure: back to its first step, saying why."""
    flash(error or FlowExpired.message, "error")
    return redirect(url_for(definition.first.endpoint))


# == 忘记用户名 ====================================================================================
@bp.route("/username", methods=["GET", "POST"])
@limiter.limit(_recovery_ip_limit, methods=["POST"])
@USERNAME_RECOVERY.guard("identity")
def username(flow):
    """验证身份: 用户类型, then 姓名, 证件类型, 证件号 (个人用户) or 单位名称, 证件类型, 统一社会信用代码
    (单位用户), and 验证码.  The 用户类型 radio changes the form: with JavaScript at once
    (``?type=unit``), without it on 下一步, which then shows the other form and checks nothing."""
    draft = flow.state.draft if flow is not None else {}
    kind, switched = _identity_kind(draft)
    if switched:
        form = IDENTITY_FORMS[kind](formdata=None, user_type=kind)
        form.captcha_id.data = issue_captcha()
        return _render(USERNAME_RECOVERY, "identity", form=form, error=None, user_type=kind)
    form = IDENTITY_FORMS[kind]()
    if not form.is_submitted() and draft.get("user_type", "personal") == kind:
        form.process(data=draft)  # back from the SMS step: what was typed
    outcome = run_form(form, lambda: submit_username_identity(None, form), aliases=_FIELD_ALIASES)
    if outcome.done:
        return redirect(USERNAME_RECOVERY.url_for("sms"))
    return _render(USERNAME_RECOVERY, "identity", outcome.status, form=form, error=outcome.error, user_type=kind)


def _identity_kind(draft: dict) -> tuple[str, bool]:
    """Which 用户类型's form the identity page shows, and whether this POST only chose another
    one (its form has the other kind's fields)."""
    if request.method == "POST":
        chosen = request.form.get("user_type")
        chosen = chosen if chosen in IDENTITY_FORMS else "personal"  # a bad value: the service says so
        posted = "unit" if "uscc" in request.form else "personal"
        return chosen, chosen != posted
    chosen = request.args.get("type") or draft.get("user_type") or "personal"
    return (chosen if chosen in IDENTITY_FORMS else "personal"), False


@bp.route("/username/sms", methods=["GET", "POST"])
@limiter.shared_limit(sms_ip_limit, scope="recovery-sms", exempt_when=not_sending_sms)
@USERNAME_RECOVERY.guard("sms")
def username_sms(flow):
    """验证手机校验码: a code to the registered phone, typed into 动态验证."""
    step = USERNAME_RECOVERY.step("sms")
    form = step.form()
    outcome = run_sms_step(form, aliases=_FIELD_ALIASES, send=lambda: send_username_code(flow),
                           submit=lambda: step.handler(flow, form))
    if outcome.done:
        return redirect(USERNAME_RECOVERY.url_for("done"))
    return _render(USERNAME_RECOVERY, "sms", outcome.status, form=form, error=outcome.error,
                   notice=outcome.sms_status or username_sms_notice(flow, sent=False), sent=outcome.sent is not None)


# == 忘记密码 =====================================================================================
@bp.route("/password", methods=["GET", "POST"])
@limiter.limit(_recovery_ip_limit, methods=["POST"])
@PASSWORD_RECOVERY.guard("username")
def password(flow):
    """输入用户名: 用户名, 验证码."""
    prefill = (lambda form: setattr(form.username, "data", flow.state.username)) if flow is not None else None
    form, outcome = _form_step(PASSWORD_RECOVERY, None, "username", prefill=prefill)
    if outcome.done:
        return redirect(PASSWORD_RECOVERY.url_for("method"))
    return _render(PASSWORD_RECOVERY, "username", outcome.status, form=form, error=outcome.error)


@bp.route("/password/verify/id", methods=["GET", "POST"])
@limiter.shared_limit(sms_ip_limit, scope="recovery-sms", exempt_when=not_sending_sms)
@PASSWORD_RECOVERY.guard("verify", variant="id_sms")
def password_verify_id(flow):
    """验证身份 (证件号码+手机验证码): 证件类型, 证件号, 手机号码, 发送短信验证, 动态验证."""
    step = PASSWORD_RECOVERY.step("verify", flow)
    form = step.form()
    outcome = run_sms_step(form, aliases=_FIELD_ALIASES, send=lambda: send_password_code(flow, form.phone.data or ""),
                           submit=lambda: step.handler(flow, form))
    if outcome.done:
        return redirect(PASSWORD_RECOVERY.url_for("reset"))
    if not PASSWORD_RECOVERY.in_session():  # too many failures ended the flow
        return _ended(PASSWORD_RECOVERY, outcome.error)
    return _render(PASSWORD_RECOVERY, "verify", outcome.status, variant="id_sms", form=form, error=outcome.error,
                   sms_status=outcome.sms_status)


@bp.post("/password/verify/id/sms")
@limiter.shared_limit(sms_ip_limit, scope="recovery-sms")
def password_verify_id_sms():
    flow = PASSWORD_RECOVERY.load()
    if flow is None:
        return jsonify(error="flow_expired", message=FlowExpired.message), 400
    return sms_json(lambda: send_password_code(flow, request.form.get("phone", "")))


@bp.route("/password/reset", methods=["GET", "POST"])
@PASSWORD_RECOVERY.guard("reset")
def password_reset(flow):
    """重置密码: 用户名 shown, 新密码, 确认新密码 (and the captcha of every password form)."""
    form, outcome = _form_step(PASSWORD_RECOVERY, flow, "reset", secrets=("new_password", "confirm_password"))
    if outcome.done:
        user, amr = outcome.result
        resume = pop_resume_url()
        if resume:  # came from a relying system: back there, signed in
            start_login(user, amr=amr)
            return redirect(resume)
        session["login_hint"] = user.username  # the login page offers the username
        return redirect(PASSWORD_RECOVERY.url_for("done"))
    return _render(PASSWORD_RECOVERY, "reset", outcome.status, form=form, error=outcome.error,
                   username=reset_username(flow))


# == 手机号已停用? ==================================================================================
@bp.route("/phone/<origin>", methods=["GET", "POST"])
@limiter.shared_limit(sms_ip_limit, scope="recovery-sms", exempt_when=not_sending_sms)
def phone_change(origin: str):
    """更换手机号: a bank card whose reserved phone is the new number, and an SMS code to it."""
    if origin not in SMS_STEPS:
        abort(404)
    interrupted, current, sms_endpoint = SMS_STEPS[origin]
    flow = phone_change_for(origin)
    if flow is None:  # the interrupted flow is not at its SMS step (or expired)
        return redirect(url_for(sms_endpoint))
    step = PHONE_CHANGE.step("verify")
    form = step.form()
    def send():
        return send_phone_change_code(flow, form.phone.data or "", bank_code=form.bank_code.data,
                                      card_number=form.card_number.data)

    outcome = run_sms_step(form, aliases=_FIELD_ALIASES, send=send, submit=lambda: step.handler(flow, form))
    if outcome.done:
        origin, masked = outcome.result
        flash(f"手机号码已更换为{masked}，请继续完成验证", "ok")
        return redirect(url_for(SMS_STEPS[origin][2]))
    if not PHONE_CHANGE.in_session():  # ended by too many failures, or the interrupted flow expired
        flash(outcome.error or FlowExpired.message, "error")
        return redirect(url_for(sms_endpoint))
    return render_template(step.template, form=form, error=outcome.error, sms_status=outcome.sms_status,
                           origin=origin, steps=interrupted.titles(), current=current,
                           back_url=url_for(sms_endpoint)), outcome.status


@bp.post("/phone/<origin>/sms")
@limiter.shared_limit(sms_ip_limit, scope="recovery-sms")
def phone_change_sms(origin: str):
    if origin not in SMS_STEPS:
        abort(404)
    flow = phone_change_for(origin)
    if flow is None:
        return jsonify(error="step_not_reached", message="请先完成前面的步骤"), 409
    values = request.form
    return sms_json(lambda: send_phone_change_code(flow, values.get("phone", ""), bank_code=values.get("bank_code"),
                                                   card_number=values.get("card_number")))
