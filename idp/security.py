"""Security headers on every response, and no-store on anything personal or protocol-sensitive."""

from __future__ import annotations

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)

# pages that show personal data or carry one-time secrets
_NO_STORE_PREFIXES = ("/login", "/account", "/register", "/recovery", "/admin", "/oauth", "/consent", "/logout")


_DEFAULT_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
)
_DEFAULT_HEADERS_TLS = (*_DEFAULT_HEADERS, ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))


def init_app(app: Flask) -> None:
    if app.config.get("TRUSTED_PROXIES"):
        n = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]

    secure = app.config.get("SECURE_COOKIES")
    app.jinja_env.globals["has_endpoint"] = lambda name: name in app.view_functions
    app.jinja_env.filters["datetime"] = _format_datetime

    @app.after_request
    def security_headers(response):
        headers = response.headers
        # one pass over the names already set, then one extend: a setdefault per header was a
        # linear, case-folding scan each, ~300 function calls on every response (issue #5)
        present = {name.lower() for name in headers.keys()}
        wanted = _DEFAULT_HEADERS_TLS if (secure or request.is_secure) else _DEFAULT_HEADERS
        headers.extend([(name, value) for name, value in wanted if name.lower() not in present])
        path = request.path
        if path.startswith(_NO_STORE_PREFIXES) or path == "/":
            headers["Cache-Control"] = "no-store"
            headers["Pragma"] = "no-cache"
        return response


def _format_datetime(value) -> str:
    """Beijing time for people on screen (stored in UTC)."""
    from datetime import datetime, timedelta, timezone

    if value is None:
        return ""
    if isinstance(value, (int, float)):
        value = datetime.fromtimestamp(value, timezone.utc)
    return value.astimezone(timezone(timedelta(hours=8))).strftime("%Y-%m-%d %H:%M")
