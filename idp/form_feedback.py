"""The skeleton of every form page, and where a typed error shows on it: beside its field when
the form has one, else in the alert above the form.  Shared by the flows' views (registration,
recovery, 变更用户信息) and the user centre.

``run_form`` is the one "validate, check the captcha, try the work, map the typed error, issue a
new captcha, answer 400" of a form page; ``run_sms_step`` is the same for a page that also has a
发送短信验证 button."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import current_app, flash, jsonify, redirect, render_template, request, url_for

from .errors import CaptchaInvalid, PasswordRejected, UserError
from .flows import Flow, FlowDefinition, FlowExpired, Step, StepNotReached
from .services.verification import captcha
from .services.verification.sms import SmsResendTooSoon, SmsSent


def attach_error(form, exc: UserError, aliases: Mapping[str, str] | None = None) -> str | None:
    """Put ``exc`` on its field and return None, or return its message for the alert on top.

    ``aliases`` maps a service's field name to this form's (the password policy says
    ``password``; a reset form calls it ``new_password``)."""
    name = exc.field
    if name and not hasattr(form, name) and aliases:
        name = aliases.get(name)
    field = getattr(form, name, None) if name else None
    if field is None:
        return exc.message
    field.errors = list(field.errors) + (exc.problems if isinstance(exc, PasswordRejected) else [exc.message])
    return None


@dataclass
class FormOutcome:
    """What one POST (or GET) of a form page came to."""

    error: str | None = None  # for the alert on top (field errors are on the form)
    status: int = 200
    result: Any = None
    done: bool = False  # the work passed: the view redirects onwards
    failure: UserError | None = None  # what went wrong, for pages that add a hint to some errors


def run_form(form, work: Callable[[], Any], *, aliases: Mapping[str, str] | None = None,
             secrets: tuple[str, ...] = (), on_fields: bool = True) -> FormOutcome:
    """Validate ``form``; check its captcha when it has one; run ``work``; map a typed error onto
    the form (``on_fields=False``: always in the alert on top, for pages that show errors there).
    Whatever happened, the form's secrets (field names in ``secrets``) are emptied and a captcha
    form gets a new captcha: an answer is never sent back, a captcha serves once."""
    outcome = FormOutcome()
    if form.validate_on_submit():
        try:
            if hasattr(form, "captcha_id") and not captcha.check_captcha(form.captcha_id.data, form.captcha.data):
                raise CaptchaInvalid()
            outcome.result, outcome.done = work(), True
        except UserError as exc:
            outcome.failure = exc
            outcome.error = attach_error(form, exc, aliases) if on_fields else exc.message
            outcome.status = exc.status
    elif form.is_submitted():
        outcome.status = 400
    for name in secrets:
        getattr(form, name).data = ""
    if hasattr(form, "captcha_id") and not outcome.done:
        form.captcha.data = ""
        form.captcha_id.data = captcha.issue_captcha()
    return outcome


@dataclass
class SmsStepOutcome:
    """What one POST (or GET) of an SMS-verified step came to."""

    error: str | None = None  # for the alert on top (field errors are on the form)
    status: int = 200
    sent: SmsSent | str | None = None  # 发送短信验证 was pressed: the code (or a notice) is on its way
    result: Any = None
    done: bool = False  # 提交 passed: the view redirects onwards
    failure: UserError | None = None  # what went wrong, for pages that add a hint to some errors

    @property
    def sms_status(self) -> str | None:
        return self.sent.notice if isinstance(self.sent, SmsSent) else self.sent


def run_sms_step(form, *, send: Callable[[], Any], submit: Callable[[], Any],
                 aliases: Mapping[str, str] | None = None) -> SmsStepOutcome:
    """A page with a 发送短信验证 button beside a 提交 button (registration, recovery, 更换手机号,
    变更用户信息): either send the code or run the step, mapping a typed error onto the form.
    The code field is always emptied: a code is never echoed back."""
    outcome = SmsStepOutcome()
    try:
        if form.is_submitted() and form.send_sms.data:
            outcome.sent = send()
        elif form.validate_on_submit():
            outcome.result, outcome.done = submit(), True
        elif form.is_submitted():
            outcome.status = 400
    except UserError as exc:
        outcome.failure = exc
        outcome.error, outcome.status = attach_error(form, exc, aliases), exc.status
    form.sms_code.data = ""
    return outcome


# -- the standard page of a flow step -----------------------------------------------------------------
def register_step_pages(bp, definition: FlowDefinition, *, aliases: Mapping[str, str] | None = None) -> None:
    """A page for every step of ``definition`` that has a ``path``: adding such a step to a flow
    is its entry in the flow's list, its handler and its template."""
    for step in definition.steps:
        if step.path is None:
            continue
        view = definition.guard(step.name, step.variant)(_step_page(definition, step, aliases))
        methods = ["GET", "POST"] if step.form is not None else ["GET"]  # a final page only shows
        bp.add_url_rule(step.path, step.endpoint.rsplit(".", 1)[1], view, methods=methods)


def _step_page(definition: FlowDefinition, step: Step, aliases: Mapping[str, str] | None):
    def page(flow):
        if step.form is None:
            context = step.context(flow) if step.context is not None else {}
            return render_template(step.template, steps=definition.titles(), current=step.name, **context)
        form = step.form()
        if step.prefill is not None and flow is not None and not form.is_submitted():
            step.prefill(flow, form)
        outcome = run_form(form, lambda: step.handler(flow, form), aliases=aliases, secrets=step.secrets)
        if outcome.done:
            flow = outcome.result if isinstance(outcome.result, Flow) else flow  # an entry step started it
            return redirect(definition.url_for(definition.after(step.name), flow))
        if step.entry is None and not definition.in_session():  # its last allowed failure ended the flow
            flash(outcome.error or FlowExpired.message, "error")
            return redirect(url_for(definition.first.endpoint))
        context = step.context(flow) if step.context is not None and flow is not None else {}
        return render_template(step.template, steps=definition.titles(), current=step.name, form=form,
                               error=outcome.error, **context), outcome.status

    page.__name__ = step.endpoint.rsplit(".", 1)[1]
    return page


# -- the 发送短信验证 button: the per-IP limit and its JSON form (no page reload) ---------------------
def sms_ip_limit() -> str:
    return current_app.config["SMS_IP_LIMIT"]


def not_sending_sms() -> bool:
    """For ``exempt_when``: a page POST that does not press 发送短信验证 costs no SMS."""
    return "send_sms" not in request.form


def sms_json(send: Callable[[], SmsSent], *, not_reached: str = "请先完成前面的步骤"):
    """{sent, message, resend_after}, or the error as JSON with its status."""
    try:
        sent = send()
    except FlowExpired as exc:
        return jsonify(error="flow_expired", message=exc.message), 400
    except StepNotReached:
        return jsonify(error="step_not_reached", message=not_reached), 409
    except UserError as exc:
        body = {"error": type(exc).__name__, "message": exc.message, "field": exc.field}
        if isinstance(exc, SmsResendTooSoon):
            body["retry_after"] = exc.seconds
        return jsonify(body), exc.status
    return jsonify(sent=True, message=sent.notice, resend_after=sent.resend_after)
