"""个人用户注册: the wizard's pages, the live username check and the SMS button's JSON endpoint.

Views stay thin: read the form, call the flow step (``idp.flows.registration``), render or
redirect.  Every page works without JavaScript; ``static/js/register.js`` only adds the live
username check, the prefill of birth date and gender, and sending the SMS without a reload.
"""

from __future__ import annotations

import functools
from datetime import date

from flask import Blueprint, current_app, flash, g, jsonify, redirect, render_template, request, session, url_for

from ..services.accounts.resume import pop_resume_url
from ..errors import CaptchaInvalid, UserError, UsernameTaken
from ..extensions import limiter
from ..form_feedback import attach_error, not_sending_sms, run_sms_step, sms_ip_limit, sms_json
from ..flows import FlowExpired, StepNotReached
from ..flows.registration import (
    AMR,
    REGISTRATION,
    STEP_TITLES,
    save_draft,
    send_code,
    step_values,
    submit_identity,
    submit_login_info,
    submit_verification,
)
from ..services import registration
from ..services.accounts.records import find_by_document
from ..services.accounts.sessions import start_login
from ..services.identity.rules import BirthdateInvalid, check_card_number, username_key
from ..services.verification import captcha
from ..services.verification.bank import BankIdentityMismatch
from .forms import IdentityForm, LoginInfoForm, VerificationForm

bp = Blueprint("register", __name__, url_prefix="/register")

ENDPOINTS = {
    "login_info": "register.login_info",
    "identity": "register.identity",
    "verification": "register.verification",
    "done": "register.done",
}


def _username_check_limit() -> str:
    return current_app.config["USERNAME_CHECK_LIMIT"]



def _step_url(step: str) -> str:
    return url_for(ENDPOINTS[step])


