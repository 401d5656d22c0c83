"""Grants and extensions: authorization code (+ OpenID Connect, PKCE S256), refresh token with
rotation and reuse detection, client credentials, and private_key_jwt client authentication.

Storage goes through a handful of hooks, as in Authlib's example servers.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import datetime, timedelta, timezone

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core.grants import OpenIDCode as _OpenIDCode
from authlib.oidc.core.grants import OpenIDToken as _OpenIDToken
from flask import current_app, g
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.orm.attributes import set_committed_value

from ..extensions import commit_keeping_loaded, db, redis_store
from ..models import AuthorizationCode, Token, User
from ..services.audit import events as audit
from ..services.accounts.sessions import current_login
from . import dpop
from .access_tokens import issuer, token_response
from .claims import user_claims
from .requests import spend_pushed_request
from .subjects import subject_for
from .keys import id_token_alg, key_store
from ..services.accounts.revocation import revoke_grant


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _claim(model, row, column) -> bool:
    """Mark a single-use credential (a code, a refresh token) used, in the current transaction.

    ``UPDATE … WHERE <column> IS NULL``: concurrent uses of one credential take turns on the row
    lock and exactly one of them wins (False for the others).  The mark is committed together
    with the tokens it pays for (``server.save_token``): one commit per token request, not two.
    """
    now = _now()
    table = model.__table__
    result = db.session.connection().execute(
        table.update().where(table.c.id == row.id, table.c[column.key].is_(None)).values({column.key: now})
    )
    if result.rowcount != 1:
        return False
    set_committed_value(row, column.key, now)  # the loaded row agrees, without a reload
    return True


class _ProviderTokens:
    """Tokens are built from what the grant redeemed — ``request.authorization_code`` or
    ``request.refresh_token``, set by Authlib — so the login behind them (session, auth_time,
    amr, acr, grant family) reaches the access token and ``save_token`` without a side channel."""

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None, include_refresh_token=True):
        token = token_response(self.request, user, scope, grant_type or self.GRANT_TYPE, include_refresh_token,
                               expires_in)
        if dpop.confirmation(self.request):  # the access token carries cnf (a claim extension)
            token["token_type"] = "DPoP"  # RFC 9449 §5
        return token


class AuthorizationCodeGrant(_ProviderTokens, grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
    AUTHORIZATION_CODE_LENGTH = 43

    @staticmethod
    def validate_authorization_redirect_uri(request, client):
        # Authlib quotes the requested URI in its error description and then refuses to build
        # an error whose description holds a character RFC 6749 forbids there (a ValueError,
        # a 500): say the same without echoing what the caller sent.  No redirect_uri on the
        # error: an unregistered URI gets the error page, never a redirect.
        if request.payload.redirect_uri:
            if not client.check_redirect_uri(request.payload.redirect_uri):
                raise InvalidRequestError("The redirect URI is not registered for this client.")
            return request.payload.redirect_uri
        return grants.AuthorizationCodeGrant.validate_authorization_redirect_uri(request, client)

    def save_authorization_code(self, code: str, request) -> AuthorizationCode:
        spend_pushed_request()  # one code per pushed request (RFC 9126 §4)
        login = current_login()
        payload = request.payload
        row = AuthorizationCode(
            code_hash=sha256(code),
            client_id=request.client.client_id,
            user_id=request.user.id,
            redirect_uri=payload.redirect_uri or request.client.get_default_redirect_uri(),
            scope=request.scope or "",
            nonce=payload.data.get("nonce"),
            auth_time=login.auth_time if login else int(time.time()),
            acr=login.acr if login else None,
            amr=login.amr if login else ["pwd"],
            sid=login.sid if login else None,
            code_challenge=payload.data.get("code_challenge"),
            code_challenge_method=payload.data.get("code_challenge_method") or (
                "S256" if payload.data.get("code_challenge") else None
            ),
            grant_id=secrets.token_urlsafe(18),
            dpop_jkt=payload.data.get("dpop_jkt"),  # checked by dpop.DPoPBinding
            expires_at=_now() + timedelta(seconds=current_app.config["AUTHORIZATION_CODE_LIFETIME"]),
        )
        db.session.add(row)
        commit_keeping_loaded()  # the nonce and client are read just below
        if row.nonce:
            # a nonce is spent once a code carries it (replay protection for ID tokens)
            redis_store.set(f"nonce:{row.client_id}:{row.nonce}", 1, ex=current_app.config["NONCE_TTL"])
        return row

    def query_authorization_code(self, code: str, client) -> AuthorizationCode | None:
        row = db.session.scalar(
            select(AuthorizationCode).where(AuthorizationCode.code_hash == sha256(code))
        )
        if row is None or row.client_id != client.client_id:
            return None
        if row.used_at is not None:
            # RFC 6749 §4.1.2: a code used twice revokes everything issued from it
            revoked = revoke_grant(row.grant_id)
            db.session.commit()
            audit.add("token.code_replay", "denied", actor=client.client_id,
                      client_id=client.client_id, revoked=revoked)
            db.session.commit()
            return None
        if row.expires_at <= _now():
            return None
        return row

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        # kept, marked used: a replay must still be recognised.  authenticate_user has normally
        # claimed it already, in the transaction that saved the tokens.
        if authorization_code.used_at is None:
            authorization_code.used_at = _now()
            db.session.commit()

    def authenticate_user(self, authorization_code: AuthorizationCode) -> User | None:
        user = db.session.get(User, authorization_code.user_id)
        if user is None or not user.is_active:
            return None
        if not _claim(AuthorizationCode, authorization_code, AuthorizationCode.used_at):
            raise InvalidGrantError("The authorization code was used by a concurrent request.")
        return user


class RefreshTokenGrant(_ProviderTokens, grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation: every use returns a new refresh token

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        row = db.session.scalar(select(Token).where(Token.refresh_token_hash == sha256(refresh_token)))
        if row is None:
            return None
        if row.rotated_at is not None or row.revoked_at is not None:
            if row.rotated_at is not None:
                # reuse of a rotated token: someone holds a copy; the whole family goes
                revoked = revoke_grant(row.grant_id)
                db.session.commit()
                audit.add("token.refresh_reuse", "denied", actor=row.client_id,
                          client_id=row.client_id, revoked=revoked)
                db.session.commit()
            return None
        if row.refresh_expires_at and row.refresh_expires_at <= _now():
            return None
        return _RefreshCredential(row)

    def authenticate_user(self, credential: "_RefreshCredential") -> User | None:
        user = credential.row.user
        if user is None or not user.is_active:
            return None
        if not _claim(Token, credential.row, Token.rotated_at):
            raise InvalidGrantError("The refresh token was used by a concurrent request.")
        return user

    def revoke_old_credential(self, credential: "_RefreshCredential") -> None:
        # normally rotated already by authenticate_user, committed with the new tokens
        if credential.row.rotated_at is None:
            credential.row.rotated_at = _now()
            db.session.commit()


class _RefreshCredential:
    """Authlib's view of a stored refresh token."""

    def __init__(self, row: Token) -> None:
        self.row = row

    def get_scope(self) -> str:
        return self.row.scope

    def check_client(self, client) -> bool:
        return client.client_id == self.row.client_id

    def is_expired(self) -> bool:
        return bool(self.row.refresh_expires_at and self.row.refresh_expires_at <= _now())

    def is_revoked(self) -> bool:
        return self.row.revoked_at is not None or self.row.rotated_at is not None


