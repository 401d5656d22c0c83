"""变更用户信息 (SPEC §3, the manual's 修改 → 提交): the views of ``idp.flows.profile_change`` on the
user-centre blueprint.  用户名, 证件类型 and 证件号码 are shown, never editable."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, url_for

from ..auth.guards import login_required
from ..errors import UserError
from ..extensions import limiter
from ..form_feedback import attach_error, not_sending_sms, run_sms_step, sms_ip_limit
from ..flows.profile_change import flow_of, form_values, pending_change, send_code, submit_code, submit_details
from ..services.identity import pii
from ..services.verification.bank import BankIdentityMismatch
from ..services.accounts.profile import masked_profile
from .forms import ProfileEditForm, ProfileSmsForm
from .routes import bp

SAVED = "用户信息修改成功"



@bp.route("/edit", methods=["GET", "POST"])
@login_required
def edit():
    form = ProfileEditForm()
    error, status, failure = None, 200, None
    if form.validate_on_submit():
        try:
            flow = submit_details(g.user, form.name.data, form.bank_code.data, form.card_number.data or "",
                                  form.phone.data or "")
        except UserError as exc:
            error, status, failure = attach_error(form, exc), exc.status, exc
        else:
            if flow is None:
                flash(SAVED, "ok")
                return redirect(url_for("account.home"))
            return redirect(url_for("account.edit_sms"))
    elif form.is_submitted():
        status = 400
    else:
        form.process(data=form_values(g.user))
    return render_template("account/edit.html", form=form, error=error, profile=masked_profile(g.user),
                           bank_identity_mismatch=isinstance(failure, BankIdentityMismatch)), status


@bp.route("/edit/sms", methods=["GET", "POST"])
@limiter.shared_limit(sms_ip_limit, scope="profile-sms", exempt_when=not_sending_sms)
@login_required
def edit_sms():
    """A new phone: the code goes to it, and only then is anything written."""
    flow = flow_of(g.user)
    if flow is None or not flow.is_complete("details"):
        return redirect(url_for("account.edit"))
    form = ProfileSmsForm()
    outcome = run_sms_step(
        form,
        send=lambda: send_code(flow, g.user),
        submit=lambda: submit_code(flow, g.user, form.sms_code.data or ""),
    )
    if outcome.done:
        flash(SAVED, "ok")
        return redirect(url_for("account.home"))
    return render_template("account/edit_sms.html", form=form, error=outcome.error, sms_status=outcome.sms_status,
                           new_phone=pii.mask_phone(pending_change(flow).phone)), outcome.status
