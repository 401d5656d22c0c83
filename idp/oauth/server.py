"""Authlib's authorization server, configured for this provider.

Storage is plugged in through ``query_client`` and ``save_token``; grants and endpoints come from
``grants.py`` and ``endpoints.py``; everything is attached to the app in ``init_app``.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone

from authlib.integrations.flask_oauth2 import AuthorizationServer as _FlaskAuthorizationServer
from authlib.integrations.flask_oauth2 import ResourceProtector
from authlib.oauth2.base import invalid_error_characters
from authlib.oauth2.rfc6749.errors import InvalidClientError, UnsupportedResponseTypeError
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc9207 import IssuerParameter
from flask import Flask, current_app

from ..extensions import commit_keeping_loaded, db
from ..models import Client, Token
from ..services.admin.client_secrets import verify_client_secret
from ..services.audit import events as audit
from . import dpop, logout
from .access_tokens import authentication_of, issuer, unverified_claims
from .client_cache import cached_client
from .endpoints import (EndSessionEndpoint, IntrospectionEndpoint, PushedAuthorizationEndpoint, RevocationEndpoint,
                        UserInfoEndpoint)
from .grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    OpenIDCode,
    OpenIDRefresh,
    PrivateKeyJwt,
    RefreshTokenGrant,
    S256CodeChallenge,
    sha256,
)


def query_client(client_id: str) -> Client | None:
    client = cached_client(client_id)  # per-process cache: no SELECT per request (client_cache.py)
    return client if client is not None and client.enabled else None


def save_token(token: dict, request) -> None:
    auth = authentication_of(request)
    now = datetime.now(timezone.utc)
    client: Client = request.client
    user = request.user
    refresh = token.get("refresh_token")
    refresh_lifetime = client.refresh_token_lifetime or current_app.config["REFRESH_TOKEN_LIFETIME"]
    row = dict(
        jti=unverified_claims(token["access_token"])["jti"],
        client_id=client.client_id,
        user_id=user.id if user is not None else None,
        scope=token.get("scope", ""),
        # client_credentials: each token is a family of its own
        grant_id=auth.get("grant_id") or secrets.token_urlsafe(18),
        sid=auth.get("sid"),
        auth_time=auth.get("auth_time"),
        amr=auth.get("amr") or [],
        acr=auth.get("acr"),
        refresh_token_hash=sha256(refresh) if refresh else None,
        dpop_jkt=dpop.bound_key(request),
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


def _client_by_secret(client_id: str | None, secret: str | None, status_code: int) -> Client | None:
    if not (client_id and secret):
        return None
    client = query_client(client_id)
    if client is None:
        raise InvalidClientError(status_code=status_code, description="The client does not exist on this server.")
    return client if verify_client_secret(client, secret) else None


def authenticate_client_secret_basic(_query_client, request) -> Client | None:
    # Authlib's own method asks the model (``client.check_client_secret``); the keyed digest is
    # a service, and models import nothing but extensions, so the check is plugged in here
    client_id, secret = extract_basic_authorization(request.headers)
    return _client_by_secret(client_id, secret, 401)


def authenticate_client_secret_post(_query_client, request) -> Client | None:
    return _client_by_secret(request.form.get("client_id"), request.form.get("client_secret"), 400)


class _UnsupportedResponseType(UnsupportedResponseTypeError):
    def get_error_description(self) -> str:
        return "The response type is not supported."


class AuthorizationServer(_FlaskAuthorizationServer):
    def get_authorization_grant(self, request):
        # Authlib echoes an unknown response_type in its error description and raises a
        # ValueError (a 500) when that holds a character RFC 6749 forbids there ('"', '\\',
        # non-ASCII).  Such a value never names a grant: answer unsupported_response_type,
        # to the client only once the client and its redirect URI are known good.
        if invalid_error_characters(request.payload.response_type or ""):
            raise _UnsupportedResponseType(None, redirect_uri=_checked_redirect_uri(self, request))
        return super().get_authorization_grant(request)


def _checked_redirect_uri(server, request) -> str | None:
    client = server.query_client(request.payload.client_id) if request.payload.client_id else None
    if client is None:
        return None
    requested = request.payload.redirect_uri
    if requested:
        return requested if client.check_redirect_uri(requested) else None
    return client.get_default_redirect_uri()


class ProviderIssuer(IssuerParameter):
    def get_issuer(self) -> str:
        return issuer()


require_oauth = ResourceProtector()
require_oauth.register_token_validator(dpop.BearerTokenValidator())  # the first: its challenge is the default
require_oauth.register_token_validator(dpop.DPoPTokenValidator())


def server() -> AuthorizationServer:
    """The authorization server of the current app (one per app: tests build many apps)."""
    return current_app.extensions["idp_authorization"]


def init_app(app: Flask) -> None:
    authorization = AuthorizationServer()
    authorization.init_app(app, query_client=query_client, save_token=save_token)
    app.extensions["idp_authorization"] = authorization
    authorization.register_client_auth_method("client_secret_basic", authenticate_client_secret_basic)
    authorization.register_client_auth_method("client_secret_post", authenticate_client_secret_post)
    authorization.register_client_auth_method(PrivateKeyJwt.CLIENT_AUTH_METHOD, PrivateKeyJwt())
    authorization.register_extension(ProviderIssuer())
    authorization.register_grant(
        AuthorizationCodeGrant,
        [OpenIDCode(require_nonce=False), S256CodeChallenge(required=True), dpop.DPoPBinding()],
    )
    authorization.register_grant(RefreshTokenGrant, [OpenIDRefresh(), dpop.DPoPBinding()])
    authorization.register_grant(ClientCredentialsGrant, [dpop.DPoPBinding()])
    authorization.register_endpoint(RevocationEndpoint)
    authorization.register_endpoint(IntrospectionEndpoint)
    authorization.register_endpoint(EndSessionEndpoint)
    authorization.register_endpoint(PushedAuthorizationEndpoint)
    authorization.register_endpoint(UserInfoEndpoint(resource_protector=require_oauth))
    logout.init_app(app)

