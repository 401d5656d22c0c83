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
from flask import Flask, current_app, has_request_context
from flask import request as http_request

from ..errors import UserError
from ..extensions import commit_keeping_loaded, db
from ..models import Client, Token
from ..services.admin.client_secrets import verify_client_secret
from ..services.audit import events as audit
from ..services.audit.tokens import record_token_issued
from ..services.limits import KeyedLimit
from . import access_tokens, dpop, logout
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
    client: Client = request.client
    user = request.user
    grant_type = request.payload.grant_type
    claims = unverified_claims(token["access_token"])
    if user is None:
        # client_credentials: the JWT is the whole record (verified by signature, revoked by
        # jti: the revocation writes its own row).  Only the audit event is written.
        record_token_issued(client_id=client.client_id, subject=client.client_id, grant_type=grant_type,
                            scope=token.get("scope", ""), jti=claims["jti"])
        return
    auth = authentication_of(request)
    now = datetime.now(timezone.utc)
    refresh = token.get("refresh_token")
    refresh_lifetime = client.refresh_token_lifetime or current_app.config["REFRESH_TOKEN_LIFETIME"]
    row = dict(
        jti=claims["jti"],
        client_id=client.client_id,
        user_id=user.id,
        scope=token.get("scope", ""),
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
    # a user's token has a row: its grant family, login session and user are what logout,
    # password change, refresh reuse and the console revoke by.  A plain INSERT on the session's
    # connection (same transaction): nothing reads the row back in this request, and the ORM's
    # unit of work was a fifth of a token request's CPU
    db.session.connection().execute(Token.__table__.insert(), row)
    audit.record_in_transaction(
        "token.issued", actor=client.client_id, subject=user.sub, client_id=client.client_id,
        grant_type=grant_type,
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


class TooManyClientAuthFailures(UserError):
    message = "Too many failed client authentications from this address; try again in {window}."


#: failed client authentications at the token endpoint per client_id and IP.  Counted on
#: failure only; a success costs one Redis GET (is the key blocked?).  Introspection, revocation
#: and PAR are not limited: they issue nothing, the secrets the platform generates are 256-bit
#: random (a guess is hopeless), and a check there would add a Redis round trip to every
#: introspection, which otherwise costs one (the deny-list and the user in one MGET)
CLIENT_AUTH_FAILURES = KeyedLimit("TOKEN_CLIENT_AUTH_FAILURES", TooManyClientAuthFailures,
                                  namespace="client-auth-failures", window="TOKEN_CLIENT_AUTH_FAILURE_WINDOW")


class ClientAuthenticationBlocked(InvalidClientError):
    """``invalid_client`` (the error a client already handles for a bad secret) with HTTP 429 and
    ``Retry-After``: too many failures from this address; the secret, right or wrong, is not even
    checked until the window has passed, so the answer tells a guesser nothing."""

    status_code = 429

    def __init__(self, retry_after: int) -> None:
        item = CLIENT_AUTH_FAILURES.item
        super().__init__(description=TooManyClientAuthFailures.message.format(
            amount=item.amount, window=f"{item.multiples} seconds"))
        self.retry_after = retry_after

    def get_headers(self):
        return [*super().get_headers(), ("Retry-After", str(self.retry_after))]


def _client_auth_key(request) -> tuple[str, str]:
    client_id, _ = extract_basic_authorization(request.headers)
    client_id = client_id or request.form.get("client_id") or "-"
    address = http_request.remote_addr if has_request_context() else None
    return client_id[:64], address or "-"


class AuthorizationServer(_FlaskAuthorizationServer):
    def authenticate_client(self, request, methods, endpoint="token"):
        if endpoint != "token":
            return super().authenticate_client(request, methods, endpoint)
        key = _client_auth_key(request)
        if CLIENT_AUTH_FAILURES.spent(*key):
            raise ClientAuthenticationBlocked(CLIENT_AUTH_FAILURES.seconds_to_reset(*key))
        try:
            return super().authenticate_client(request, methods, endpoint)
        except InvalidClientError:
            try:
                CLIENT_AUTH_FAILURES.take(*key)
            except TooManyClientAuthFailures:
                pass  # this failure is answered as one; the next attempt meets the block
            raise

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
    generator = access_tokens.init_app(app)
    generator.claim_extensions.append(dpop.confirmation_claims)  # cnf of a DPoP-bound token
    authorization.register_token_generator("default", generator)
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

