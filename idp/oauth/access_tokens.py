"""JWT access tokens (RFC 9068): issued at the token endpoint, verified without a database read.

A verified token still has to be unrevoked: revocation is recorded in PostgreSQL and cached in a
Redis deny-list (``services.accounts.revocation``), so a check is one Redis MGET.  Verification keys come from
the in-memory key store (parsed once), never from disk per request.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6750 import BearerTokenValidator, InvalidTokenError
from flask import current_app, g
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jws import extract_compact
from sqlalchemy import select

from ..extensions import db
from ..models import Client, User
from .keys import key_store
from ..services.accounts.revocation import is_access_token_revoked

AT_TYP = "at+jwt"


def issuer() -> str:
    return current_app.config["ISSUER"]


def grant_context() -> dict[str, Any]:
    """What the grant being processed knows about the authentication behind it (set by the grants:
    grant family, login session, auth_time, amr, acr) — carried into tokens and their rows."""
    return g.setdefault("oauth_grant_context", {})


def access_token_lifetime(client: Client) -> int:
    return client.access_token_lifetime or current_app.config["ACCESS_TOKEN_LIFETIME"]


def issue_access_token(client: Client, grant_type: str, user: User | None, scope: str) -> str:
    ctx = grant_context()
    now = int(time.time())
    jti = secrets.token_urlsafe(18)
    ctx["jti"] = jti
    claims: dict[str, Any] = {
        "iss": issuer(),
        "sub": user.sub if user else client.client_id,
        "aud": issuer(),  # the provider's own resources (userinfo); RFC 8707 resources not used
        "client_id": client.client_id,
        "iat": now,
        "exp": now + access_token_lifetime(client),
        "jti": jti,
        "scope": scope or "",
    }
    if user is not None:
        for name in ("auth_time", "acr", "amr", "sid"):
            if ctx.get(name):
                claims[name] = ctx[name]
    key = key_store().current()
    return jwt.encode({"alg": key.alg, "kid": key.kid, "typ": AT_TYP}, claims, key.key)


@dataclass
class AccessToken:
    """A verified access token as Authlib's resource protector and userinfo endpoint see it."""

    claims: dict[str, Any]

    @property
    def scope(self) -> str:
        return self.claims.get("scope", "")

    def get_scope(self) -> str:
        return self.scope

    def is_expired(self) -> bool:
        return self.claims["exp"] <= time.time()

    def is_revoked(self) -> bool:
        return is_access_token_revoked(self.claims["jti"])

    def get_client(self) -> Client | None:
        from .client_cache import cached_client

        return cached_client(self.claims["client_id"])

    def get_user(self) -> User | None:
        if self.claims["sub"] == self.claims["client_id"]:
            return None
        if not hasattr(self, "_user"):
            self._user = db.session.scalar(select(User).where(User.sub == self.claims["sub"]))
        return self._user


def verify_access_token(token_string: str) -> AccessToken | None:
    """Signature (by kid), type, issuer and expiry; None for anything that is not our token."""
    try:
        header = extract_compact(token_string.encode()).protected
        key = key_store().find(header.get("kid"))
        if key is None or header.get("typ") != AT_TYP:
            return None
        token = jwt.decode(token_string, key.key, algorithms=[key.alg])
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": issuer()},
            exp={"essential": True},
            jti={"essential": True},
            client_id={"essential": True},
        ).validate(token.claims)
    except (JoseError, ValueError):
        return None
    return AccessToken(token.claims)


class JwtBearerTokenValidator(BearerTokenValidator):
    def authenticate_token(self, token_string: str) -> AccessToken | None:
        return verify_access_token(token_string)

    def validate_token(self, token, scopes, request):
        super().validate_token(token, scopes, request)
        if self.scope_insufficient(token.scope.split(), scopes):
            from authlib.oauth2.rfc6750 import InsufficientScopeError

            raise InsufficientScopeError()
        user = token.get_user()
        if token.claims["sub"] != token.claims["client_id"] and (user is None or not user.is_active):
            raise InvalidTokenError(realm=self.realm)
