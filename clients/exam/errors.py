"""Typed failures of the exam service, one class per thing a candidate can see, each mapped to one
Chinese message.  The detail (what exactly failed) goes to the log, never to the page."""

from __future__ import annotations

import logging

from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class CandidateError(Exception):
    title = "登录失败"
    message = "登录失败，请返回重新登录。"
    status = 400

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.message)
        self.detail = detail


# -- the login callback --------------------------------------------------------------------------
class LoginStateInvalid(CandidateError):
    """No login was started from this browser, or it was already used or has expired (state)."""

    message = "登录请求已失效或无法确认来源，请返回考生服务系统重新登录。"


class IssuerMismatch(CandidateError):
    """The response names another issuer than the platform we sent the user to (RFC 9207)."""

    message = "登录响应并非来自统一用户平台，已拒绝。请返回考生服务系统重新登录。"


class LoginDenied(CandidateError):
    """The platform answered with an OAuth error instead of a code."""

    _MESSAGES = {
        "access_denied": "您未同意授权，未能登录考生服务系统。",
        "login_required": "您尚未在统一用户平台登录，请重新登录。",
        "consent_required": "需要您在统一用户平台确认授权后才能登录，请重新登录。",
        "temporarily_unavailable": "统一用户平台暂时繁忙，请稍后再试。",
        "server_error": "统一用户平台暂时无法完成登录，请稍后再试。",
    }

    def __init__(self, error: str, description: str = "") -> None:
        # both come from the URL: one line, bounded, for the log only
        super().__init__(" ".join(f"{error}: {description}".split())[:300])
        self.error = error
        self.message = self._MESSAGES.get(error, "统一用户平台未能完成登录，请返回考生服务系统重新登录。")


class TokenExchangeFailed(CandidateError):
    """The token endpoint refused the code (expired, replayed, client not accepted)."""

    message = "登录凭证已失效或无法兑换，请返回考生服务系统重新登录。"


class IdTokenInvalid(CandidateError):
    """The ID token's signature, issuer, audience, nonce or lifetime did not verify."""

    message = "统一用户平台返回的身份凭证校验失败，已拒绝登录。请重新登录；如仍失败，请联系考试院。"


class PlatformUnavailable(CandidateError):
    """The platform could not be reached or answered nonsense."""

    title = "暂时无法登录"
    message = "统一用户平台暂时无法访问，请稍后再试。"
    status = 502


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(CandidateError)
    def candidate_error(exc: CandidateError):
        log.warning("login failed on %s: %s: %s", request.path, type(exc).__name__, exc.detail)
        return render_template("exam/error.html", title=exc.title, message=exc.message,
                               code=type(exc).__name__), exc.status

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        return render_template("exam/error.html", title="请求已失效",
                               message="页面已过期或请求来源无法确认，请刷新页面后重试。", code="csrf_failed"), 400

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        messages = {404: "您访问的页面不存在。", 405: "不支持的请求方式。"}
        return render_template("exam/error.html", title="出错了",
                               message=messages.get(exc.code or 500, "请求无法处理。"),
                               code=str(exc.code)), exc.code or 500

    if app.testing:
        return  # tests see the real traceback of anything unexpected

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return render_template("exam/error.html", title="系统繁忙", message="系统繁忙，请稍后再试。",
                               code="server_error"), 500
