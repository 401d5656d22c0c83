"""/mfa: the second-factor challenge (after the password, and for step-up), enrolment (TOTP with
a QR code, WebAuthn passkeys), recovery codes, and 两步验证 in the user centre."""

from __future__ import annotations

import time

from flask import (Blueprint, abort, current_app, flash, g, jsonify, redirect, render_template, request, session,
                   url_for)

from ..auth.guards import login_required
from ..services.accounts.resume import peek_resume_url, pop_resume_url, resume_after_login
from ..errors import UserError
from ..services.accounts import second_factors as factors
from .forms import CodeForm, ConfirmForm, TotpEnrolForm
from .gate import GRANT, complete, current_subject, recently_verified

bp = Blueprint("mfa", __name__, url_prefix="/mfa")

_TOTP_SETUP = "mfa_totp_setup"  # {"secret": …, "at": …}: shown as a QR code, kept until confirmed
_CEREMONY = "mfa_webauthn"  # {"challenge": …, "at": …, "kind": "register" | "authenticate"}
_NEW_CODES = "mfa_new_codes"  # recovery codes to show once


def _next_url(user) -> str:
    return pop_resume_url() or url_for("account.home")


def _fresh(data: dict | None) -> bool:
    return bool(data) and time.time() - data.get("at", 0) <= current_app.config["MFA_CHALLENGE_TTL"]


# -- enrolment link -------------------------------------------------------------------------------
@bp.get("/enrol/<token>")
def enrolment_link(token: str):
    try:
        user = factors.check_enrolment_token(token)
    except UserError as exc:
        return render_template("mfa/message.html", title="绑定链接无效", message=exc.message), exc.status
    session[GRANT] = token
    subject, _ = current_subject()
    if subject is not None and subject.id == user.id:
        return redirect(url_for("mfa.setup"))
    session["login_hint"] = user.username
    flash("请先使用账号和密码登录，然后绑定第二因素", "info")
    return redirect(url_for("auth.login"))


def _grant_for(user) -> str | None:
    token = session.get(GRANT)
    if not token:
        return None
    try:
        return token if factors.check_enrolment_token(token).id == user.id else None
    except UserError:
        return None


def _enrol_problem(user, pending: bool) -> str | None:
    """Why this person may not enrol a factor now: "login", "verify_first", "link_required"."""
    if user is None:
        return "login"
    if factors.has_factor(user.id):
        # more factors: only within a login that just passed one
        return None if not pending and recently_verified() else "verify_first"
    if factors.is_staff(user):
        return None if _grant_for(user) else "link_required"
    return None if not pending else "login"


def _guard_enrolment():
    user, pending = current_subject()
    problem = _enrol_problem(user, pending)
    if problem == "login":
        resume_after_login(request.path)
        return user, pending, redirect(url_for("auth.login"))
    if problem == "verify_first":
        resume_after_login(url_for("mfa.setup"))
        return user, pending, redirect(url_for("mfa.verify"))
    if problem == "link_required":
        return user, pending, (render_template("mfa/message.html", title="需要绑定第二因素",
                                               message=factors.EnrolmentNotAllowed.message), 403)
    return user, pending, None


def _enrolled(user, pending: bool, methods: list[str], first: bool) -> str:
    """After a factor was added: spend the link, finish a pending login, issue recovery codes
    with the first factor.  Returns where to go."""
    token = session.pop(GRANT, None)
    if token:
        factors.spend_enrolment_token(token)
    if pending or token:
        # the password and a factor enrolled through the administrator's link: both factors
        # (a citizen adding one in the user centre proves nothing new about this login)
        complete(user, methods, pending)
    elif peek_resume_url() is None:
        resume_after_login(url_for("mfa.home"))
    if first:
        session[_NEW_CODES] = factors.new_recovery_codes(user)
        return url_for("mfa.recovery_codes")
    flash("验证方式已添加")
    return pop_resume_url() or url_for("mfa.home")


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    user, pending, refused = _guard_enrolment()
    if refused is not None:
        return refused
    setup_data = session.get(_TOTP_SETUP)
    if not _fresh(setup_data) or setup_data.get("uid") != user.id:
        setup_data = {"secret": factors.new_totp_secret(), "at": int(time.time()), "uid": user.id}
        session[_TOTP_SETUP] = setup_data
    form = TotpEnrolForm()
    error = None
    if form.validate_on_submit():
        first = not factors.has_factor(user.id)
        try:
            factors.enrol_totp(user, setup_data["secret"], form.code.data, form.label.data or None)
        except UserError as exc:
            error = exc.message
        else:
            session.pop(_TOTP_SETUP, None)
            return redirect(_enrolled(user, pending, ["otp"], first))
    form.code.data = ""
    totp = factors.totp_setup(user, setup_data["secret"])
    status = 400 if form.is_submitted() else 200
    return render_template("mfa/setup.html", form=form, error=error, totp=totp, user=user,
                           staff=factors.is_staff(user), first=not factors.has_factor(user.id)), status


@bp.get("/recovery-codes")
def recovery_codes():
    codes = session.pop(_NEW_CODES, None)
    if not codes:
        return redirect(url_for("mfa.home") if g.get("user") else url_for("auth.login"))
    return render_template("mfa/recovery_codes.html", codes=codes, next_url=pop_resume_url() or url_for("account.home"))


