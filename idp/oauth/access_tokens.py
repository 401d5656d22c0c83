"""JWT access tokens (RFC 9068): issued at the token endpoint, verified without a database read.

A verified token still has to be unrevoked: revocation is recorded in PostgreSQL and cached in a
Redis deny-list (``services.accounts.revocation``), so a check is one Redis MGET.  Verification keys come from
the in-memory key store (parsed once), never from disk per request.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6750 import BearerTokenValidator, InvalidTokenError
from flask import current_app
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jws import extract_compact
from sqlalchemy import select

from ..extensions import db
from ..models import Client, Token, User
from .keys import key_store
from ..services.accounts import claims_cache
from ..services.accounts.revocation import check_access_token
from .subjects import is_pairwise, subject_for

AT_TYP = "at+jwt"


def issuer() -> str:
    return current_app.config["ISSUER"]


def authentication_of(request) -> dict[str, Any]:
    """What the credential a grant redeemed says about the login behind it: the authorization
    code (``request.authorization_code``) or the refresh token (``request.refresh_token``), both
    set by Authlib's grants.  Empty for client_credentials: no login, no user."""
    code = request.authorization_code
    if code is not None:
        return dict(grant_id=code.grant_id, sid=code.sid, auth_time=code.auth_time, amr=code.amr, acr=code.acr)
    refresh = request.refresh_token
    if refresh is not None:
        row = refresh.row
        return dict(grant_id=row.grant_id, sid=row.sid, auth_time=row.auth_time, amr=row.amr, acr=row.acr)
    return {}


def access_token_lifetime(client: Client) -> int:
    return client.access_token_lifetime or current_app.config["ACCESS_TOKEN_LIFETIME"]


def issue_access_token(client: Client, user: User | None, scope: str, auth: dict[str, Any],
                       confirmation: dict[str, Any] | None = None) -> str:
    """``confirmation``: the key the token is bound to (``cnf``, RFC 7800), e.g. DPoP's
    ``{"jkt": …}``; None for a Bearer token."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer(),
        "sub": subject_for(client, user) if user else client.client_id,
        "aud": issuer(),  # the provider's own resources (userinfo); RFC 8707 resources not used
        "client_id": client.client_id,
        "iat": now,
        "exp": now + access_token_lifetime(client),
        "jti": secrets.token_urlsafe(18),
        "scope": scope or "",
    }
    if user is not None:
        for name in ("auth_time", "acr", "amr", "sid"):
            if auth.get(name):
                claims[name] = auth[name]
    if confirmation:
        claims["cnf"] = confirmation
    key = key_store().current()
    return jwt.encode({"alg": key.alg, "kid": key.kid, "typ": AT_TYP}, claims, key.key)


def issue_tokens(request, user: User | None, scope: str | None, include_refresh_token: bool,
                 confirmation: dict[str, Any] | None = None) -> dict[str, Any]:
    """The token response of a grant: a JWT access token; a refresh token only with
    ``offline_access`` (and a user).  With a ``confirmation`` (a DPoP key) the access token is
    bound to it and its type is ``DPoP`` (RFC 9449 §5)."""
    client: Client = request.client
    token: dict[str, Any] = {
        "token_type": "DPoP" if confirmation else "Bearer",
        "access_token": issue_access_token(client, user, scope or "", authentication_of(request), confirmation),
        "expires_in": access_token_lifetime(client),
    }
    if include_refresh_token and user is not None and "offline_access" in (scope or "").split():
        token["refresh_token"] = secrets.token_urlsafe(32)
    if scope:
        token["scope"] = scope
    return token


def unverified_claims(token_string: str) -> dict[str, Any]:
    """The claims of a JWT this process has just signed (no signature check: nothing else
    could have produced it)."""
    return json.loads(extract_compact(token_string.encode()).payload)


@dataclass
class AccessToken:
    """A verified access token as Authlib's resource protector and userinfo endpoint see it."""

    claims: dict[str, Any]
    _redis: tuple[bool, list] | None = field(default=None, repr=False)

    @property
    def scope(self) -> str:
        return self.claims.get("scope", "")

    def get_scope(self) -> str:
        return self.scope

    def is_expired(self) -> bool:
        return self.claims["exp"] <= time.time()

    def _for_user(self) -> bool:
        return self.claims["sub"] != self.claims["client_id"]

    def _redis_state(self) -> tuple[bool, list]:
        # one MGET: the revocation (deny-list entry and its marker) and the user's cached claims
        if self._redis is None:
            also = claims_cache.keys_of(self.claims["sub"]) if self._for_user() else ()
            self._redis = check_access_token(self.claims["jti"], *also)
        return self._redis

    def is_revoked(self) -> bool:
        return self._redis_state()[0]

    def get_client(self) -> Client | None:
        from .client_cache import cached_client

        return cached_client(self.claims["client_id"])

    def get_user(self) -> claims_cache.CachedUser | None:
        """The user as userinfo sees it: from the Redis snapshot while it is current, otherwise
        read from the database (and the snapshot stored)."""
        if not self._for_user():
            return None
        if not hasattr(self, "_user"):
            if is_pairwise(self.get_client()):
                # a pairwise sub names nobody by itself: the token's own row says whose it is
                self._user = db.session.scalar(
                    select(User).join(Token, Token.user_id == User.id).where(Token.jti == self.claims["jti"]))
                return self._user
            sub = self.claims["sub"]
            version, snapshot = self._redis_state()[1]
            user = claims_cache.cached_user(sub, version, snapshot)
            if user is None:
                row = db.session.scalar(select(User).where(User.sub == sub))
                user = claims_cache.remember(row, version) if row is not None else None
            self._user = user
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
