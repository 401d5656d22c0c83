"""变更用户信息 (the manual's 修改 → 提交): the views of ``idp.flows.profile_change`` on the
user-centre blueprint.  用户名, 证件类型 and 证件号码 are shown, never editable.

A unit account's 修改 is its own page: 变更经办人 (``idp.flows.unit_profile_change``) and
变更单位名称 (one registry check); its 统一社会信用代码 and 单位类型 are shown, never editable."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, url_for

from ..auth.guards import login_required
from ..extensions import limiter
from ..flows import profile_change, unit_profile_change
from ..flows.profile_change import PROFILE_CHANGE, form_values
from ..flows.sms_confirmed_change import SmsConfirmedChange
from ..flows.unit_profile_change import UNIT_HANDLER_CHANGE
from ..form_feedback import not_sending_sms, run_form, run_sms_step, sms_ip_limit
from ..services.accounts.profile import masked_profile
from ..services.accounts.unit_change import change_unit_name, masked_unit
from .forms import UnitNameForm
from ..services.identity import pii
from ..services.verification.bank import BankIdentityMismatch
from .blueprint import bp

SAVED = "用户信息修改成功"


@bp.route("/edit", methods=["GET", "POST"])
@login_required
def edit():
    if g.user.is_unit:
        return render_template("account/unit_edit.html", unit=masked_unit(g.user))
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
    if g.user.is_unit:
        return redirect(url_for("account.edit"))
    return _new_phone_sms(profile_change.CHANGE, "account.edit", SAVED, "account.home")


def _new_phone_sms(change: SmsConfirmedChange, details_endpoint: str, saved: str, done_endpoint: str):
    """The SMS step of a change that waits for its new phone's code (a flow of this account only)."""
    flow = change.flow_of(g.user)
    if flow is None or not flow.is_complete("details"):
        return redirect(url_for(details_endpoint))
    step = change.definition.step("sms")
    form = step.form()
    outcome = run_sms_step(form, send=lambda: change.send_code(flow, g.user),
                           submit=lambda: step.handler(flow, g.user, form))
    if outcome.done:
        flash(saved, "ok")
        return redirect(url_for(done_endpoint))
    return render_template(step.template, form=form, error=outcome.error, sms_status=outcome.sms_status,
                           new_phone=pii.mask_phone(change.pending_change(flow).phone)), outcome.status


# == a unit account ==================================================================================
def _unit_only() -> None:
    if not g.user.is_unit:
        abort(404)


@bp.route("/edit/handler", methods=["GET", "POST"])
@login_required
def unit_handler():
    """变更经办人: the new handler's identity and bank details, checked at the bank."""
    _unit_only()
    step = UNIT_HANDLER_CHANGE.step("details")
    form = step.form()
    if not form.is_submitted():
        form.process(data=unit_profile_change.form_values(g.user))
    outcome = run_form(form, lambda: step.handler(g.user, form))
    if outcome.done:
        return redirect(url_for("account.unit_handler_sms"))
    return render_template(step.template, form=form, error=outcome.error, unit=masked_unit(g.user),
                           bank_identity_mismatch=isinstance(outcome.failure, BankIdentityMismatch)), outcome.status


@bp.route("/edit/handler/sms", methods=["GET", "POST"])
@limiter.shared_limit(sms_ip_limit, scope="profile-sms", exempt_when=not_sending_sms)
@login_required
def unit_handler_sms():
    """The code goes to the new handler's phone, and only then is anything written."""
    _unit_only()
    return _new_phone_sms(unit_profile_change.CHANGE, "account.unit_handler",
                          "经办人信息变更成功。如原经办人知道登录密码，请及时修改密码", "account.edit")


@bp.route("/edit/unit", methods=["GET", "POST"])
@login_required
def unit_name():
    """变更单位名称: the name (and representative) the registry now holds, verified there."""
    _unit_only()
    form = UnitNameForm()
    if not form.is_submitted():
        form.process(data={"unit_name": g.user.unit_name, "legal_rep_name": g.user.legal_rep_name})
    outcome = run_form(form, lambda: change_unit_name(g.user, form.unit_name.data, form.legal_rep_name.data))
    if outcome.done:
        flash("单位名称变更成功", "ok")
        return redirect(url_for("account.edit"))
    return render_template("account/unit_name.html", form=form, error=outcome.error,
                           unit=masked_unit(g.user)), outcome.status