def wizard_step(step: str):
    """Load this session's registration flow and make sure ``step`` may be shown; otherwise
    send the citizen to where they belong (the start, or the first step still missing)."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped():
            had_flow = REGISTRATION.in_session()
            flow = REGISTRATION.load()
            if flow is None or (flow.finished and step != "done"):
                if step != "login_info" or request.method == "POST":
                    if flow is None and had_flow:
                        flash(FlowExpired.message, "error")
                    return redirect(url_for("register.start"))
                flow = REGISTRATION.start()
            try:
                flow.require(step)
            except StepNotReached as missing:
                return redirect(_step_url(missing.step))
            return view(flow)

        return wrapped

    return decorator


def _render(template: str, step: str, **context):
    steps = [(name, title) for name, title in STEP_TITLES.items()]
    return render_template(template, steps=steps, current=step, today=date.today().isoformat(), **context)


# -- the wizard ----------------------------------------------------------------------------------
@bp.get("", strict_slashes=False)  # /register and /register/ both start
def start():
    flow = REGISTRATION.load()
    if flow is None or flow.finished or "restart" in request.args:
        flow = REGISTRATION.start()
    return redirect(_step_url(flow.first_missing() or "done"))


@bp.route("/login-info", methods=["GET", "POST"])
@wizard_step("login_info")
def login_info(flow):
    form = LoginInfoForm()
    error = None
    if form.validate_on_submit():
        try:
            if not captcha.check_captcha(form.captcha_id.data, form.captcha.data):
                raise CaptchaInvalid()
            submit_login_info(flow, form.username.data, form.password.data or "", form.confirm.data or "")
        except UserError as exc:
            error = attach_error(form, exc)
        else:
            return redirect(_step_url("identity"))
    elif not form.is_submitted():
        form.username.data = flow.data.get("username", "")
    failed = form.is_submitted()
    form.password.data = form.confirm.data = form.captcha.data = ""
    form.captcha_id.data = captcha.issue_captcha()
    return _render(
        "register/login_info.html", "login_info", form=form, error=error,
        password_kept=bool(flow.data.get("password_hash")),
    ), (400 if failed else 200)


@bp.route("/identity", methods=["GET", "POST"])
@wizard_step("identity")
def identity(flow):
    form = IdentityForm()
    error = None
    if form.is_submitted() and form.back.data:
        save_draft(flow, "identity", request.form)
        return redirect(_step_url("login_info"))
    if form.validate_on_submit():
        try:
            submit_identity(flow, form.name.data, form.id_type.data, form.id_number.data,
                            form.gender.data or None, _parse_date(form.birthdate.data))
        except UserError as exc:
            error = attach_error(form, exc)
        else:
            return redirect(_step_url("verification"))
    elif not form.is_submitted():
        form.process(data=step_values(flow, "identity") or None)
        if not form.id_type.data:
            form.id_type.data = "resident_id"
    failed = form.is_submitted()
    return _render("register/identity.html", "identity", form=form, error=error), (400 if failed else 200)


@bp.route("/verification", methods=["GET", "POST"])
@limiter.shared_limit(sms_ip_limit, scope="register-sms", exempt_when=not_sending_sms)
@wizard_step("verification")
def verification(flow):
    form = VerificationForm()
    if form.is_submitted():
        save_draft(flow, "verification", request.form)  # 上一步 and back again keep what was typed
        if form.back.data:
            return redirect(_step_url("identity"))
    else:
        form.process(data=step_values(flow, "verification") or None)
    if form.is_submitted() and not form.send_sms.data:
        # what identifies this flow's account, read now: finishing the flow clears it
        applicant = (flow.data.get("id_type"), flow.data.get("id_number"), flow.data.get("username"))
        g.outage_page = lambda: _created_despite_outage(*applicant)
    outcome = run_sms_step(
        form,
        send=lambda: send_code(flow, form.phone.data or ""),
        submit=lambda: submit_verification(flow, form.bank_code.data, form.card_number.data, form.phone.data,
                                           form.sms_code.data or ""),
    )
    if outcome.done:
        return _after_registration(outcome.result)
    return _render("register/verification.html", "verification", form=form, error=outcome.error,
                   sms_status=outcome.sms_status, card_warning=_card_warning(form),
                   bank_identity_mismatch=isinstance(outcome.failure, BankIdentityMismatch)), outcome.status


@bp.get("/done")
@wizard_step("done")
def done(flow):
    return _render("register/done.html", "done", username=flow.data.get("username", ""))


def _after_registration(user):
    """Back to the relying system that sent the citizen, signed in; otherwise 注册成功."""
    resume = pop_resume_url()
    if resume:
        start_login(user, amr=list(AMR))
        return redirect(resume)
    session["login_hint"] = user.username  # the login page offers the new username
    return redirect(_step_url("done"))


def _created_despite_outage(id_type: str | None, id_number: str | None, username: str | None):
    """Redis failed after the account was committed (finishing the flow, starting the login
    session, saving the session): the citizen must learn that the account exists, not see an
    error and then 证件已被使用 on a second try.  None when this flow created no account."""
    if not (id_type and id_number and username):
        return None
    user = find_by_document(id_type, id_number)
    if user is None or user.username_key != username_key(username):
        return None
    steps = list(STEP_TITLES.items())
    return render_template("register/done.html", steps=steps, current="done", username=user.username,
                           login_pending=True, sessionless=True)


def _parse_date(raw: str | None) -> date | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BirthdateInvalid() from None


def _card_warning(form) -> str | None:
    """The Luhn warning for card numberings that do not promise one (the bank decides)."""
    if not form.card_number.data or form.card_number.errors:
        return None
    try:
        return check_card_number(form.card_number.data).warning
    except UserError:
        return None


# -- JSON for the page's script ----------------------------------------------------------------------
@bp.get("/username-check")
@limiter.limit(_username_check_limit)
def username_check():
    """Live check as the citizen types: {available, message}.  Rate limited per IP: it is, by
    nature, a way to learn whether a username exists."""
    username = request.args.get("username", "")
    try:
        registration.check_username(username)
    except UserError as exc:
        reason = "taken" if isinstance(exc, UsernameTaken) else "invalid"
        return jsonify(username=username, available=False, reason=reason, message=exc.message)
    return jsonify(username=username, available=True, message="用户名可以使用")


@bp.post("/sms")
@limiter.shared_limit(sms_ip_limit, scope="register-sms")
def send_sms():
    """The 发送短信验证 button without a page reload (the form's own button does the same)."""
    flow = REGISTRATION.load()
    if flow is None:
        return jsonify(error="flow_expired", message=FlowExpired.message), 400
    return sms_json(lambda: send_code(flow, request.form.get("phone", "")), not_reached="请先完成前面的注册步骤")
