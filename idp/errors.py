"""Typed errors, one class per failure a user or a relying system can see.

``UserError`` subclasses carry the Chinese message shown on the page (and, optionally, the form
field it belongs to).  `Protocol errors are Authlib's ``OAuth2Error``
classes; ``allow_redirect`` says whether the spec allows sending one back to the redirect URI — it
is false whenever the client or redirect URI itself is in doubt, so an attacker cannot turn the
provider into an open redirector.  ``register_error_handlers`` answers HTML to browsers and JSON
to everything else.
"""

from __future__ import annotations

import logging
import re

import redis.exceptions as redis_errors
import sqlalchemy.exc as sa_errors
from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from flask import Flask, g, jsonify, make_response, redirect, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


# -- failures a citizen sees on a page -------------------------------------------------------------
class UserError(Exception):
    message = "操作失败，请稍后再试"
    field: str | None = None
    status = 400

    def __init__(self, message: str | None = None, *, field: str | None = None) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message
        if field:
            self.field = field

    @property
    def reason_code(self) -> str:
        """The audit log's name for this failure (the class name in snake case), never the values."""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", type(self).__name__).lower()


class InvalidCredentials(UserError):
    # one message for an unknown user, a wrong password, a disabled account (locks: below)
    message = "用户名或密码错误"


class LoginTemporarilyLocked(InvalidCredentials):
    """LOCKOUT_THRESHOLD wrong passwords for a submitted name, known or not: the same words for
    both, so the lock tells nothing about which names exist."""

    status = 429

    def __init__(self, seconds_left: int) -> None:
        minutes = max(1, -(-int(seconds_left) // 60))
        super().__init__(f"密码错误次数过多，账户已临时锁定，请{minutes}分钟后再试或通过“忘记密码”重置")
        self.minutes = minutes


class LoginLockedByAdministrator(InvalidCredentials):
    """An operator locked the account (用户综合管理).  Said only to whoever gave its right
    password, so it reveals nothing to anyone else."""

    status = 403

    def __init__(self) -> None:
        from flask import current_app

        phone = current_app.config.get("SERVICE_DESK_PHONE")
        super().__init__("账户已被管理员锁定，请联系客服" + (f"（服务热线：{phone}）" if phone else ""))


class CaptchaInvalid(UserError):
    message = "验证码错误或已失效，请重新输入"
    field = "captcha"


class UsernameTaken(UserError):
    message = "用户名已被使用"
    field = "username"


class DocumentTaken(UserError):
    message = "证件已被使用"
    field = "id_number"


class PasswordRejected(UserError):
    field = "password"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("；".join(problems))
        self.problems = problems


class InvalidField(UserError):
    """A value that breaks a format rule; the message names the rule."""


class PasswordsDiffer(InvalidField):
    """The confirmation differs from the password (registration's 确认密码; the forms of a new
    password say 新密码 and name their own field)."""

    message = "两次输入的密码不一致"
    field = "confirm"


class TooManyAttempts(UserError):
    message = "操作过于频繁，请稍后再试"
    status = 429


# -- protocol errors ---------------------------------------------------------------------------------
# Protocol errors are Authlib's typed OAuth2Error subclasses, one per error code
# (InvalidClientError, LoginRequiredError, ...).  Authlib attaches a ``redirect_uri`` only once
# the client and that URI are validated, which is exactly when the spec allows redirecting the
# error; ``allow_redirect`` below reads that.  The handler in register_error_handlers answers:
# a redirect to the client (with ``iss``, RFC 9207) when allowed, else a page or JSON.


def allow_redirect(error: OAuth2Error) -> bool:
    return bool(getattr(error, "redirect_uri", None))


_DESCRIPTIONS = {
    "invalid_client": "未知的应用系统或应用系统已停用，无法继续登录。",
}


def describe(error: OAuth2Error) -> str:
    if error.error == "invalid_request" and "redirect" in (error.description or "").lower():
        return "应用系统的回调地址未登记，无法继续登录。请联系该应用系统的管理员。"
    return _DESCRIPTIONS.get(error.error) or error.description or error.error


# -- a store that is down or does not answer ----------------------------------------------------------
# Redis (sessions, flows, codes, limits) or the database refused, timed out or dropped the
# connection.  Nothing the citizen did is wrong and trying again later will work: 503 with the
# platform's own page, or ``temporarily_unavailable`` (RFC 6749's code for it) to an API client.
OUTAGES: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,  # refused, reset, no primary known to the sentinels
    redis_errors.TimeoutError,  # frozen: no answer within IDP_REDIS_SOCKET_TIMEOUT
    redis_errors.ReadOnlyError,  # a primary demoted by a fail-over, until the client reconnects
    sa_errors.OperationalError,  # refused, dropped, statement timeout, no answer (db_pool.py)
    sa_errors.TimeoutError,  # no free pooled connection within IDP_DATABASE_POOL_TIMEOUT
)
UNAVAILABLE_MESSAGE = "系统繁忙，请稍后再试"
RETRY_AFTER_SECONDS = 5


def is_outage(exc: BaseException | None) -> bool:
    return isinstance(exc, OUTAGES) or (
        isinstance(exc, sa_errors.DBAPIError) and bool(exc.connection_invalidated)
    )


def outage_response(exc: BaseException):
    """The 503 answer.  Renders without the session (it may be what failed): no session load or
    save, no flashed messages, no CSRF token.  A view that has already done something the user must
    hear about (an account created) puts its own page in ``g.outage_page``."""
    log.warning("store unavailable on %s %s: %s: %s", request.method, request.path, type(exc).__name__, exc)
    g.store_unavailable = True  # extensions.SessionStoreGuard then leaves the session alone
    page = g.pop("outage_page", None)
    if page is not None and not wants_json():
        try:
            answer = page()
        except Exception:  # noqa: BLE001 - the store that failed may be the one it needs
            log.warning("outage page of %s failed; answering the plain 503", request.path, exc_info=True)
            answer = None
        if answer is not None:
            return answer
    if wants_json():
        response = jsonify(error="temporarily_unavailable", error_description=UNAVAILABLE_MESSAGE)
        response.status_code = 503
    else:
        response = make_response(render_template(
            "error.html", title="系统繁忙", message=UNAVAILABLE_MESSAGE + "。", code="temporarily_unavailable",
            sessionless=True,
        ), 503)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response.headers["Cache-Control"] = "no-store"
    return response


API_PREFIXES = ("/oauth/token", "/oauth/userinfo", "/oauth/revoke", "/oauth/introspect", "/api/", "/.well-known/", "/jwks")


def wants_json() -> bool:
    """JSON for APIs and for clients that ask for it; HTML for browsers (and for no preference)."""
    if request.path.startswith(API_PREFIXES) or request.is_json:
        return True
    if not request.accept_mimetypes:
        return False
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) != "text/html"