class ClientCredentialsGrant(_ProviderTokens, grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]


class S256CodeChallenge(CodeChallenge):
    """PKCE, S256 only (``plain`` protects nothing against a code intercepted on the device), and
    for every client: a confidential client's secret does not stop an attacker who injects a
    stolen code into its callback, PKCE does (RFC 9700 §2.1.1, OAuth 2.1)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant, redirect_uri):
        super().validate_code_challenge(grant, redirect_uri)
        payload = grant.request.payload.data
        if payload.get("code_challenge") and payload.get("code_challenge_method", "plain") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256", redirect_uri=redirect_uri)
        if not payload.get("code_challenge"):
            raise InvalidRequestError("PKCE (code_challenge, S256) is required", redirect_uri=redirect_uri)

    def get_authorization_code_challenge(self, authorization_code: AuthorizationCode):
        return authorization_code.code_challenge

    def get_authorization_code_challenge_method(self, authorization_code: AuthorizationCode):
        return authorization_code.code_challenge_method


class _IdTokens:
    """How ID tokens are signed and what every one of them says (shared by the code flow and
    refresh)."""

    def resolve_client_private_key(self, client):
        return key_store().current(id_token_alg(client)).key

    def get_client_algorithm(self, client) -> str:
        return id_token_alg(client)

    def get_encode_header(self, client) -> dict:
        key = key_store().current(id_token_alg(client))
        return {"alg": key.alg, "kid": key.kid, "typ": "JWT"}

    def get_client_claims(self, client) -> dict:
        now = int(time.time())
        return {
            "iss": issuer(),
            "aud": [client.client_id],
            "iat": now,
            "exp": now + current_app.config["ID_TOKEN_LIFETIME"],
        }

    def get_compatible_claims(self, request) -> dict:
        claims = super().get_compatible_claims(request)
        # Authlib asks generate_user_info without the client; the sub depends on it (pairwise)
        claims["sub"] = subject_for(request.client, request.user)
        return claims

    def generate_user_info(self, user: User, scope: str):
        claims = user_claims(user, scope)
        claims.pop("sub", None)  # set by get_compatible_claims, for this client
        return claims


class OpenIDCode(_IdTokens, _OpenIDCode):
    def exists_nonce(self, nonce: str, request) -> bool:
        # Authlib asks once when validating and again when answering: one Redis read per request
        key = f"nonce:{request.payload.client_id}:{nonce}"
        seen = g.setdefault("idp_nonces_checked", {})
        if key not in seen:
            seen[key] = bool(redis_store.exists(key))
        return seen[key]

    def get_authorization_code_claims(self, authorization_code: AuthorizationCode) -> dict:
        claims = super().get_authorization_code_claims(authorization_code)
        if authorization_code.sid:
            claims["sid"] = authorization_code.sid
        return claims


class OpenIDRefresh(_IdTokens, _OpenIDToken):
    """A refresh with ``openid`` in its scope answers a fresh ID token too, as Keycloak and node
    oidc-provider do: same ``sub`` and ``auth_time`` (the login has not happened again), the
    login's ``amr``/``acr``/``sid``, and no ``nonce`` (that belonged to the authorization
    request; OpenID Connect Core §12.2)."""

    def get_compatible_claims(self, request) -> dict:
        claims = super().get_compatible_claims(request)
        row = request.refresh_token.row
        claims["auth_time"] = row.auth_time
        for name in ("amr", "acr", "sid"):
            if getattr(row, name):
                claims[name] = getattr(row, name)
        return claims


class PrivateKeyJwt(JWTBearerClientAssertion):
    """private_key_jwt (RFC 7523 §2.2): the client signs an assertion with a key it registered."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def get_audiences(self):
        return [issuer(), issuer() + "/oauth/token"]

    def validate_jti(self, claims, jti) -> bool:
        # single use within the assertion's lifetime
        ttl = current_app.config["CLIENT_ASSERTION_JTI_TTL"]
        return bool(redis_store.set(f"client-assertion:{claims['sub']}:{jti}", 1, nx=True, ex=ttl))

    def resolve_client_public_key(self, client):
        return KeySet.import_key_set(client.jwks or {"keys": []})
