"""Extension objects, created unattached and bound in the application factory."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import quote, unquote

import fakeredis
import redis as redis_lib
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel
from flask import Flask, current_app, g, session
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_session.redis import RedisSessionInterface
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])


def commit_keeping_loaded() -> None:
    """Commit without expiring what this request has loaded.

    For a request that goes on using rows it has just written (the user at login, the code and
    user behind an ID token): expiring them would reload each with another SELECT, a fifth of
    the CPU of such a request (issue #5).  What they hold is what this transaction committed."""
    session = db.session()
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = True


SENTINEL_SCHEME = "redis+sentinel"


@dataclass(frozen=True)
class SentinelAddress:
    """``redis+sentinel://[:password@]host:port[,host:port…]/service[/db]``: where the sentinels
    listen and the name of the monitored primary (``SENTINEL MONITOR <service> …``)."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> SentinelAddress:
        rest = url.removeprefix(SENTINEL_SCHEME + "://")
        netloc, _, path = rest.partition("/")
        password = None
        if "@" in netloc:
            auth, _, netloc = netloc.rpartition("@")
            password = unquote(auth.partition(":")[2] or auth) or None
        sentinels = []
        for location in filter(None, netloc.split(",")):
            host, _, port = location.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"IDP_REDIS_URL: {location!r} is not host:port")
            sentinels.append((host.strip("[]"), int(port)))
        parts = [p for p in path.split("/") if p]
        if not sentinels or not parts or len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
            raise ValueError(
                "IDP_REDIS_URL: a Sentinel address reads "
                "redis+sentinel://host:26379,host2:26379/<service>[/<db>]"
            )
        return cls(tuple(sentinels), parts[0], int(parts[1]) if len(parts) == 2 else 0, password)

    def limiter_uri(self) -> str:
        """The form the ``limits`` package reads (service only; the db goes in its options)."""
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        hosts = ",".join(f"{host}:{port}" for host, port in self.sentinels)
        return f"{SENTINEL_SCHEME}://{auth}{hosts}/{self.service}"


def redis_retry() -> Retry:
    """One immediate retry on a broken connection (a restarted server, a fail-over to a new
    primary), none on a timeout: a frozen server must cost one socket timeout, not several."""
    return Retry(NoBackoff(), 1, supported_errors=(redis_lib.ConnectionError,))


def connect_redis(url: str, *, socket_timeout: float, connect_timeout: float) -> redis_lib.Redis:
    """A client for ``redis://…`` (or ``rediss://``) or a Sentinel-managed primary."""
    options = dict(
        socket_timeout=socket_timeout, socket_connect_timeout=connect_timeout,
        retry=redis_retry(), health_check_interval=30,
    )
    if url.startswith(SENTINEL_SCHEME + "://"):
        address = SentinelAddress.parse(url)
        sentinel = Sentinel(
            list(address.sentinels),
            sentinel_kwargs=dict(socket_timeout=socket_timeout, socket_connect_timeout=connect_timeout),
            **options,
        )
        # every new connection asks the sentinels where the primary is now
        return sentinel.master_for(address.service, db=address.db, password=address.password)
    return redis_lib.Redis.from_url(url, **options)


class RedisStore:
    """The Redis connection of the app: a real server, or an in-process fakeredis stand-in.

    Sessions, captchas, SMS codes, lockout counters and replay caches all live here so that
    they hold across processes; the stand-in is for one process only and says so.
    """

    def init_app(self, app: Flask) -> None:
        url = app.config.get("REDIS_URL")
        if url:
            client = connect_redis(
                url,
                socket_timeout=float(app.config["REDIS_SOCKET_TIMEOUT"]),
                connect_timeout=float(app.config["REDIS_CONNECT_TIMEOUT"]),
            )
        else:
            log.warning(
                "IDP_REDIS_URL is not set: using an in-process fakeredis server. "
                "Sessions, codes and limits then serve this one process only."
            )
            client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
        app.extensions["idp_redis"] = client
        if url:
            self._limiter_follows(app, url)

    @staticmethod
    def _limiter_follows(app: Flask, url: str) -> None:
        """Flask-Limiter keeps a client of its own: same server (or sentinels), same timeouts."""
        options: dict = dict(
            socket_timeout=float(app.config["REDIS_SOCKET_TIMEOUT"]),
            socket_connect_timeout=float(app.config["REDIS_CONNECT_TIMEOUT"]),
            retry=redis_retry(),
        )
        if url.startswith(SENTINEL_SCHEME + "://"):
            address = SentinelAddress.parse(url)
            url = address.limiter_uri()
            options["db"] = address.db
            options["sentinel_kwargs"] = dict(
                socket_timeout=options["socket_timeout"], socket_connect_timeout=options["socket_connect_timeout"]
            )
        app.config["RATELIMIT_STORAGE_URI"] = url
        app.config["RATELIMIT_STORAGE_OPTIONS"] = {**options, **app.config.get("RATELIMIT_STORAGE_OPTIONS", {})}

    @property
    def client(self) -> redis_lib.Redis:
        return current_app.extensions["idp_redis"]

    def __getattr__(self, name: str):
        return getattr(self.client, name)


redis_store = RedisStore()


# browsers fetch /favicon.ico on their own, late and in parallel with the page: it has nothing
# to do with the session
SESSIONLESS_PATHS = ("/healthz", "/readyz", "/metrics", "/static/", "/favicon.ico")
_PROTOCOL_PATHS = "idp_protocol_paths"


_STATELESS_PREFIXES = "idp_stateless_prefixes"


def serve_without_browser_state(app: Flask, *paths: str) -> None:
    """Declare paths whose answer depends on nothing the browser's session holds: protocol
    endpoints (token, userinfo, discovery, JWKS...), whose callers are clients with their own
    credentials, and resources named by an unguessable id of their own (a captcha's image).
    They load and save no server-side session (no Redis round trip, no cookie) and skip
    Flask-Limiter's per-request hook; a limit declared on the view itself still counts (the
    decorator checks it).  A path ending in "/" declares everything under it.  Decided once per
    path, at start-up."""
    app.extensions.setdefault(_PROTOCOL_PATHS, set()).update(p for p in paths if not p.endswith("/"))
    prefixes = tuple(p for p in paths if p.endswith("/"))
    app.extensions[_STATELESS_PREFIXES] = app.extensions.get(_STATELESS_PREFIXES, ()) + prefixes


def is_stateless_path(app: Flask, path: str) -> bool:
    return (path in app.extensions.get(_PROTOCOL_PATHS, ()) or path.startswith(SESSIONLESS_PATHS)
            or path.startswith(app.extensions.get(_STATELESS_PREFIXES, ())))


class ChangedOnlyRedisSessions(RedisSessionInterface):
    """Flask-Session's Redis sessions, written back only when the request changed them.

    Flask-Session rewrites the whole session after every request to slide its expiry.  Requests
    of one browser run in parallel (a page, its images, a late 404), so a request that loaded
    the session before another one changed it would write the old contents back over the new —
    or, after a login gave the session a new id, bring the old id back to life and hand the
    browser its cookie.  Here an unchanged session only has its expiry moved (``EXPIRE``, which
    leaves the contents alone) and its cookie renewed; a session ended meanwhile (logout, a new
    id) is left ended."""

    def save_session(self, app: Flask, session, response) -> None:
        if not session or session.modified:
            super().save_session(app, session, response)
            return
        if session.accessed:
            response.vary.add("Cookie")
        if not self.should_set_cookie(app, session):
            return
        lifetime = int(app.permanent_session_lifetime.total_seconds())
        if not self.client.expire(self._get_store_id(session.sid), lifetime):
            return  # gone since this request loaded it: nothing to slide, no cookie to renew
        response.set_cookie(
            key=self.get_cookie_name(app),
            value=self._sign(app, session.sid) if self.use_signer else session.sid,
            expires=self.get_expiration_time(app, session),
            httponly=self.get_cookie_httponly(app),
            domain=self.get_cookie_domain(app),
            path=self.get_cookie_path(app),
            secure=self.get_cookie_secure(app),
            samesite=self.get_cookie_samesite(app),
        )
        response.vary.add("Cookie")


def init_sessions(app: Flask) -> None:
    """Server-side sessions in the app's Redis under ``session:<id>`` (the id, 32 random bytes,
    is the whole cookie: nothing to sign), then the guard that turns a store outage into the
    usual 503."""
    app.session_interface = ChangedOnlyRedisSessions(
        app, client=app.extensions["idp_redis"], key_prefix="session:", use_signer=False, permanent=True,
    )
    guard_session_store(app)


class SessionStoreGuard:
    """Flask-Session's Redis interface, made to fail like a view when Redis is down.

    Flask opens the session before any view runs and saves it after the response is built, both
    outside the error handlers' reach: a Redis error there becomes a bare 500 (and the error page
    itself needs the session).  Here a failed load gives an empty session that remembers the
    error, re-raised by the first ``before_request`` so the usual 503 handler answers; a request
    that ended in that answer does not try to save the session.

    Probes and protocol endpoints (``serve_without_browser_state``) get an empty session that is
    never saved: no Redis read, no write, no cookie."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def open_session(self, app: Flask, request):
        from .errors import is_outage

        if is_stateless_path(app, request.path):  # probes answer whatever Redis does
            session = self.inner.session_class(sid="", permanent=True)
            session.stateless = True
            return session
        try:
            return self.inner.open_session(app, request)
        except Exception as exc:
            if not is_outage(exc):
                raise
            session = self.inner.session_class(sid="", permanent=True)
            session.store_error = exc
            return session

    def save_session(self, app: Flask, session, response) -> None:
        if getattr(session, "stateless", False) or getattr(session, "store_error", None) is not None \
                or g.get("store_unavailable"):
            return
        self.inner.save_session(app, session, response)


def skip_limiter_on_stateless_paths(app: Flask) -> None:
    """Flask-Limiter's hooks run on every request of the app (resolving limits, exemptions and
    headers costs about a quarter of a cached-JSON request's CPU): on the paths declared
    stateless, where no limit is declared, they are not called.  Call after ``limiter.init_app``."""
    from flask import request

    before = app.before_request_funcs.setdefault(None, [])
    check = limiter._check_request_limit
    if check in before:
        def check_unless_stateless() -> None:
            if not is_stateless_path(app, request.path):
                check()

        before[before.index(check)] = check_unless_stateless
    after = app.after_request_funcs.setdefault(None, [])
    for i, func in enumerate(after):
        if getattr(func, "args", None) == (limiter,):  # partial(Limiter.__inject_headers, limiter)
            def inject_unless_stateless(response, _inject=func):
                return response if is_stateless_path(app, request.path) else _inject(response)

            after[i] = inject_unless_stateless


def guard_session_store(app: Flask) -> None:
    app.session_interface = SessionStoreGuard(app.session_interface)

    @app.before_request
    def _session_store_answered() -> None:
        error = getattr(session, "store_error", None)
        if error is not None:
            raise error

