from __future__ import annotations

import enum
from datetime import datetime

from authlib.oauth2.rfc6749 import ClientMixin, list_to_scope, scope_to_list
from sqlalchemy import JSON, Boolean, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ._types import UTCDateTime, utcnow


class ClientType(str, enum.Enum):
    CONFIDENTIAL = "confidential"  # a server-side web application with a secret
    PUBLIC = "public"  # an SPA or mobile app: no secret, PKCE required
    SERVICE = "service"  # machine-to-machine, client_credentials only


class Client(db.Model, ClientMixin):
    """A relying system (应用系统).

    The secret is never stored: only a keyed digest (``services.admin.client_secrets``, which
    the token endpoint's client authentication asks: ``oauth/server.py``).  After a rotation the
    previous digest keeps working until ``previous_secret_expires_at``.
    """

    __tablename__ = "oauth_clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    # where this system's users turn when the bank check still fails (phone, mail): one per line
    contacts: Mapped[str | None] = mapped_column(Text)
    client_type: Mapped[str] = mapped_column(String(16), default=ClientType.CONFIDENTIAL.value)
    # 允许登录的用户类型: "personal", "unit" or "both" — enforced before a code is issued
    allowed_user_types: Mapped[str] = mapped_column(String(16), default="personal", server_default="personal")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    first_party: Mapped[bool] = mapped_column(Boolean, default=False)

    secret_digest: Mapped[str | None] = mapped_column(String(128))
    previous_secret_digest: Mapped[str | None] = mapped_column(String(128))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    redirect_uris: Mapped[list] = mapped_column(JSON, default=list)
    post_logout_redirect_uris: Mapped[list] = mapped_column(JSON, default=list)
    backchannel_logout_uri: Mapped[str | None] = mapped_column(String(512))
    # OpenID Connect Front-Channel Logout 1.0: the platform's logout page loads this URI in a
    # hidden iframe, with iss and sid when session_required
    frontchannel_logout_uri: Mapped[str | None] = mapped_column(String(512))
    frontchannel_logout_session_required: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false(), nullable=False)
    # the least acr this system accepts: every authorization request of it asks for that level,
    # named in acr_values or not
    min_acr: Mapped[str | None] = mapped_column(String(64))
    # OpenID Connect Core 8.1: "pairwise" gives each sector its own sub for the same person, so
    # systems of different departments cannot join their users by sub
    subject_type: Mapped[str] = mapped_column(String(16), default="public", server_default="public", nullable=False)
    sector_identifier: Mapped[str | None] = mapped_column(String(255))  # a host name, set when pairwise
    # RFC 9126: this client's authorization requests must come through /oauth/par
    require_pushed_authorization_requests: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false(), nullable=False)
    # RFC 9449: every token request of this client must carry a DPoP proof (sender-constrained tokens)
    dpop_bound_access_tokens: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false(), nullable=False)
    scope: Mapped[str] = mapped_column(String(512), default="openid profile")
    grant_types: Mapped[list] = mapped_column(JSON, default=lambda: ["authorization_code", "refresh_token"])
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(32), default="client_secret_basic")
    jwks: Mapped[dict | None] = mapped_column(JSON)  # public keys for private_key_jwt
    id_token_signed_response_alg: Mapped[str | None] = mapped_column(String(16))
    access_token_lifetime: Mapped[int | None] = mapped_column(Integer)
    refresh_token_lifetime: Mapped[int | None] = mapped_column(Integer)
    # the client's own access tokens (client_credentials: no row to mark revoked) issued at or
    # before this time are refused; set when the client is disabled or loses a scope
    tokens_revoked_before: Mapped[datetime | None] = mapped_column(UTCDateTime())

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    def accepts(self, user_type: str) -> bool:
        return self.allowed_user_types in ("both", user_type)

    # -- authlib ClientMixin -------------------------------------------------------------------
    @property
    def client_metadata(self) -> dict:
        return {
            "client_name": self.name,
            "redirect_uris": self.redirect_uris,
            "post_logout_redirect_uris": self.post_logout_redirect_uris,
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
            "grant_types": self.grant_types,
            "scope": self.scope,
            "jwks": self.jwks,
            "dpop_bound_access_tokens": bool(self.dpop_bound_access_tokens),
        }

    @property
    def is_public(self) -> bool:
        return self.client_type == ClientType.PUBLIC.value

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # never guess: a request must name its redirect URI when a client has several
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str) -> str:
        if not scope:
            return ""
        allowed = set(scope_to_list(self.scope))
        return list_to_scope([s for s in scope_to_list(scope) if s in allowed])

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris  # exact match, no prefix or wildcard

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if endpoint == "token":
            return method == self.token_endpoint_auth_method
        # revocation and introspection accept what the token endpoint accepts
        return method == self.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types

    def __repr__(self) -> str:
        return f"<Client {self.client_id} {self.name!r}>"
