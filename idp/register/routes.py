"""个人用户注册: the wizard's pages, the live username check and the SMS button's JSON endpoint.

Views stay thin: read the form, call the flow step (``idp.flows.registration``), render or
redirect.  Every page works without JavaScript; ``static/js/register.js`` only adds the live
username check, the prefill of birth date and gender, and sending the SMS without a reload.
"""

from __future__ import annotations

from datetime import date

from flask import Blueprint, current_app, g, jsonify, redirect, render_template, request, session, url_for

from ..errors import UserError, UsernameTaken
from ..extensions import limiter
from ..form_feedback import not_sending_sms, run_form, run_sms_step, sms_ip_limit, sms_json
from ..form_rules import rules_context
from ..flows import FlowExpired
from ..flows.registration import AMR, REGISTRATION, save_draft, send_code, step_values
from ..services import registration
from ..services.verification.bank import BankIdentityMismatch
from ..services.identity.rules import check_card_number, username_key
from ..services.accounts.records import find_by_document
from ..services.accounts.resume import peek_resume_url, pop_resume_url
from ..services.accounts.sessions import start_login
from ..support import pending_client_name

bp = Blueprint("register", __name__, url_prefix="/register")
bp.context_processor(rules_context)
step = REGISTRATION.step


def _username_check_limit() -> str:
    return current_app.config["USERNAME_CHECK_LIMIT"]


def _render(name: str, status: int = 200, **context):
    return render_template(step(name).template, steps=REGISTRATION.titles(), current=name,
                           today=date.today().isoformat(), **context), status


# -- the wizard ----------------------------------------------------------------------------------
@bp.get("", strict_slashes=False)  # /register and /register/ both start
def start():
    flow = REGISTRATION.load()
    if flow is None or flow.finished or "restart" in request.args:
        flow = REGISTRATION.start()
    return redirect(REGISTRATION.url_for(flow.first_missing() or "done"))


@bp.route("/login-info", methods=["GET", "POST"])
@REGISTRATION.guard("login_info")
def login_info(flow):
    this = step("login_info")
    form = this.form()
    if not form.is_submitted():
        form.username.data = flow.state.username
    outcome = run_form(form, lambda: this.handler(flow, form), secrets=("password", "confirm"))
    if outcome.done:
        return redirect(REGISTRATION.url_for("identity"))
    return _render("login_info", outcome.status, form=form, error=outcome.error,
                   password_kept=bool(flow.state.password_hash))


@bp.route("/identity", methods=["GET", "POST"])
@REGISTRATION.guard("identity")
def identity(flow):
    this = step("identity")
    form = this.form()
    if form.is_submitted() and form.back.data:
        save_draft(flow, "identity", request.form)
        return redirect(REGISTRATION.url_for("login_info"))
    if not form.is_submitted():
        form.process(data=step_values(flow, "identity") or None)
        if not form.id_type.data:
            form.id_type.data = "resident_id"
    outcome = run_form(form, lambda: this.handler(flow, form))
    if outcome.done:
        return redirect(REGISTRATION.url_for("verification"))
    return _render("identity", outcome.status, form=form, error=outcome.error)


@bp.route("/verification", methods=["GET", "POST"])
@limiter.shared_limit(sms_ip_limit, scope="register-sms", exempt_when=not_sending_sms)
@REGISTRATION.guard("verification")
def verification(flow):
    this = step("verification")
    form = this.form()
    if form.is_submitted():
        save_draft(flow, "verification", request.form)  # 上一步 and back again keep what was typed
        if form.back.data:
            return redirect(REGISTRATION.url_for("identity"))
    else:
        form.process(data=step_values(flow, "verification") or None)
    if form.is_submitted() and not form.send_sms.data:
        # what identifies this flow's account, read now: finishing the flow clears it
        applicant = (flow.state.id_type, flow.state.id_number, flow.state.username)
        g.outage_page = lambda: _created_despite_outage(*applicant)
    outcome = run_sms_step(form, send=lambda: send_code(flow, form.phone.data or "", bank_code=form.bank_code.data,
                                                         card_number=form.card_number.data,
                                                         consent=bool(form.consent.data)),
                           submit=lambda: this.handler(flow, form))
    if outcome.done:
        return _after_registration(outcome.result, flow.id)
    return _render("verification", outcome.status, form=form, error=outcome.error,
                   sms_status=outcome.sms_status, card_warning=card_warning_of(form),
                   bank_identity_mismatch=isinstance(outcome.failure, BankIdentityMismatch))


@bp.get("/done")
@REGISTRATION.guard("done")
def done(flow):
    return _render("done", username=flow.state.username, returning_to=_returning_to(),
                   resume_pending=bool(g.get("user") and peek_resume_url()))


@bp.get("/continue")
def continue_sign_in():
    """注册成功's 返回<系统>: the authorization request the citizen came with resumes (they are
    signed in already); without one, the user centre."""
    return redirect(pop_resume_url() or url_for("account.home"))


def _after_registration(user, flow_id: str, definition=REGISTRATION):
    """注册成功 is a page of its own, always.  A citizen sent by a relying system is signed in at
    once, and the page's 返回<系统> button continues the authorization request they came with;
    anyone else is offered the login, their new username filled in."""
    if peek_resume_url():
        start_login(user, amr=list(AMR))
        session[definition.session_key] = flow_id  # the login's fresh session keeps the finished flow
    else:
        session["login_hint"] = user.username  # the login page offers the new username
    return redirect(definition.url_for("done"))


def _returning_to() -> str | None:
    """The name of the relying system whose authorization request waits, when the citizen is
    signed in to continue it."""
    return pending_client_name() if g.get("user") else None


def _created_despite_outage(id_type: str | None, id_number: str | None, username: str | None):
    """Redis failed after the account was committed (finishing the flow, starting the login
    session, saving the session): the citizen must learn that the account exists, not see an
    error and then 证件已被使用 on a second try.  None when this flow created no account."""
    if not (id_type and id_number and username):
        return None
    user = find_by_document(id_type, id_number)
    if user is None or user.username_key != username_key(username):
        return None
    return render_template(step("done").template, steps=REGISTRATION.titles(), current="done",
                           username=user.username, login_pending=True, sessionless=True,
                           **rules_context())


def card_warning_of(form) -> str | None:
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
    values = request.form
    return sms_json(lambda: send_code(flow, values.get("phone", ""), bank_code=values.get("bank_code"),
                                      card_number=values.get("card_number"), consent=bool(values.get("consent"))),
                    not_reached="请先完成前面的注册步骤")
