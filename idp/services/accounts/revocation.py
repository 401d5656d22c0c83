"""Revoking what was issued: one token, one grant family, one user's tokens, or a login session.

PostgreSQL is the record: a revoked token's row has ``revoked_at`` set, in the caller's
transaction, whatever the path (``/oauth/revoke``, logout, password change or reset, an
administrator's lock, disable or force logout, a withdrawn consent, a replayed code or a reused
refresh token).  Refresh tokens and codes are checked there.

Access tokens are JWTs accepted without a database read, so Redis keeps a deny-list of revoked
``jti`` values (``revoked-jti:<jti>``, expiring with the token) as a *cache* of that record.  A
marker key says the deny-list is complete; when Redis has lost its data (restart without
persistence, failover to an empty replica, FLUSHDB) the marker is gone with it, and the first
check that notices reloads every unexpired revocation from PostgreSQL before it answers.  The
marker is read in the same round trip as the ``jti`` (one MGET), so the normal path stays one
Redis command and no SQL.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timezone

import redis as redis_lib
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from ...extensions import db, redis_store
from ...models import AuthorizationCode, Token

log = logging.getLogger(__name__)

_REVOKED = "revoked-jti:"
_PENDING = "idp_revoked_jtis_to_rewrite"
#: present while the deny-list holds every unexpired revocation recorded in PostgreSQL
_LOADED = "revocations:loaded"


def is_access_token_revoked(jti: str) -> bool:
    return check_access_token(jti)[0]


def check_access_token(jti: str, *also: str) -> tuple[bool, list]:
    """Whether the token is revoked, and the values of the keys ``also`` names, fetched in the
    same MGET (what the caller needs next: userinfo's cached user)."""
    revoked, loaded, *values = redis_store.mget(_REVOKED + jti, _LOADED, *also)
    if revoked is not None:
        return True, values
    if loaded is not None:
        return False, values
    return jti in reload_deny_list(), values


def reload_deny_list() -> set[str]:
    """Copy every revoked, unexpired access token from PostgreSQL into the Redis deny-list, then
    set the marker — in one MULTI, so no reader sees the marker without the entries.  Several
    processes noticing the loss at once each reload; the writes are idempotent."""
    now = datetime.now(timezone.utc)
    rows = db.session.execute(
        select(Token.jti, Token.access_expires_at).where(
            Token.revoked_at.is_not(None), Token.access_expires_at > now
        )
    ).all()
    pipe = redis_store.pipeline(transaction=True)
    for jti, expires_at in rows:
        pipe.set(_REVOKED + jti, 1, ex=max(1, math.ceil((expires_at - now).total_seconds())))
    pipe.set(_LOADED, 1)
    pipe.execute()
    return {jti for jti, _ in rows}


def _mark_revoked(tokens: list[Token]) -> None:
    # the rows (committed by the caller) and the cache.  Redis is written before the commit: if
    # Redis fails the use case fails with nothing revoked, rather than revoked in PostgreSQL but
    # accepted from a complete-looking deny-list.  It is written again once the commit is done
    # (_rewrite_after_commit): a reload that ran between the two, after Redis lost its data,
    # could not see the uncommitted rows.
    now = datetime.now(timezone.utc)
    entries = []
    for token in tokens:
        if token.revoked_at is None:
            token.revoked_at = now
        expires = token.access_expires_at
        if expires > now:
            entries.append((token.jti, expires))
    if entries:
        _write(entries)
        db.session.info.setdefault(_PENDING, []).extend(entries)


def _write(entries: list[tuple[str, datetime]]) -> None:
    now = datetime.now(timezone.utc)
    pipe = redis_store.pipeline()
    for jti, expires in entries:
        ttl = math.ceil((expires - now).total_seconds())
        if ttl > 0:
            pipe.set(_REVOKED + jti, 1, ex=ttl)
    pipe.execute()


@event.listens_for(Session, "after_commit")
def _rewrite_after_commit(session: Session) -> None:
    entries = session.info.pop(_PENDING, None)
    if entries:
        try:
            _write(entries)
        except redis_lib.RedisError:
            # the first write stands, and a Redis that lost it has lost the marker too
            log.warning("revoked tokens not re-written to the deny-list after commit", exc_info=True)


@event.listens_for(Session, "after_soft_rollback")
def _forget_pending(session: Session, _previous_transaction) -> None:
    session.info.pop(_PENDING, None)


def revoke_access_token(token: Token) -> int:
    """One access token (RFC 7009 for an access token); its refresh token is left alone."""
    _mark_revoked([token])
    return 1


def revoke_access_token_by_jti(jti: str, *, client_id: str, scope: str, issued_at: datetime,
                               expires_at: datetime) -> int:
    """One verified access token, by its ``jti``.  A user's token has a row already; a
    client_credentials token was issued without one, so its revocation writes the row now (the
    same record of a revocation: jti, expiry, ``revoked_at``), and the deny-list entry with it.
    Revoking it again changes nothing."""
    row = db.session.scalar(select(Token).where(Token.jti == jti))
    if row is None:
        row = Token(jti=jti, client_id=client_id, user_id=None, scope=scope, grant_id=jti, amr=[],
                    issued_at=issued_at, access_expires_at=expires_at)
        db.session.add(row)
    elif row.revoked_at is not None:
        return 0
    _mark_revoked([row])
    return 1


def revoke_tokens(where) -> int:
    tokens = list(db.session.scalars(select(Token).where(where, Token.revoked_at.is_(None))))
    _mark_revoked(tokens)
    return len(tokens)


def revoke_grant(grant_id: str) -> int:
    """Revoke every token of one authorization (a replayed code or a reused refresh token)."""
    db.session.execute(
        update(AuthorizationCode)
        .where(AuthorizationCode.grant_id == grant_id, AuthorizationCode.used_at.is_(None))
        .values(used_at=datetime.now(timezone.utc))
    )
    return revoke_tokens(Token.grant_id == grant_id)


def revoke_user_tokens(user_id: int, client_id: str | None = None) -> int:
    where = Token.user_id == user_id
    if client_id:
        where = where & (Token.client_id == client_id)
    return revoke_tokens(where)


def revoke_session_tokens(sid: str) -> int:
    """Tokens bound to one login session (RP-initiated or back-channel logout).  Refresh tokens
    granted with offline_access outlive the session by design and are kept."""
    tokens = list(
        db.session.scalars(select(Token).where(Token.sid == sid, Token.revoked_at.is_(None)))
    )
    online = [t for t in tokens if "offline_access" not in t.scope.split()]
    _mark_revoked(online)
    return len(online)