# -- the challenge: after the password, or a step-up ---------------------------------------------
@bp.route("/verify", methods=["GET", "POST"])
def verify():
    user, pending = current_subject()
    if user is None:
        resume_after_login(request.path)
        return redirect(url_for("auth.login"))
    if not factors.has_factor(user.id):
        return redirect(url_for("mfa.setup"))
    form = CodeForm()
    error = None
    if form.validate_on_submit():
        try:
            methods = factors.verify_code(user, form.method.data, form.code.data,
                                          purpose="login" if pending else "step_up")
        except UserError as exc:
            error = exc.message
        else:
            complete(user, methods, pending)
            return redirect(_next_url(user))
    method = form.method.data if form.method.data in ("totp", "recovery") else "totp"
    form.code.data = ""
    kinds = {f.kind for f in factors.factors_of(user.id)}
    status = (429 if error == factors.ATTEMPTS.exceeded().message else 400) if form.is_submitted() else 200
    return render_template("mfa/verify.html", form=form, error=error, method=method, pending=pending,
                           has_totp="totp" in kinds, has_webauthn="webauthn" in kinds), status


# -- WebAuthn ceremonies (JSON, called by static/js/webauthn.js) ----------------------------------
def _json_error(message: str, status: int = 400):
    return jsonify({"error": message}), status


@bp.post("/webauthn/register/options")
def webauthn_register_options():
    user, pending, refused = _guard_enrolment()
    if refused is not None:
        return _json_error("请刷新页面后重试", 403)
    options, challenge = factors.registration_options(user)
    session[_CEREMONY] = {"challenge": challenge, "at": int(time.time()), "kind": "register", "uid": user.id}
    return current_app.response_class(options, mimetype="application/json")


@bp.post("/webauthn/register")
def webauthn_register():
    user, pending, refused = _guard_enrolment()
    ceremony = session.pop(_CEREMONY, None)
    if refused is not None or not _fresh(ceremony) or ceremony.get("kind") != "register" \
            or ceremony.get("uid") != user.id:
        return _json_error("请刷新页面后重试", 403)
    body = request.get_json(silent=True) or {}
    first = not factors.has_factor(user.id)
    try:
        factors.enrol_webauthn(user, body.get("credential"), ceremony["challenge"], (body.get("label") or "")[:64] or None)
    except UserError as exc:
        return _json_error(exc.message, exc.status)
    factor = factors.factors_of(user.id)[-1]
    return jsonify({"next": _enrolled(user, pending, [factors.webauthn_amr(factor)], first)})


@bp.post("/webauthn/authenticate/options")
def webauthn_authenticate_options():
    user, _ = current_subject()
    if user is None:
        return _json_error("请先登录", 401)
    options, challenge = factors.authentication_options(user)
    session[_CEREMONY] = {"challenge": challenge, "at": int(time.time()), "kind": "authenticate", "uid": user.id}
    return current_app.response_class(options, mimetype="application/json")


@bp.post("/webauthn/authenticate")
def webauthn_authenticate():
    user, pending = current_subject()
    ceremony = session.pop(_CEREMONY, None)
    if user is None or not _fresh(ceremony) or ceremony.get("kind") != "authenticate" \
            or ceremony.get("uid") != user.id:
        return _json_error("请刷新页面后重试", 403)
    body = request.get_json(silent=True) or {}
    try:
        methods = factors.verify_webauthn(user, body.get("credential"), ceremony["challenge"],
                                          purpose="login" if pending else "step_up")
    except UserError as exc:
        return _json_error(exc.message, exc.status)
    complete(user, methods, pending)
    return jsonify({"next": _next_url(user)})


# -- 两步验证 in the user centre ------------------------------------------------------------------
@bp.get("/")
@login_required
def home():
    user = g.user
    return render_template("mfa/home.html", factors=factors.factors_of(user.id), labels=factors.KIND_LABELS,
                           codes_left=factors.recovery_codes_left(user.id), staff=factors.is_staff(user),
                           fresh=recently_verified(), form=ConfirmForm())


def _recent_or_verify():
    if recently_verified():
        return None
    resume_after_login(url_for("mfa.home"))
    flash("请先完成一次第二因素验证", "info")
    return redirect(url_for("mfa.verify"))


@bp.post("/factors/<int:factor_id>/remove")
@login_required
def remove(factor_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if (refused := _recent_or_verify()) is not None:
        return refused
    try:
        factors.remove_factor(g.user, factor_id)
    except UserError as exc:
        flash(exc.message, "error")
    else:
        flash("验证方式已删除")
    return redirect(url_for("mfa.home"))


@bp.post("/recovery-codes/new")
@login_required
def new_recovery_codes():
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if not factors.has_factor(g.user.id):
        return redirect(url_for("mfa.home"))
    if (refused := _recent_or_verify()) is not None:
        return refused
    session[_NEW_CODES] = factors.new_recovery_codes(g.user)
    resume_after_login(url_for("mfa.home"))
    return redirect(url_for("mfa.recovery_codes"))
