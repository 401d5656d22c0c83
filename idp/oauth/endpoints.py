"""Revocation (RFC 7009), introspection (RFC 7662), userinfo and RP-initiated logout."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from authlib.integrations.flask_oauth2 import current_token
from authlib.oauth2.rfc6750 import InvalidTokenError
from authlib.oauth2.rfc6749.token_endpoint import TokenEndpoint
from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _IntrospectionEndpoint
from authlib.oidc.core import UserInfoEndpoint as _UserInfoEndpoint
from authlib.oidc.rpinitiated import EndSessionEndpoint as _EndSessionEndpoint
from authlib.oidc.rpinitiated import EndSessionRequest as _EndSessionRequest
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import Token
from ..services.audit import events as audit
from ..services.accounts.sessions import current_login
from . import dpop
from .access_tokens import AccessToken, issuer, verify_access_token
from .claims import user_claims
from .requests import push
from .client_cache import cached_client
from .subjects import is_pairwise, subject_for
from .grants import sha256
from .keys import id_token_alg, key_store
from .logout import end_browser_login
from ..services.accounts.revocation import revoke_access_token_by_jti, revoke_grant

ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]


def find_token(token_string: str, hint: str | None) -> AccessToken | Token | None:
    """Look a presented token up: a JWT access token is verified (no database read: revocation is
    the deny-list's, in the same Redis round trip as the user's cached claims); anything else is
    looked for as a refresh token, by hash."""
    if hint != "refresh_token" and token_string.count(".") == 2:
        verified = verify_access_token(token_string)
        if verified is not None:
            return verified
    row = db.session.scalar(select(Token).where(Token.refresh_token_hash == sha256(token_string)))
    if row is not None:
        row.presented_as = "refresh_token"
    return row


class RevocationEndpoint(_RevocationEndpoint):
    CLIENT_AUTH_METHODS = ENDPOINT_AUTH_METHODS

    def query_token(self, token_string, token_type_hint):
        return find_token(token_string, token_type_hint)

    def revoke_token(self, token: AccessToken | Token, request):
        if isinstance(token, AccessToken):
            claims = token.claims
            count = revoke_access_token_by_jti(
                token.jti, client_id=token.client_id, scope=token.scope,
                issued_at=datetime.fromtimestamp(claims["iat"], timezone.utc),
                expires_at=datetime.fromtimestamp(claims["exp"], timezone.utc))
        else:
            # RFC 7009 §2.1: revoking a refresh token also revokes its access tokens
            count = revoke_grant(token.grant_id)
        audit.add("token.revoked", actor=token.client_id, client_id=token.client_id,
                  token_type=token.presented_as, revoked=count)
        try:
            db.session.commit()
        except IntegrityError:
            # the same unrecorded token revoked by a concurrent request: its row stands
            db.session.rollback()


class IntrospectionEndpoint(_IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]

    def query_token(self, token_string, token_type_hint):
        return find_token(token_string, token_type_hint)

    def check_permission(self, token: AccessToken | Token, client, request) -> bool:
        # the client the token was issued to, or a resource server (service client)
        return token.client_id == client.client_id or client.client_type == "service"

    def introspect_token(self, token: AccessToken | Token) -> dict:
        if isinstance(token, AccessToken):
            return self._introspect_access_token(token)
        expires = token.get_expires_at()
        payload = {
            "active": True,
            "client_id": token.client_id,
            "scope": token.scope,
            "token_type": "refresh_token",
            "iat": int(token.issued_at.timestamp()),
            "iss": issuer(),
        }
        if expires is not None:
            payload["exp"] = int(expires.timestamp())
        if token.user is not None:
            client = cached_client(token.client_id)
            payload["sub"] = subject_for(client, token.user)
            if not is_pairwise(client):  # a username would join what pairwise subs keep apart
                payload["username"] = token.user.username
        else:
            payload["sub"] = token.client_id
        return payload

    @staticmethod
    def _introspect_access_token(token: AccessToken) -> dict:
        # Authlib asked is_revoked() already: the deny-list and the user's cached claims came in
        # that one MGET
        if not token.user_is_active():
            return {"active": False}
        claims = token.claims
        payload = {
            "active": True,
            "client_id": token.client_id,
            "scope": token.scope,
            "token_type": "DPoP" if "cnf" in claims else "Bearer",
            "iat": claims["iat"],
            "exp": claims["exp"],
            "iss": claims["iss"],
            "aud": claims["aud"],
            "jti": token.jti,
            "sub": claims["sub"],
        }
        if "cnf" in claims:
            payload["cnf"] = claims["cnf"]  # RFC 9449 §6.2
        if token.for_user() and not is_pairwise(token.get_client()):
            payload["username"] = token.get_user().username
        return payload


class PushedAuthorizationEndpoint(TokenEndpoint):
    """RFC 9126: the client pushes its authorization request, authenticated as at the token
    endpoint, and gets a single-use ``request_uri`` for the browser."""

    ENDPOINT_NAME = "par"
    CLIENT_AUTH_METHODS = ENDPOINT_AUTH_METHODS

    def create_endpoint_response(self, request):
        client = self.authenticate_endpoint_client(request)
        body = push(client, request.payload.data, dpop_jkt=dpop.pushed_request_key())
        return 201, body, [("Content-Type", "application/json"), ("Cache-Control", "no-store")]


class UserInfoEndpoint(_UserInfoEndpoint):
    def get_issuer(self) -> str:
        return issuer()

    def generate_user_info(self, user, scope: str):
        if user is None:
            # a client's own token (client_credentials): there is no end-user to describe
            raise InvalidTokenError("The access token was not issued for an end-user.")
        return user_claims(user, scope, current_token.get_client())

    def resolve_private_key(self):
        # a signed userinfo response is signed as the client's ID tokens are
        return key_store().current(id_token_alg(current_token.get_client())).key

    def get_supported_algorithms(self) -> list[str]:
        return ["RS256", "ES256"]


@dataclass
class EndSessionRequest(_EndSessionRequest):
    #: filled by end_session: what the page that says 已退出 loads before going on
    frontchannel_logout_urls: list[str] = field(default_factory=list)


class EndSessionEndpoint(_EndSessionEndpoint):
    def validate_request(self, request) -> EndSessionRequest:
        return EndSessionRequest(**vars(super().validate_request(request)))

    def get_server_jwks(self) -> KeySet:
        return KeySet([k.key for k in key_store().published()])

    def get_algorithms(self) -> list[str]:
        return ["RS256", "ES256"]

    def resolve_client_from_id_token_claims(self, id_token_claims: dict):
        aud = id_token_claims.get("aud")
        if isinstance(aud, list) and len(aud) == 1:  # our ID tokens carry aud as a one-item list
            aud = aud[0]
        return self.server.query_client(aud) if isinstance(aud, str) else None

    def end_session(self, end_session_request) -> None:
        login = current_login()
        claims = end_session_request.id_token_claims or {}
        if login is None:
            return
        expected = subject_for(end_session_request.client, login.user) if login.user else None
        if claims and claims.get("sub") != expected:
            return  # a hint for someone else: do not end this user's session
        user = login.user
        # tokens and back-channel notices follow the login_ended signal; front-channel ones are
        # the page the user sees next
        end_session_request.frontchannel_logout_urls = end_browser_login(reason="rp_logout")
        audit.add("logout", actor=user.username if user else None, subject=user.sub if user else None,
                  client_id=end_session_request.client.client_id if end_session_request.client else None,
                  via="end_session")
        db.session.commit()
