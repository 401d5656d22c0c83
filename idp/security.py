"""Security headers on every response, and no-store on anything personal or protocol-sensitive."""

from __future__ import annotations

from typing import Callable, Iterable
from urllib.parse import urlsplit

from flask import Flask, current_app, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

# form-action covers where a form's submission ends up, redirects included: 'self' alone, and a
# page whose form leads on to a relying system (consent, logout confirmation, the login or
# registration that resumes an authorization request) adds that system's registered redirect
# URI for this request only (``allow_form_target``)
# frame-src: a logout page loads the front-channel logout URIs of the relying systems the login
# signed in to, in hidden iframes; that page alone names them (``allow_frame_source``), path and
# all, every other page keeps default-src 'self'
_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'{targets}; frame-ancestors 'none'; base-uri 'none'; object-src 'none'{frames}"
)
CSP = _CSP.format(targets="", frames="")
_FORM_TARGET_SOURCES = "idp_form_target_sources"

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


def allow_form_target(uri: str | None) -> None:
    """Let this response's forms lead to ``uri`` (a redirect URI the caller has validated)."""
    if uri:
        g.setdefault("csp_form_targets", []).append(uri)


def allow_frame_source(uri: str) -> None:
    """Let this response's iframes load ``uri`` (a registered front-channel logout URI)."""
    g.setdefault("csp_frame_sources", []).append(uri)


def _frame_source(uri: str) -> str | None:
    """The URI without its query as a CSP source: the exact path, as registered."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    if parts.scheme not in ("https", "http") or not parts.netloc or any(c in uri for c in " ;,'\"\\\t\r\n"):
        return None
    return f"{parts.scheme}://{parts.netloc}{parts.path or '/'}"


def add_form_target_source(app: Flask, source: Callable[[], Iterable[str]]) -> None:
    """Register a function naming validated URIs that the forms of any HTML page may lead to."""
    app.extensions.setdefault(_FORM_TARGET_SOURCES, []).append(source)


def _csp_source(uri: str) -> str | None:
    """The origin of a redirect URI as a CSP source (browsers match only the origin once a
    submission has been redirected); None for anything that is not a clean URL."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    if not parts.scheme or any(c in uri for c in " ;,'\"\\\t\r\n"):
        return None
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else f"{parts.scheme}:"


def _csp_for(response) -> str:
    targets = list(g.get("csp_form_targets", ()))
    if response.mimetype == "text/html":
        for source in current_app.extensions.get(_FORM_TARGET_SOURCES, ()):
            targets.extend(source())
    sources = sorted({s for s in map(_csp_source, targets) if s})
    frames = sorted({s for s in map(_frame_source, g.get("csp_frame_sources", ())) if s})
    if not sources and not frames:
        return CSP
    return _CSP.format(targets="".join(" " + s for s in sources),
                       frames="; frame-src 'self'" + "".join(" " + s for s in frames) if frames else "")


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
        path = request.path
        no_store = path.startswith(_NO_STORE_PREFIXES) or path == "/"
        wanted = _WANTED[bool(secure or request.is_secure)]
        # the values are constants checked once here (_checked), not on every response
        headers._list.extend([pair for pair in wanted if pair[0].lower() not in present])
        if response.mimetype == "text/html" and "content-security-policy" not in present:
            headers["Content-Security-Policy"] = _csp_for(response)
        if no_store:
            headers["Cache-Control"] = "no-store"
            headers["Pragma"] = "no-cache"
        return response


def _checked(pairs: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    from werkzeug.datastructures import Headers

    return tuple(Headers(pairs).items())  # Werkzeug's own validation of names and values, once


# what security_headers adds, without and with TLS: prepared once
_WANTED = {False: _checked(_DEFAULT_HEADERS), True: _checked(_DEFAULT_HEADERS_TLS)}


def _format_datetime(value) -> str:
    """Beijing time for people on screen (stored in UTC)."""
    from datetime import datetime, timedelta, timezone

    if value is None:
        return ""
    if isinstance(value, (int, float)):
        value = datetime.fromtimestamp(value, timezone.utc)
    return value.astimezone(timezone(timedelta(hours=8))).strftime("%Y-%m-%d %H:%M")
