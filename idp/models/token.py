from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ._types import UTCDateTime, utcnow
from .user import User


class AuthorizationCode(db.Model):
    """A single-use code.  Kept (not deleted) after use so that a replay can be detected and
    everything issued from it revoked (RFC 6749 §4.1.2)."""

    __tablename__ = "oauth_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    redirect_uri: Mapped[str] = mapped_column(String(512))
    scope: Mapped[str] = mapped_column(String(512))
    nonce: Mapped[str | None] = mapped_column(String(255))
    auth_time: Mapped[int] = mapped_column(Integer)
    acr: Mapped[str | None] = mapped_column(String(64))
    amr: Mapped[list] = mapped_column(JSON, default=list)
    sid: Mapped[str | None] = mapped_column(String(64))
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(16))
    # RFC 9449 §10: the thumbprint of the key the code's token request must prove possession of
    dpop_jkt: Mapped[str | None] = mapped_column(String(64))
    grant_id: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(lazy="joined")

    # -- authlib AuthorizationCodeMixin --------------------------------------------------------
    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str | None:
        return self.acr

    def get_amr(self) -> list[str] | None:
        return self.amr or None


class Token(db.Model):
    """One issued access token, with the refresh token issued beside it (if any).

    ``grant_id`` ties together everything issued under one authorization (the code and every
    rotation after it): reuse of a rotated refresh token or replay of the code revokes the family.
    Access tokens are JWTs; only their ``jti`` is stored.  Refresh tokens are stored as SHA-256.
    """

    __tablename__ = "oauth_tokens"
    __table_args__ = (
        Index("ix_oauth_tokens_user_client", "user_id", "client_id"),
        # the revoked, unexpired access tokens: what reloads the Redis deny-list after a loss
        Index("ix_oauth_tokens_revoked_access", "access_expires_at",
              postgresql_where=text("revoked_at IS NOT NULL"), sqlite_where=text("revoked_at IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    jti: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(512), default="")
    grant_id: Mapped[str] = mapped_column(String(64), index=True)
    sid: Mapped[str | None] = mapped_column(String(64), index=True)
    auth_time: Mapped[int | None] = mapped_column(Integer)
    amr: Mapped[list] = mapped_column(JSON, default=list)
    acr: Mapped[str | None] = mapped_column(String(64))  # of the login, for refreshed ID tokens
    refresh_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # RFC 9449: the access token's cnf.jkt; a public client's refresh token is bound to it too
    dpop_jkt: Mapped[str | None] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    access_expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    refresh_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # refresh token used
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User | None] = relationship(lazy="joined")

    # -- Authlib's TokenMixin (revocation and introspection endpoints) ----------------------
    #: which of the two tokens the caller presented: "access_token" or "refresh_token"
    presented_as: str = "access_token"

    def check_client(self, client) -> bool:
        return client.client_id == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_at(self) -> datetime | None:
        if self.presented_as == "refresh_token":
            return self.refresh_expires_at
        return self.access_expires_at

    def is_expired(self) -> bool:
        expires = self.get_expires_at()
        return expires is not None and expires <= datetime.now(expires.tzinfo)

    def is_revoked(self) -> bool:
        if self.presented_as == "refresh_token" and self.rotated_at is not None:
            return True
        return self.revoked_at is not None
