"""单位网上办事 (the units' online service hall): a second, minimal relying system of the unified
user platform, for 单位用户.  It signs a unit's handler in through the platform (code flow with
PKCE, scope ``openid unit``) and shows the unit the platform vouched for; registration, login,
maintenance and recovery stay at the platform.  It imports nothing from ``idp/``::

    UNITPORTAL_CLIENT_ID=... UNITPORTAL_CLIENT_SECRET=... flask --app clients.unitportal run --port 5200
    gunicorn 'clients.unitportal:create_app()'        # production (UNITPORTAL_ENV=production)

It keeps no database: its sessions (the login in progress, then the unit's claims and the ID
token for logout) are server-side files (Flask-Session over cachelib); the cookie holds only a
random session id.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, render_template, request
from flask_wtf import CSRFProtect
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from .config import UnitPortalConfig, load_config

log = logging.getLogger(__name__)
csrf = CSRFProtect()


def create_app(config: UnitPortalConfig | str | None = None, **overrides: Any) -> Flask:
    if not isinstance(config, UnitPortalConfig):
        config = load_config(config, **overrides)
    app = Flask(__name__)
    app.config.from_mapping(config.as_flask_config())
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = secrets.token_urlsafe(32)  # development: sessions end with the process

    from cachelib import FileSystemCache
    from flask_session import Session

    Path(app.config["SESSION_DIR"]).mkdir(parents=True, exist_ok=True)
    app.config.update(SESSION_TYPE="cachelib", SESSION_PERMANENT=True, SESSION_KEY_PREFIX="unitportal:",
                      SESSION_CACHELIB=FileSystemCache(app.config["SESSION_DIR"], threshold=2000,
                                                       default_timeout=app.config["SESSION_LIFETIME"], mode=0o600))
    Session(app)
    csrf.init_app(app)

    from . import portal

    portal.init_app(app)
    app.register_blueprint(portal.bp)
    _security_headers(app)
    _error_pages(app)
    return app


def _security_headers(app: Flask) -> None:
    issuer = urlsplit(app.config["ISSUER"])
    csp = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
           f"form-action 'self' {issuer.scheme}://{issuer.netloc}; frame-ancestors 'none'; base-uri 'none'; "
           "object-src 'none'")

    @app.after_request
    def headers(response):
        response.headers.setdefault("Content-Security-Policy", csp)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if not request.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response


def _error_pages(app: Flask) -> None:
    from .portal import LoginFailed

    @app.errorhandler(LoginFailed)
    def login_failed(exc: LoginFailed):
        log.warning("login failed: %s", exc.detail)  # the detail for the log, the message for people
        return render_template("unitportal/message.html", title=exc.title, message=exc.message), exc.status

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        return render_template("unitportal/message.html", title="请求已失效",
                               message="页面已过期，请刷新页面后重试。"), 400

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return render_template("unitportal/message.html", title="出错了",
                               message="您访问的页面不存在。" if exc.code == 404 else "请求无法处理。"), exc.code or 500
