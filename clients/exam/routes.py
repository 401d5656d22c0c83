"""Pages of the exam candidate service (考生服务系统).  Views stay thin: the protocol lives in
``platform.py`` and ``backchannel.py``, local sessions in ``sessions.py``."""

from __future__ import annotations

import functools
import logging

from flask import Blueprint, current_app, g, jsonify, redirect, render_template, request, url_for

from .backchannel import LogoutTokenInvalid, verify_logout_token
from .candidates import candidate_view
from .errors import PlatformUnavailable
from .extensions import csrf
from .forms import LogoutForm
from .platform import complete_login, logout_form, logout_returned, start_login
from .security import platform_origin
from .sessions import (current_local_login, end_local_login, end_platform_sessions, platform_session_ended,
                       start_local_login)

log = logging.getLogger(__name__)

bp = Blueprint("exam", __name__)


@bp.before_app_request
def load_candidate() -> None:
    if request.endpoint in ("static", "exam.backchannel_logout", "exam.frontchannel_logout", "exam.health"):
        return
    login = current_local_login()
    g.local_login = login
    g.candidate = login.candidate if login else None


def candidate_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if g.get("candidate") is None:
            return redirect(url_for("exam.index"))
        return view(*args, **kwargs)

    return wrapped


@bp.get("/")
def index():
    if g.candidate is not None:
        return redirect(url_for("exam.candidate"))
    return render_template("exam/login.html", links=_platform_links(), platform_ended=platform_session_ended())


@bp.get("/login")
def login():
    """登录: to the platform's login page (code flow)."""
    if g.candidate is not None:
        return redirect(url_for("exam.candidate"))
    return start_login()


@bp.get("/register")
def register():
    """立即注册: to the platform's registration; the user comes back here signed in."""
    if g.candidate is not None:
        return redirect(url_for("exam.candidate"))
    return start_login(register=True)


@bp.get("/forgot-password")
def forgot_password():
    """忘记密码？: the platform's 找回密码 inside an authorization request of ours, so that the login
    that ends it comes back here signed in."""
    if g.candidate is not None:
        return redirect(url_for("exam.candidate"))
    return start_login(screen="forgot_password")


@bp.get("/forgot-username")
def forgot_username():
    """忘记用户名？: as 忘记密码？, with the platform's 找回用户名."""
    if g.candidate is not None:
        return redirect(url_for("exam.candidate"))
    return start_login(screen="forgot_username")


@bp.get("/guide")
def guide():
    """注册指南 / 常见问题: what a candidate needs before registering, and where to turn."""
    return render_template("exam/guide.html", links=_platform_links())


@bp.app_context_processor
def contacts() -> dict:
    lines = [line.strip() for line in current_app.config["CONTACTS"].splitlines() if line.strip()]
    return {"contacts": lines}


@bp.get("/auth/callback")
def callback():
    platform_login = complete_login()  # typed errors become a clear page (errors.py)
    start_local_login(platform_login)
    return redirect(url_for("exam.candidate"))


@bp.get("/candidate")
@candidate_required
def candidate():
    login = g.local_login
    return render_template(
        "exam/candidate.html",
        candidate=g.candidate,
        view=candidate_view(g.candidate),
        login=login,
        links=_platform_links(),
        logout_form=LogoutForm(),
    )


@bp.post("/logout")
def logout():
    """退出: end the local session, then the platform's (RP-initiated logout)."""
    form = LogoutForm()
    if not form.validate_on_submit():
        return redirect(url_for("exam.index"))
    id_token = end_local_login()
    if id_token is None:
        return render_template("exam/logged_out.html", platform_confirmed=False)
    try:
        end_session = logout_form(id_token)
    except PlatformUnavailable as exc:
        log.warning("RP-initiated logout not possible: %s", exc.detail)
        return render_template("exam/logged_out.html", platform_confirmed=False, platform_unreachable=True)
    return render_template("exam/logout_continue.html", end_session=end_session)


@bp.get("/logged-out")
def logged_out():
    """Where the platform sends the user back after logout (post_logout_redirect_uri)."""
    return render_template("exam/logged_out.html", platform_confirmed=logout_returned())


@bp.post("/backchannel-logout")
@csrf.exempt
def backchannel_logout():
    """The platform's server calls this when a login there ended (no browser involved)."""
    try:
        notice = verify_logout_token(request.form.get("logout_token", ""))
    except LogoutTokenInvalid as exc:
        log.warning("logout token refused: %s", exc)
        return _no_store(jsonify(error="invalid_request", error_description=str(exc)), 400)
    except PlatformUnavailable as exc:
        log.warning("logout token not checkable now: %s", exc.detail)
        return _no_store(jsonify(error="temporarily_unavailable",
                                 error_description="the platform's keys could not be fetched"), 503)
    ended = end_platform_sessions(sub=notice.sub, sid=notice.sid)
    log.info("back-channel logout: %d local session(s) ended", ended)
    return _no_store(current_app.response_class(status=200))


@bp.get("/frontchannel-logout")
def frontchannel_logout():
    """The platform's logout page loads this in a hidden iframe (Front-Channel Logout 1.0): with
    the platform's iss and the login's sid, the local sessions of that login end.  Back-channel
    logout stays the main path; this one needs the user's browser to be at the platform."""
    sid = request.args.get("sid", "")
    ended = 0
    if request.args.get("iss") == current_app.config["ISSUER"] and sid:
        ended = end_platform_sessions(sub=None, sid=sid)
    log.info("front-channel logout: %d local session(s) ended", ended)
    response = current_app.response_class("<!doctype html><title>logout</title>", mimetype="text/html")
    # framed by the platform's logout page, and by nothing else
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; frame-ancestors {platform_origin(current_app.config['ISSUER'])}")
    return _no_store(response)


@bp.get("/healthz")
def health():
    return {"status": "ok"}


@bp.app_template_filter("beijing_time")
def beijing_time(value) -> str:
    """Beijing time for people on screen (stored in UTC; ``auth_time`` is epoch seconds)."""
    from datetime import datetime, timedelta, timezone

    if isinstance(value, (int, float)):
        value = datetime.fromtimestamp(value, timezone.utc)
    return value.astimezone(timezone(timedelta(hours=8))).strftime("%Y-%m-%d %H:%M")


def _no_store(response, status: int | None = None):
    if status is not None:
        response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def _platform_links() -> dict[str, str]:
    cfg = current_app.config
    return {
        "account": cfg["ACCOUNT_URL"],
        "password": cfg["PASSWORD_URL"],
        "forgot_username": url_for("exam.forgot_username"),
        "forgot_password": url_for("exam.forgot_password"),
    }
