"""Revoking what was issued: one grant family, one user's tokens, or a whole login session.

Access tokens are JWTs checked without a database read; a revoked ``jti`` is therefore also
written to Redis (``revoked-jti:<jti>``, expiring with the token) where the userinfo endpoint and
the bearer validator look.  Refresh tokens and codes are checked in the database.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select, update

from ...extensions import db, redis_store
from ...models import AuthorizationCode, Token

_REVOKED = "revoked-jti:"


def is_access_token_revoked(jti: str) -> bool:
    return bool(redis_store.exists(_REVOKED + jti))


def _mark_revoked(tokens: list[Token]) -> None:
    now = datetime.now(timezone.utc)
    pipe = redis_store.pipeline()
    for token in tokens:
        if token.revoked_at is None:
            token.revoked_at = now
        ttl = int((token.access_expires_at - now).total_seconds())
        if ttl > 0:
            pipe.set(_REVOKED + token.jti, 1, ex=ttl)
    pipe.execute()


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
