"""Authlib's authorization server, configured for this provider.

Storage is plugged in through ``query_client`` and ``save_token``; grants and endpoints come from
``grants.py`` and ``endpoints.py``; everything is attached to the app in ``init_app``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc9207 import IssuerParameter
from flask import Flask, current_app

from ..extensions import commit_keeping_loaded, csrf, db
from ..models import Client, Token
from ..services.audit import events as audit
from . import logout
from .access_tokens import JwtBearerTokenValidator, access_token_lifetime, grant_context, issue_access_token, issuer
from .client_cache import cached_client
from .endpoints import EndSessionEndpoint, IntrospectionEndpoint, RevocationEndpoint, UserInfoEndpoint
from .grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    OpenIDCode,
    PrivateKeyJwt,
    RefreshTokenGrant,
    S256CodeChallenge,
    sha256,
)


def query_client(client_id: str) -> Client | None:
    client = cached_client(client_id)  # per-process cache: no SELECT per request (client_cache.py)
    return client if client is not None and client.enabled else None


class TokenIssuer(BearerTokenGenerator):
    """JWT access tokens; a refresh token only with ``offline_access`` (SPEC §5)."""

    def __init__(self) -> None:
        import secrets

        super().__init__(
            access_token_generator=issue_access_token,
            refresh_token_generator=lambda **_: secrets.token_urlsafe(32),
            expires_generator=lambda client, grant_type: access_token_lifetime(client),
        )

    def generate(self, grant_type, client, user=None, scope=None, expires_in=None, include_refresh_token=True):
        include = include_refresh_token and user is not None and "offline_access" in (scope or "").split()
        return super().generate(grant_type, client, user, scope, expires_in, include)


def save_token(token: dict, request) -> None:
    ctx = grant_context()
    now = datetime.now(timezone.utc)
    client: Client = request.client
    user = request.user
    refresh = token.get("refresh_token")
    refresh_lifetime = client.refresh_token_lifetime or current_app.config["REFRESH_TOKEN_LIFETIME"]
    row = dict(
        jti=ctx["jti"],
        client_id=client.client_id,
        user_id=user.id if user is not None else None,
        scope=token.get("scope", ""),
        grant_id=ctx["grant_id"],
        sid=ctx.get("sid"),
        auth_time=ctx.get("auth_time"),
        amr=ctx.get("amr") or [],
        refresh_token_hash=sha256(refresh) if refresh else None,
        issued_at=now,
        access_expires_at=now + timedelta(seconds=token["expires_in"]),
        refresh_expires_at=now + timedelta(seconds=refresh_lifetime) if refresh else None,
    )
    # a plain INSERT on the session's connection (same transaction): nothing reads the row back
    # in this request, and the ORM's unit of work and execution layers (instance state, identity
    # map, RETURNING id) were a fifth of a token request's CPU (issue #5)
    db.session.connection().execute(Token.__table__.insert(), row)
    audit.record_in_transaction(
        "token.issued", actor=client.client_id, subject=user.sub if user is not None else client.client_id,
        client_id=client.client_id, grant_type=request.payload.grant_type,
        scope=row["scope"],  # which claims went out (个人信息与隐私), never their values
    )
    commit_keeping_loaded()  # the code and the user are read again for the ID token


class ProviderIssuer(IssuerParameter):
    def get_issuer(self) -> str:
        return issuer()


require_oauth = ResourceProtector()
require_oauth.register_token_validator(JwtBearerTokenValidator())


def server() -> AuthorizationServer:
    """The authorization server of the current app (one per app: tests build many apps)."""
    return current_app.extensions["idp_authorization"]


def init_app(app: Flask) -> None:
    authorization = AuthorizationServer()
    authorization.init_app(app, query_client=query_client, save_token=save_token)
    app.extensions["idp_authorization"] = authorization
    authorization.register_token_generator("default", TokenIssuer())
    authorization.register_client_auth_method(PrivateKeyJwt.CLIENT_AUTH_METHOD, PrivateKeyJwt())
    authorization.register_extension(ProviderIssuer())
    authorization.register_grant(
        AuthorizationCodeGrant, [OpenIDCode(require_nonce=False), S256CodeChallenge(required=True)]
    )
    authorization.register_grant(RefreshTokenGrant)
    authorization.register_grant(ClientCredentialsGrant)
    authorization.register_endpoint(RevocationEndpoint)
    authorization.register_endpoint(IntrospectionEndpoint)
    authorization.register_endpoint(EndSessionEndpoint)
    authorization.register_endpoint(UserInfoEndpoint(resource_protector=require_oauth))
    logout.init_app(app)

    from .routes import bp

    app.register_blueprint(bp)
    csrf.exempt(bp)  # protocol endpoints authenticate clients; the consent form checks CSRF itself
