"""The user centre (统一用户管理平台): 查看用户信息, 安全中心 (修改密码, 密保工具), sessions and
authorised systems.  Views parse a form, call a service, render."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, url_for

from ..auth.guards import login_required
from ..form_feedback import run_form
from ..oauth.claims import SCOPE_LABELS
from ..services.accounts import security as account_security
from ..services.accounts.authorisations import authorised_systems, revoke_authorisation
from ..services.accounts.profile import masked_profile
from ..services.accounts.sessions import revoke_login, user_logins
from .blueprint import bp
from .forms import PasswordChangeForm, RevokeConsentForm, RevokeSessionForm, SecurityQuestionsForm



@bp.get("/")
@login_required
def home():
    return render_template("account/home.html", profile=masked_profile(g.user))


@bp.route("/password", methods=["GET", "POST"])
@login_required
def password():
    form = PasswordChangeForm()
    outcome = run_form(form, lambda: account_security.change_password(
        g.user, form.current_password.data, form.new_password.data, form.confirm_password.data),
        secrets=("current_password", "new_password", "confirm_password"), on_fields=False)
    if outcome.done:
        # every session ended, this one included: the user is logged out (系统返回未登录的状态),
        # and this very page's header must not still show them
        g.user = None
        return render_template("account/password_changed.html")
    return render_template("account/password.html", form=form, error=outcome.error), outcome.status


@bp.route("/security-questions", methods=["GET", "POST"])
@login_required
def security_questions():
    form = SecurityQuestionsForm()
    pairs = [(form.question_1.data, form.answer_1.data), (form.question_2.data, form.answer_2.data),
             (form.question_3.data, form.answer_3.data)]
    outcome = run_form(form, lambda: account_security.set_security_questions(g.user, form.current_password.data,
                                                                             pairs),
                       secrets=("current_password",), on_fields=False)
    if outcome.done:
        flash("密保问题已保存")
        return redirect(url_for("account.security_questions"))
    existing = account_security.security_questions(g.user)
    return render_template(
        "account/security_questions.html", form=form, error=outcome.error,
        existing=[account_security.SECURITY_QUESTIONS.get(a.question, a.question) for a in existing],
    ), outcome.status


@bp.get("/sessions")
@login_required
def sessions():
    return render_template(
        "account/sessions.html",
        logins=user_logins(g.user.id),
        current_sid=g.login.sid,
        systems=authorised_systems(g.user),
        scope_labels=SCOPE_LABELS,
        revoke_session=RevokeSessionForm(),
        revoke_consent=RevokeConsentForm(),
    )


@bp.post("/sessions/revoke")
@login_required
def revoke_session():
    form = RevokeSessionForm()
    if form.validate_on_submit() and revoke_login(g.user.id, form.sid.data, reason="user_revoked"):
        flash("已下线该登录会话")
    return redirect(url_for("account.sessions"))


@bp.post("/authorisations/revoke")
@login_required
def revoke_consent():
    form = RevokeConsentForm()
    if form.validate_on_submit() and revoke_authorisation(g.user, form.client_id.data):
        flash("已撤销对该应用系统的授权")
    return redirect(url_for("account.sessions"))
