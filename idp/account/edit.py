"""变更用户信息 (the manual's 修改 → 提交): the views of ``idp.flows.profile_change`` on the
user-centre blueprint.  用户名, 证件类型 and 证件号码 are shown, never editable."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, url_for

from ..auth.guards import login_required
from ..extensions import limiter
from ..flows.profile_change import PROFILE_CHANGE, flow_of, form_values, pending_change, send_code
from ..form_feedback import not_sending_sms, run_form, run_sms_step, sms_ip_limit
from ..services.accounts.profile import masked_profile
from ..services.identity import pii
from ..services.verification.bank import BankIdentityMismatch
from .blueprint import bp

SAVED = "用户信息修改成功"


@bp.route("/edit", methods=["GET", "POST"])
@login_required
def edit():
    step = PROFILE_CHANGE.step("details")
    form = step.form()
    if not form.is_submitted():
        form.process(data=form_values(g.user))
    outcome = run_form(form, lambda: step.handler(g.user, form))
    if outcome.done:
        if outcome.result is None:
            flash(SAVED, "ok")
            return redirect(url_for("account.home"))
        return redirect(url_for("account.edit_sms"))
    return render_template(step.template, form=form, error=outcome.error, profile=masked_profile(g.user),
                           bank_identity_mismatch=isinstance(outcome.failure, BankIdentityMismatch)), outcome.status


@bp.route("/edit/sms", methods=["GET", "POST"])
@limiter.shared_limit(sms_ip_limit, scope="profile-sms", exempt_when=not_sending_sms)
@login_required
def edit_sms():
    """A new phone: the code goes to it, and only then is anything written."""
    flow = flow_of(g.user)
    if flow is None or not flow.is_complete("details"):
        return redirect(url_for("account.edit"))
    step = PROFILE_CHANGE.step("sms")
    form = step.form()
    outcome = run_sms_step(form, send=lambda: send_code(flow, g.user),
                           submit=lambda: step.handler(flow, g.user, form))
    if outcome.done:
        flash(SAVED, "ok")
        return redirect(url_for("account.home"))
    return render_template(step.template, form=form, error=outcome.error, sms_status=outcome.sms_status,
                           new_phone=pii.mask_phone(pending_change(flow).phone)), outcome.status