def _error_page(status: int, title: str, message: str, code: str | None = None):
    if wants_json():
        body = {"error": code or title, "error_description": message}
        return jsonify(body), status
    # a server error may come from the session store itself: render without it
    return render_template("error.html", title=title, message=message, code=code, sessionless=status >= 500), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(OAuth2Error)
    def oauth2_error(exc: OAuth2Error):
        if allow_redirect(exc):
            _, _, headers = exc()
            location = add_params_to_uri(dict(headers)["Location"], [("iss", app.config["ISSUER"])])
            return redirect(location, code=302)
        return _error_page(exc.status_code or 400, exc.error, describe(exc), exc.error)

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        return _error_page(400, "请求已失效", "页面已过期或请求来源无法确认，请刷新页面后重试。", "csrf_failed")

    @app.errorhandler(UserError)
    def user_error(exc: UserError):
        return _error_page(exc.status, "操作失败", exc.message, type(exc).__name__)

    for outage in OUTAGES:
        app.register_error_handler(outage, outage_response)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        original = getattr(exc, "original_exception", None)
        if is_outage(original):  # raised outside a view: opening or saving the session
            return outage_response(original)
        messages = {
            403: "您没有权限访问该页面。",
            404: "您访问的页面不存在。",
            405: "不支持的请求方式。",
            429: "操作过于频繁，请稍后再试。",
        }
        message = messages.get(exc.code or 500, exc.description or "请求无法处理。")
        answer = make_response(_error_page(exc.code or 500, str(exc.code), message, exc.name.lower().replace(" ", "_")))
        window = getattr(getattr(exc, "limit", None), "limit", None)  # Flask-Limiter's refusal
        if exc.code == 429 and window is not None:
            # the window's length: the limit has reset by then (asking Redis when exactly would
            # cost a round trip on every limited request)
            answer.headers["Retry-After"] = str(window.get_expiry())
        return answer

    if app.testing:
        return  # tests see the real traceback

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        if is_outage(exc):
            return outage_response(exc)
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _error_page(500, "系统繁忙", "系统繁忙，请稍后再试。", "server_error")
