"""Local login sessions of the exam service.

The browser's (signed) session cookie holds only a random token; the session itself is a row in
the service's database, so the platform can end it from the back channel (a logout token naming
its ``sid`` deletes the row) and the next request of that browser is signed out.  Idle and
absolute timeouts are checked on every request.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta, timezone

from flask import current_app, g, session
from sqlalchemy import delete, select

from . import candidates
from .extensions import db
from .models import Candidate, CandidateLogin
from .platform import PlatformLogin
from .sealing import SealBroken, seal

_TOKEN = "login"
PLATFORM_ENDED = "platform_session_ended"  # the next page tells the candidate why they are signed out
_TOUCH_EVERY = timedelta(seconds=60)  # idle timestamp written at most once a minute


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_local_login(login: PlatformLogin) -> Candidate:
    """Record the candidate and open a fresh local session (new token: no fixation)."""
    now = datetime.now(timezone.utc)
    candidate = candidates.record_login(login.claims)
    token = secrets.token_urlsafe(32)
    auth_time = login.claims.get("auth_time")
    db.session.add(CandidateLogin(
        token_hash=_digest(token),
        candidate=candidate,
        sub=login.sub,
        platform_sid=login.sid,
        id_token_sealed=seal().seal(login.id_token),
        scope=login.scope[:512],
        auth_time=auth_time if isinstance(auth_time, int) else None,
        acr=(login.claims.get("acr") or None),
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(seconds=current_app.config["SESSION_ABSOLUTE_LIFETIME"]),
    ))
    db.session.commit()
    session.clear()
    session[_TOKEN] = token
    session.permanent = True
    g.local_login = None
    return candidate


def current_local_login() -> CandidateLogin | None:
    """This browser's live local session, or None (expired, idle, or ended by the platform)."""
    if "local_login" in g and g.local_login is not None:
        return g.local_login
    token = session.get(_TOKEN)
    if not token:
        return None
    row = db.session.scalar(select(CandidateLogin).where(CandidateLogin.token_hash == _digest(token)))
    now = datetime.now(timezone.utc)
    idle = timedelta(seconds=current_app.config["SESSION_IDLE_TIMEOUT"])
    if row is None or row.expires_at <= now or row.last_seen_at + idle <= now:
        if row is not None:
            db.session.delete(row)
            db.session.commit()
        else:
            # the row went while the cookie still names it: only the platform's back-channel
            # logout deletes it that way — the next page says so instead of silently signing out
            session[PLATFORM_ENDED] = True
        session.pop(_TOKEN, None)
        return None
    if now - row.last_seen_at >= _TOUCH_EVERY:
        row.last_seen_at = now
        db.session.commit()
    g.local_login = row
    return row


def platform_session_ended() -> bool:
    """Once: whether the platform ended this browser's session since its last page."""
    return bool(session.pop(PLATFORM_ENDED, False))


def end_local_login() -> str | None:
    """End this browser's local session; returns its ID token (for RP-initiated logout)."""
    row = current_local_login()
    session.clear()
    g.local_login = None
    if row is None:
        return None
    try:
        id_token = seal().open(row.id_token_sealed)
    except SealBroken:
        id_token = None  # sealed under a replaced data key: log out locally only
    db.session.delete(row)
    db.session.commit()
    return id_token


def end_platform_sessions(*, sub: str | None, sid: str | None) -> int:
    """The platform ended a login: end the local sessions it gave us (by sid; by sub when the
    platform names only the user, which means all of that user's sessions)."""
    query = delete(CandidateLogin)
    if sid:
        query = query.where(CandidateLogin.platform_sid == sid)
        if sub:
            query = query.where(CandidateLogin.sub == sub)
    elif sub:
        query = query.where(CandidateLogin.sub == sub)
    else:
        return 0
    ended = db.session.execute(query).rowcount or 0
    db.session.commit()
    return ended
