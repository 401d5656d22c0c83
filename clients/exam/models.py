"""The exam service's own tables: the candidate record, local login sessions, logins in progress
and the logout tokens already acted on.

Personal data is kept only masked (the service shows it, it has no use for the full numbers); the
one place a full ID number exists here is inside an ID token kept for RP-initiated logout, and
that is sealed with the service's data key (``sealing.py``).
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text, TypeDecorator
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import db


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetime given; use timezone-aware UTC")
            value = value.astimezone(timezone.utc)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class Candidate(db.Model):
    """A candidate (考生) as this service knows them: keyed by the platform's ``sub``."""

    __tablename__ = "candidates"

    id: Mapped[int] = mapped_column(primary_key=True)
    sub: Mapped[str] = mapped_column(String(255), unique=True)
    username: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(100))
    gender: Mapped[str | None] = mapped_column(String(16))
    birthdate: Mapped[str | None] = mapped_column(String(10))
    phone_masked: Mapped[str | None] = mapped_column(String(32))
    id_type: Mapped[str | None] = mapped_column(String(32))
    id_number_masked: Mapped[str | None] = mapped_column(String(64))
    real_name_verified: Mapped[bool | None] = mapped_column(Boolean)
    first_login_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    login_count: Mapped[int] = mapped_column(Integer, default=0)

    logins: Mapped[list["CandidateLogin"]] = relationship(back_populates="candidate", cascade="all, delete-orphan")


class CandidateLogin(db.Model):
    """A local login session.  The browser holds a random token; only its SHA-256 is stored, so a
    copy of this table signs nobody in.  ``platform_sid`` is the platform session it came from:
    a back-channel logout for that sid deletes the row, which ends the local session at once."""

    __tablename__ = "candidate_logins"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id", ondelete="CASCADE"), index=True)
    sub: Mapped[str] = mapped_column(String(255), index=True)
    platform_sid: Mapped[str | None] = mapped_column(String(128), index=True)
    id_token_sealed: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(String(512), default="")
    auth_time: Mapped[int | None] = mapped_column(Integer)
    acr: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())

    candidate: Mapped[Candidate] = relationship(back_populates="logins")


class PendingAuthorization(db.Model):
    """A login in progress (Authlib's cache): state, nonce, PKCE verifier, redirect URI.  Kept
    server-side so the verifier never travels in a cookie; the browser's session only marks it."""

    __tablename__ = "pending_authorizations"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class SeenLogoutToken(db.Model):
    """``jti`` of logout tokens already acted on, until they expire (replay refused)."""

    __tablename__ = "seen_logout_tokens"

    jti: Mapped[str] = mapped_column(String(255), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


def create_schema() -> None:
    """Create the tables if missing (``flask --app clients.exam init-db``; the demo calls it)."""
    db.create_all()
