"""Discovery and JWKS answered before Flask, from the bytes Flask answered the first time.

Both documents depend on nothing in the request but the scheme (security headers differ with
TLS): the first GET of each goes through the whole app (views, after-request headers, metrics)
and its status, headers and body are kept; later GETs get the same bytes without a request
context, routing, hooks or a response object (~80 % of the request's CPU).  The JWKS copy is
dropped when the key store hands out a new document (a rotation, seen within
SIGNING_KEYS_RECHECK_SECONDS as before); discovery's when the issuer setting changes.  Other
methods (HEAD, POST, OPTIONS) and any non-200 answer take the app's own path."""

from __future__ import annotations

import time
from typing import Any, Callable

from ..metrics import observe_request

DISCOVERY = "/.well-known/openid-configuration"
JWKS = "/.well-known/jwks.json"
_ENDPOINTS = {DISCOVERY: "oauth.discovery", JWKS: "oauth.jwks"}


class PreparedDocuments:
    def __init__(self, app, wsgi_app: Callable) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self._answers: dict[tuple[str, str, str], tuple[Any, str, list, bytes]] = {}

    def _version(self, path: str) -> Any:
        if path == JWKS:
            return self.app.extensions["idp_keys"].jwks()  # the same dict until the keys change
        return self.app.config["ISSUER"]

    def __call__(self, environ: dict, start_response: Callable):
        path = environ.get("PATH_INFO")
        if path not in _ENDPOINTS or environ.get("REQUEST_METHOD") != "GET":
            return self.wsgi_app(environ, start_response)
        start = time.perf_counter()
        # this wrapper sits outside ProxyFix, so the scheme a trusted proxy forwards is part of
        # the key too (the answer's HSTS header depends on it)
        key = (path, environ.get("wsgi.url_scheme", "http"), environ.get("HTTP_X_FORWARDED_PROTO", ""))
        version = self._version(path)
        kept = self._answers.get(key)
        if kept is not None and kept[0] is version:
            start_response(kept[1], kept[2])
            observe_request(_ENDPOINTS[path], "GET", 200, time.perf_counter() - start)
            return [kept[3]]
        return self._through_app(environ, start_response, key, version)

    def _through_app(self, environ: dict, start_response: Callable, key: tuple[str, str, str], version: Any):
        seen: list = []

        def remember(status, headers, exc_info=None):
            seen[:] = [status, list(headers), exc_info]
            return start_response(status, headers, exc_info)

        answer = self.wsgi_app(environ, remember)
        try:
            body = b"".join(answer)
        finally:
            if hasattr(answer, "close"):
                answer.close()
        status, headers, exc_info = seen
        if status.startswith("200 ") and exc_info is None:
            self._answers[key] = (version, status, headers, body)
        return [body]


def init_app(app) -> None:
    app.wsgi_app = PreparedDocuments(app, app.wsgi_app)
