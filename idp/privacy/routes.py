"""个人信息与隐私 and the privacy notice.  Views parse a form, call a service, render."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from flask import Blueprint, current_app, g, make_response, render_template, session

from ..auth.guards import login_required
from ..errors import CaptchaInvalid, UserError
from ..extensions import limiter
from ..form_feedback import attach_error, not_sending_sms, run_sms_step, sms_ip_limit
from ..oauth.claims import SCOPE_CLAIMS, SCOPE_LABELS
from ..services.accounts import closure, privacy
from ..services.accounts.authorisations import authorised_systems
from ..services.accounts.privacy_consents import CONSENT_PURPOSES, consents_of, notice_version
from ..services.verification import captcha
from .forms import CloseAccountForm, DownloadReauthForm, DownloadRecentForm

bp = Blueprint("privacy", __name__)

_BEIJING = timezone(timedelta(hours=8))


@bp.get("/privacy")
def notice():
    """个人信息保护告知 (the privacy notice): a page of the platform, open to everyone."""
    return render_template("privacy/notice.html", version=notice_version(),
                           purposes=CONSENT_PURPOSES, scope_labels=SCOPE_LABELS)


@bp.get("/account/privacy")
@login_required
def overview():
    limit = privacy.disclosure_limit()
    return render_template(
        "privacy/overview.html",
        holdings=privacy.holdings(g.user),
        disclosures=privacy.disclosures(g.user, limit),
        disclosure_limit=limit,
        systems=authorised_systems(g.user),
        consents=consents_of(g.user),
        purposes=CONSENT_PURPOSES,
        scope_labels=SCOPE_LABELS,
        version=notice_version(),
    )


@bp.route("/account/privacy/download", methods=["GET", "POST"])
@login_required
def download():
    recent = privacy.recently_authenticated(g.login)
    form = DownloadRecentForm() if recent else DownloadReauthForm()
    error = None
    if form.validate_on_submit():
        try:
            if not recent and not captcha.check_captcha(form.captcha_id.data, form.captcha.data):
                raise CaptchaInvalid()
            data = privacy.download_my_data(g.user, login=g.login,
                                            password=None if recent else form.password.data,
                                            scope_claims=SCOPE_CLAIMS)
        except UserError as exc:
            error = attach_error(form, exc, {"current_password": "password"})
        else:
            return _attachment(data)
    if not recent:
        form.password.data = ""
        form.captcha.data = ""
        form.captcha_id.data = captcha.issue_captcha()
    failed = form.is_submitted()
    return render_template("privacy/download.html", form=form, recent=recent, error=error,
                           max_age_minutes=current_app.config["PRIVACY_REAUTH_MAX_AGE"] // 60), 400 if failed else 200


def _attachment(data: dict):
    stamp = datetime.now(_BEIJING).strftime("%Y%m%d%H%M%S")
    response = make_response(json.dumps(data, ensure_ascii=False, indent=2))
    response.headers["Content-Type"] = "application/json; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="my-data-{stamp}.json"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@bp.route("/account/privacy/close", methods=["GET", "POST"])
@limiter.shared_limit(sms_ip_limit, scope="closure-sms", exempt_when=not_sending_sms)
@login_required
def close():
    form = CloseAccountForm()
    outcome = run_sms_step(
        form,
        send=lambda: closure.send_closure_code(g.user),
        submit=lambda: closure.close_account(g.user, form.password.data or "", form.sms_code.data or ""),
        aliases={"current_password": "password"},
    )
    form.password.data = ""
    if outcome.done:
        # every login ended, this one included: the browser keeps nothing of the account
        session.clear()
        g.user = g.login = None
        return render_template("privacy/closed.html")
    return render_template("privacy/close.html", form=form, error=outcome.error, sms_status=outcome.sms_status,
                           phone=privacy.masked_phone(g.user)), outcome.status
