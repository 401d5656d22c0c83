"""Login sessions: server-side (Flask-Session in Redis), rotated at login, idle and absolute
timeouts, listable and revocable per user.

The Flask session holds only a pointer (``sid``) to a login record ``login:<sid>`` in Redis; a
revoked login is a deleted record, so "log out everywhere" works across processes at once.  The
idle timeout is the Redis expiry of the Flask session (refreshed on each request); the absolute
lifetime is checked against the login's start.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field

from blinker import Namespace
from flask import current_app, g, request, session

from ...extensions import db, redis_store
from ...models import User
from .resume import CARRIED_THROUGH_LOGIN

signals = Namespace()
#: sent with (app, user_id=…, sid=…, reason=…) when a login session ends for any reason
login_ended = signals.signal("login-ended")

#: Authentication context classes (``acr``): a password login to an account whose holder was
#: verified through the bank four-element check is worth more than one to an unverified account.
ACR_PASSWORD = "urn:hrss:acr:password"
ACR_REALNAME = "urn:hrss:acr:realname"
#: a password and a second factor (TOTP, a passkey or a security key, or a recovery code)
ACR_MFA = "urn:hrss:acr:mfa"
ACR_VALUES = (ACR_PASSWORD, ACR_REALNAME, ACR_MFA)

_LOGIN = "login:"
_USER_LOGINS = "user-logins:"


@dataclass
class LoginSession:
    sid: str
    user_id: int
    auth_time: int
    amr: list[str] = field(default_factory=list)
    acr: str | None = None

    @property
    def user(self) -> User | None:
        if "_login_user" not in g:
            g._login_user = db.session.get(User, self.user_id)
        return g._login_user


def start_login(user: User, amr: list[str], acr: str | None = None) -> LoginSession:
    """Begin a login: a fresh session id (no fixation), a login record, the user's index."""
    cfg = current_app.config
    acr = acr or (ACR_REALNAME if user.real_name_verified else ACR_PASSWORD)
    old_sid = session.get("sid")
    if old_sid:
        _delete(old_sid, session.get("uid"))
    carried = {k: session[k] for k in CARRIED_THROUGH_LOGIN if k in session}
    session["rotating"] = True  # regenerate() skips an empty session
    current_app.session_interface.regenerate(session)
    session.clear()
    now = int(time.time())
    sid = secrets.token_urlsafe(24)
    record = {
        "uid": user.id,
        "auth_time": now,
        "amr": amr,
        "acr": acr,
        "ip": request.remote_addr,
        "ua": (request.user_agent.string or "")[:200],
    }
    pipe = redis_store.pipeline()
    pipe.set(_LOGIN + sid, json.dumps(record), ex=cfg["SESSION_ABSOLUTE_LIFETIME"])
    pipe.sadd(_USER_LOGINS + str(user.id), sid)
    pipe.expire(_USER_LOGINS + str(user.id), cfg["SESSION_ABSOLUTE_LIFETIME"])
    pipe.execute()
    session.update(carried)
    session.update(sid=sid, uid=user.id, auth_time=now, amr=amr, acr=acr)
    session.permanent = True
    login = LoginSession(sid=sid, user_id=user.id, auth_time=now, amr=amr, acr=acr)
    g._login = login
    g._login_user = user
    return login


def current_login() -> LoginSession | None:
    """The login of this request, or None.  Costs one Redis EXISTS per request (cached in g)."""
    if "_login" in g:
        return g._login
    login = None
    sid = session.get("sid")
    if sid:
        age = time.time() - session.get("auth_time", 0)
        if age > current_app.config["SESSION_ABSOLUTE_LIFETIME"] or not redis_store.exists(_LOGIN + sid):
            session.clear()
        else:
            login = LoginSession(
                sid=sid,
                user_id=session["uid"],
                auth_time=session["auth_time"],
                amr=list(session.get("amr") or []),
                acr=session.get("acr"),
            )
            user = login.user
            if user is None or not user.is_active:
                end_login(reason="account_inactive")
                login = None
    g._login = login
    return login


def end_login(reason: str = "logout") -> None:
    sid, uid = session.get("sid"), session.get("uid")
    session.clear()
    g._login = None
    if sid:
        _delete(sid, uid)
        login_ended.send(current_app._get_current_object(), user_id=uid, sid=sid, reason=reason)


def add_authentication(methods: list[str], acr: str) -> LoginSession | None:
    """A further factor passed during this login (step-up): the login's amr grows by ``methods``
    and its acr becomes ``acr``, in the session and in the login record alike."""
    login = current_login()
    if login is None:
        return None
    amr = login.amr + [m for m in methods if m not in login.amr]
    raw = redis_store.get(_LOGIN + login.sid)
    if raw is not None:
        record = json.loads(raw)
        record.update(amr=amr, acr=acr)
        redis_store.set(_LOGIN + login.sid, json.dumps(record), keepttl=True)
    session.update(amr=amr, acr=acr)
    login.amr, login.acr = amr, acr
    return login


def user_logins(user_id: int) -> list[dict]:
    sids = [s.decode() for s in redis_store.smembers(_USER_LOGINS + str(user_id))]
    if not sids:
        return []
    records = redis_store.mget([_LOGIN + s for s in sids])
    out = []
    for sid, raw in zip(sids, records):
        if raw is None:
            redis_store.srem(_USER_LOGINS + str(user_id), sid)
            continue
        out.append({"sid": sid, **json.loads(raw)})
    return sorted(out, key=lambda r: r["auth_time"], reverse=True)


def revoke_login(user_id: int, sid: str, reason: str = "revoked") -> bool:
    if not redis_store.sismember(_USER_LOGINS + str(user_id), sid):
        return False
    _delete(sid, user_id)
    login_ended.send(current_app._get_current_object(), user_id=user_id, sid=sid, reason=reason)
    return True


def revoke_all_logins(user_id: int, reason: str = "revoked") -> int:
    sids = [s.decode() for s in redis_store.smembers(_USER_LOGINS + str(user_id))]
    for sid in sids:
        _delete(sid, user_id)
        login_ended.send(current_app._get_current_object(), user_id=user_id, sid=sid, reason=reason)
    return len(sids)


def _delete(sid: str, user_id: int | None) -> None:
    pipe = redis_store.pipeline()
    pipe.delete(_LOGIN + sid)
    if user_id is not None:
        pipe.srem(_USER_LOGINS + str(user_id), sid)
    pipe.execute()
