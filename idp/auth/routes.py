"""Login, logout and the captcha image."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, g, make_response, redirect, render_template, request, session, url_for

from ..errors import CaptchaInvalid, InvalidCredentials
from ..extensions import limiter, serve_without_browser_state
from ..mfa.gate import second_factor_step
from ..oauth.logout import end_browser_login
from ..services.accounts import records as accounts
from ..services.verification import captcha
from ..services.accounts.sessions import start_login
from .forms import LoginForm, LogoutForm
from .guards import load_user
from ..services.accounts.resume import pop_resume_url

bp = Blueprint("auth", __name__)
bp.before_app_request(load_user)
# a captcha's image, audio and a new challenge need no session: each challenge is found by its
# own unguessable id and spent by the form that names it (their per-IP limit still counts)
bp.record_once(lambda state: serve_without_browser_state(state.app, "/captcha/"))


def _login_limit() -> str:
    return current_app.config["LOGIN_IP_LIMIT"]


def _captcha_limit() -> str:
    return current_app.config["CAPTCHA_IP_LIMIT"]


@bp.get("/")
def index():
    return redirect(url_for("account.home") if g.user else url_for("auth.login"))


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login():
    form = LoginForm()
    error = None
    tab = _login_tab(form.user_type.data if form.is_submitted() else request.args.get("type"))
    if form.validate_on_submit():
        try:
            if not captcha.check_captcha(form.captcha_id.data, form.captcha.data):
                raise CaptchaInvalid()
            user = accounts.authenticate(form.username.data.strip(), form.password.data, user_type=tab)
        except (CaptchaInvalid, InvalidCredentials) as exc:
            error = exc.message
        else:
            if (second_factor := second_factor_step(user)) is not None:
                return second_factor  # staff: the login completes after the second factor
            start_login(user, amr=["pwd"])
            return redirect(pop_resume_url() or url_for("account.home"))
    if not form.is_submitted() and session.get("login_hint"):
        form.username.data = session.pop("login_hint")  # OIDC login_hint from the relying system
    form.password.data = ""
    form.captcha.data = ""
    form.captcha_id.data = captcha.issue_captcha()
    form.user_type.data = tab
    status = 400 if form.is_submitted() else 200
    return render_template("auth/login.html", form=form, error=error, tab=tab), status


def _login_tab(value: str | None) -> str:
    """个人用户登录 (``personal``, the default) or 单位用户登录 (``unit``)."""
    return "unit" if value == "unit" else "personal"


@bp.get("/captcha/<captcha_id>.png")
@limiter.limit(_captcha_limit)
def captcha_image(captcha_id: str):
    return _challenge(captcha.captcha_image(captcha_id), "image/png")


@bp.get("/captcha/<captcha_id>.wav")
@limiter.limit(_captcha_limit)
def captcha_audio(captcha_id: str):
    """语音验证码: the same challenge read aloud, for citizens who cannot read the image."""
    return _challenge(captcha.captcha_audio(captcha_id), "audio/wav")


def _challenge(body: bytes | None, mimetype: str):
    """A captcha rendering, never cached (each is single-use); 404 once it expired."""
    if body is None:
        abort(404)
    response = make_response(body)
    response.headers["Content-Type"] = mimetype
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/captcha/new")
@limiter.limit(_captcha_limit)
def captcha_new():
    """A fresh challenge for the 换一张 button (JSON; the page works without it)."""
    captcha_id = captcha.issue_captcha()
    return {"captcha_id": captcha_id, "image": url_for("auth.captcha_image", captcha_id=captcha_id),
            "audio": url_for("auth.captcha_audio", captcha_id=captcha_id)}


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    form = LogoutForm()
    if form.validate_on_submit():
        return render_template("auth/logged_out.html", frontchannel_logout_urls=end_browser_login(reason="logout"))
    if g.user is None:
        return render_template("auth/logged_out.html")
    return render_template("auth/logout.html", form=form)
