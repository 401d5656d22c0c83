"""JWT access tokens (RFC 9068) with Authlib's own generator and validator
(``authlib.oauth2.rfc9068``), verified without a database read.

A verified token still has to be unrevoked: revocation is recorded in PostgreSQL and cached in a
Redis deny-list (``services.accounts.revocation``), so a check is one Redis MGET (with the user's
cached claims when the token is a user's).  Keys come from the in-memory key store (parsed once,
key sets built once per key change), never from disk per request.

Extra claims: ``access_token_generator().claim_extensions`` is a list of functions of the
``TokenSubject`` returning claims to add (a proof-of-possession binding such as DPoP's
``cnf.jkt`` goes there); the registered claims below cannot be overridden by one.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from authlib.oauth2.rfc6749 import scope_to_list
from authlib.oauth2.rfc6750 import BearerTokenGenerator, BearerTokenValidator, InvalidTokenError
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator, JWTBearerTokenValidator
from flask import current_app
from joserfc.errors import JoseError
from joserfc.jws import extract_compact
from sqlalchemy import select

from ..extensions import db
from ..models import Client, Token, User
from ..services.accounts import claims_cache
from ..services.accounts.revocation import check_access_token
from .keys import access_token_alg, key_store
from .subjects import is_pairwise, subject_for

AT_TYP = "at+jwt"
#: what a claim extension may not replace
_REGISTERED = frozenset({"iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope", "auth_time", "acr", "amr",
                         "sid"})


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


def access_token_lifetime(client: Client, grant_type: str | None = None) -> int:
    return client.access_token_lifetime or current_app.config["ACCESS_TOKEN_LIFETIME"]


@dataclass(frozen=True)
class TokenSubject:
    """Whom a token is for, handed to Authlib's generator as its ``user``: the end-user with the
    login behind the grant, or — client_credentials — the client itself (``user`` None).  The
    grant's request rides along for claim extensions that read it (a DPoP proof)."""

    client: Client
    user: User | None
    auth: dict[str, Any] = field(default_factory=dict)
    request: Any = None

    def get_user_id(self) -> str:
        # RFC 9068 §2.2: the end-user's subject (pairwise per client), or the client's own id
        return subject_for(self.client, self.user) if self.user is not None else self.client.client_id

    def login(self, name: str) -> Any:
        return self.auth.get(name) if self.user is not None else None


def _refresh_token(**_context) -> str:
    return secrets.token_urlsafe(32)


class AccessTokenGenerator(JWTBearerTokenGenerator):
    """Authlib's RFC 9068 generator with this provider's issuer, keys, lifetimes and login claims.

    Claims: iss, sub, aud (the provider itself: userinfo; RFC 8707 resources are not used),
    client_id, iat, exp, jti, scope; for a user's token the login's auth_time, acr, amr and sid;
    header typ ``at+jwt`` and the signing key's kid."""

    def __init__(self) -> None:
        # not JWTBearerTokenGenerator.__init__: issuer and alg are read from the app (tests build
        # many apps; the algorithm is a setting), not fixed at construction
        BearerTokenGenerator.__init__(self, self.access_token_generator, _refresh_token, access_token_lifetime)
        self.claim_extensions: list[Callable[[TokenSubject], dict[str, Any]]] = []

    @property
    def issuer(self) -> str:
        return issuer()

    @property
    def alg(self) -> str:
        return access_token_alg()

    def get_jwks(self):
        return key_store().signing_set(self.alg)

    def get_audiences(self, client, user, scope) -> str:
        return issuer()

    def get_jti(self, client, grant_type, user, scope) -> str:
        return secrets.token_urlsafe(18)

    def get_auth_time(self, user: TokenSubject) -> int | None:
        return user.login("auth_time")

    def get_acr(self, user: TokenSubject) -> str | None:
        return user.login("acr")

    def get_amr(self, user: TokenSubject) -> list[str] | None:
        return user.login("amr") or None

    def get_extra_claims(self, client, grant_type, user: TokenSubject, scope) -> dict[str, Any]:
        claims: dict[str, Any] = {}
        if sid := user.login("sid"):
            claims["sid"] = sid
        for extension in self.claim_extensions:
            extra = extension(user)
            clash = _REGISTERED & extra.keys()
            if clash:
                raise ValueError(f"a claim extension may not set {sorted(clash)}")
            claims.update(extra)
        return claims


def init_app(app) -> AccessTokenGenerator:
    generator = AccessTokenGenerator()
    app.extensions["idp_access_tokens"] = generator
    return generator


def access_token_generator() -> AccessTokenGenerator:
    return current_app.extensions["idp_access_tokens"]


def token_response(request, user: User | None, scope: str | None, grant_type: str,
                   include_refresh_token: bool, expires_in: int | None = None) -> dict[str, Any]:
    """The token response of a grant, through Authlib's generator: a JWT access token; a refresh
    token only with ``offline_access`` (and a user)."""
    client: Client = request.client
    subject = TokenSubject(client, user, authentication_of(request), request)
    include_refresh_token = (include_refresh_token and user is not None
                             and "offline_access" in scope_to_list(scope or ""))
    return access_token_generator().generate(grant_type, client, user=subject, scope=scope, expires_in=expires_in,
                                             include_refresh_token=include_refresh_token)


def issue_access_token(client: Client, user: User | None, scope: str, auth: dict[str, Any]) -> str:
    """One access token outside a grant (tests, the bench)."""
    return access_token_generator().access_token_generator(
        client=client, grant_type="authorization_code" if user else "client_credentials",
        user=TokenSubject(client, user, auth), scope=scope)


