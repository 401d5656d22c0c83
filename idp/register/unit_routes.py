"""单位用户注册: the unit wizard's pages on the registration blueprint.

填写登录信息 and 填写单位信息 are standard step pages (``register_step_pages``); 填写经办人信息 has
its own view for its SMS button and its 上一步 that keeps what was typed, and 注册成功 is the
personal wizard's page (signed in, with 返回<系统>, when a relying system sent the unit).
"""

from __future__ import annotations

from datetime import date

from flask import g, jsonify, redirect, render_template, request

from ..extensions import limiter
from ..flows import FlowExpired
from ..flows.unit_registration import (
    UNIT_REGISTRATION,
    handler_values,
    save_draft,
    send_handler_code,
)
from ..form_feedback import not_sending_sms, register_step_pages, run_sms_step, sms_ip_limit, sms_json
from ..services.accounts.resume import peek_resume_url
from ..services.verification.bank import BankIdentityMismatch
from .routes import _after_registration, _returning_to, bp, card_warning_of

register_step_pages(bp, UNIT_REGISTRATION)


@bp.get("/unit", strict_slashes=False)
def unit_start():
    flow = UNIT_REGISTRATION.load()
    if flow is None or flow.finished or "restart" in request.args:
        flow = UNIT_REGISTRATION.start()
    return redirect(UNIT_REGISTRATION.url_for(flow.first_missing() or "done"))


@bp.route("/unit/handler", methods=["GET", "POST"])
@limiter.shared_limit(sms_ip_limit, scope="register-sms", exempt_when=not_sending_sms)
@UNIT_REGISTRATION.guard("handler")
def unit_handler(flow):
    this = UNIT_REGISTRATION.step("handler")
    form = this.form()
    if form.is_submitted():
        save_draft(flow, request.form)
        if form.back.data:
            return redirect(UNIT_REGISTRATION.url_for("unit"))
    else:
        form.process(data=handler_values(flow) or None)
        if not form.id_type.data:
            form.id_type.data = "resident_id"
    outcome = run_sms_step(form, send=lambda: send_handler_code(flow, form.phone.data or "",
                                                                bank_code=form.bank_code.data,
                                                                card_number=form.card_number.data,
                                                                consent=bool(form.consent.data)),
                           submit=lambda: this.handler(flow, form))
    if outcome.done:
        return _after_registration(outcome.result, flow.id, UNIT_REGISTRATION)
    return render_template(this.template, steps=UNIT_REGISTRATION.titles(), current="handler", form=form,
                           error=outcome.error, sms_status=outcome.sms_status, today=date.today().isoformat(),
                           unit_name=flow.state.unit_name, card_warning=card_warning_of(form),
                           bank_identity_mismatch=isinstance(outcome.failure, BankIdentityMismatch)), outcome.status


@bp.get("/unit/done")
@UNIT_REGISTRATION.guard("done")
def unit_done(flow):
    """注册成功, as for a person: signed in with 返回<系统> when a relying system sent the unit."""
    return render_template(UNIT_REGISTRATION.step("done").template, steps=UNIT_REGISTRATION.titles(),
                           current="done", heading="单位用户注册", unit=True, username=flow.state.username,
                           returning_to=_returning_to(), resume_pending=bool(g.get("user") and peek_resume_url()))


@bp.post("/unit/sms")
@limiter.shared_limit(sms_ip_limit, scope="register-sms")
def unit_send_sms():
    flow = UNIT_REGISTRATION.load()
    if flow is None:
        return jsonify(error="flow_expired", message=FlowExpired.message), 400
    values = request.form
    return sms_json(lambda: send_handler_code(flow, values.get("phone", ""), bank_code=values.get("bank_code"),
                                              card_number=values.get("card_number"),
                                              consent=bool(values.get("consent"))),
                    not_reached="请先完成前面的注册步骤")