def unverified_claims(token_string: str) -> dict[str, Any]:
    """The claims of a JWT this process has just signed (no signature check: nothing else
    could have produced it)."""
    return json.loads(extract_compact(token_string.encode()).payload)


@dataclass
class AccessToken:
    """A verified access token as Authlib's resource protector, userinfo, introspection and
    revocation endpoints see it: Authlib's RFC 9068 claims plus the revocation and user checks."""

    claims: Any  # authlib.oauth2.rfc9068.claims.JWTAccessTokenClaims
    _redis: tuple[bool, list] | None = field(default=None, repr=False)
    presented_as = "access_token"

    @property
    def scope(self) -> str:
        return self.claims.get("scope") or ""

    @property
    def client_id(self) -> str:
        return self.claims["client_id"]

    @property
    def jti(self) -> str:
        return self.claims["jti"]

    def get_scope(self) -> str:
        return self.scope

    def check_client(self, client) -> bool:
        return client.client_id == self.client_id

    def is_expired(self) -> bool:
        return self.claims["exp"] <= time.time()

    def for_user(self) -> bool:
        return self.claims["sub"] != self.claims["client_id"]

    def _redis_state(self) -> tuple[bool, list]:
        # one MGET: the revocation (deny-list entry and its marker) and the user's cached claims
        if self._redis is None:
            also = claims_cache.keys_of(self.claims["sub"]) if self.for_user() else ()
            self._redis = check_access_token(self.claims["jti"], *also)
        return self._redis

    def is_revoked(self) -> bool:
        return self._redis_state()[0] or self._refused_by_client()

    def _refused_by_client(self) -> bool:
        """A disabled client's tokens are refused; so are a client's own tokens issued before it
        was disabled or lost a scope (a client_credentials token has no row to mark).  The client
        comes from the per-process cache: another process sees the change within
        IDP_CLIENT_CACHE_SECONDS, as the token endpoint does."""
        client = self.get_client()
        if client is None or not client.enabled:
            return True
        cutoff = client.tokens_revoked_before
        return not self.for_user() and cutoff is not None and self.claims["iat"] <= cutoff.timestamp()

    def get_client(self) -> Client | None:
        from .client_cache import cached_client

        return cached_client(self.client_id)

    def get_user(self) -> claims_cache.CachedUser | User | None:
        """The user as userinfo sees it: from the Redis snapshot while it is current, otherwise
        read from the database (and the snapshot stored)."""
        if not self.for_user():
            return None
        if not hasattr(self, "_user"):
            if is_pairwise(self.get_client()):
                # a pairwise sub names nobody by itself: the token's own row says whose it is
                self._user = db.session.scalar(
                    select(User).join(Token, Token.user_id == User.id).where(Token.jti == self.jti))
                return self._user
            sub = self.claims["sub"]
            version, snapshot = self._redis_state()[1]
            user = claims_cache.cached_user(sub, version, snapshot)
            if user is None:
                row = db.session.scalar(select(User).where(User.sub == sub))
                user = claims_cache.remember(row, version) if row is not None else None
            self._user = user
        return self._user

    def user_is_active(self) -> bool:
        """False for a user's token whose user is gone, locked or disabled."""
        if not self.for_user():
            return True
        user = self.get_user()
        return user is not None and user.is_active


class AccessTokenValidator(JWTBearerTokenValidator):
    """Authlib's RFC 9068 validator (signature by kid over the published keys, iss, aud, exp,
    iat, sub, client_id, jti) plus: the ``at+jwt`` type is required (Authlib accepts a token
    without one), the token is not revoked, and a user's token needs an active user."""

    def __init__(self, realm=None, **extra_attributes) -> None:
        # issuer and audience are the app's own, read per request (not JWTBearerTokenValidator's
        # fixed ones)
        BearerTokenValidator.__init__(self, realm, **extra_attributes)

    @property
    def issuer(self) -> str:
        return issuer()

    @property
    def resource_server(self) -> str:
        return issuer()

    def get_jwks(self):
        return key_store().verification_set()

    def authenticate_token(self, token_string: str) -> AccessToken:
        try:
            claims = super().authenticate_token(token_string)
        except ValueError as exc:  # not a JWS at all
            raise InvalidTokenError(realm=self.realm, extra_attributes=self.extra_attributes) from exc
        if claims.header.get("typ") != AT_TYP:
            raise InvalidTokenError(realm=self.realm, extra_attributes=self.extra_attributes)
        # a grant without scope (client_credentials asking for none) gets "scope": "" from
        # Authlib's own generator, which its validator's options then call invalid
        claims.options["scope"] = {"essential": False, "allow_blank": True}
        return AccessToken(claims)

    def validate_token(self, token: AccessToken, scopes, request) -> None:
        if token.is_revoked():
            raise InvalidTokenError(realm=self.realm, extra_attributes=self.extra_attributes)
        super().validate_token(token.claims, scopes, request)  # the claims, then the scope
        if not token.user_is_active():
            raise InvalidTokenError(realm=self.realm, extra_attributes=self.extra_attributes)


_validator = AccessTokenValidator()


def verify_access_token(token_string: str) -> AccessToken | None:
    """Signature, type, issuer, audience and expiry; None for anything that is not our current
    token (revocation is the caller's next question: ``token.is_revoked()``)."""
    try:
        token = _validator.authenticate_token(token_string)
        token.claims.validate()
    except (InvalidTokenError, JoseError):
        return None
    return token
